<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Products - Sample Site</title>
<link rel="stylesheet" href="static/css/site.css">
<link rel="icon" href="/favicon.ico">
<script src="/static/js/app.js" defer></script>
</head>
<body>
<header>
  <a href="/" class="logo"><img src="static/img/logo.png" alt="Sample Site"></a>
  <nav>
    <a href="/">Home</a>
    <a href="/docs/">Docs</a>
    <a href="/blog/">Blog</a>
    <a href="/products.php?id=1">Products</a>
    <a href="/about">About</a>
    <a href="/private/">Members</a>
  </nav>
</header>
<main>
<h1>Products</h1>
<p>One script serves every product; the query string says which.</p>
<ul><li><a href="products.php?id=1">Product 1</a></li><li><a href="products.php?id=2">Product 2</a></li>
<li><a href="products.php?id=3&amp;view=full">Product 3</a></li></ul>

</main>
<footer>
  <p>Sample site bundled with crawl. <a href="mailto:webmaster@example.com">Write to us</a>,
  or read the <a href="https://www.example.com/elsewhere">site elsewhere</a>.</p>
</footer>
</body>
</html>
