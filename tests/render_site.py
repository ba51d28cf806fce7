"""A site whose pages are built by JavaScript, for the render tests.

- `/`, `/articles/1`, `/articles/2`: one app shell (`<div id="root"></div>` and a script) --
  a single-page app. Its script fetches /api/articles.json and builds the navigation (real
  hrefs, found in no static HTML) and, on an article's path, fetches /api/articles/N.json for
  its text. Its stylesheet names a background image; nothing of it is in any static HTML.
- `/gallery`: a heading, and an image list a script adds.
- `/about.html`: a static page with a script (analytics) and plenty of text: render.mode
  auto leaves it as served. It and `/` come with validators and an hour of freshness.
- `/never`: an app shell whose image never comes: its load event never fires.
- `/crash`: an app shell whose script takes memory until its renderer dies.

The app also asks for what a crawl must not fetch: a POST (/api/hit), a URL robots.txt
disallows (/private/secret.json), and /tracking/pixel.gif (the tests' scope.exclude).
"""

from __future__ import annotations

import json
from pathlib import Path

from crawler.demo.server import SITE, SiteServer
from tests import routes

PNG = (SITE / "static/img/logo.png").read_bytes()  # 32 x 32
ARTICLES = {1: ("Rendered first article", "Text that only the API knows, about owls."),
            2: ("Rendered second article", "More text from the API, about herons.")}
SHELL = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>App</title><link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script></head>
<body><noscript>You need to enable JavaScript to run this app.</noscript><div id="root"></div></body></html>"""
APP = """
async function main() {
  const root = document.getElementById("root");
  const list = await (await fetch("/api/articles.json")).json();
  const nav = document.createElement("nav");
  for (const article of list) {
    const link = document.createElement("a");
    link.href = "/articles/" + article.id;
    link.textContent = article.title;
    nav.append(link, " ");
  }
  const gallery = document.createElement("a");
  gallery.href = "/gallery";
  gallery.textContent = "Gallery";
  gallery.setAttribute("onclick", "track(this)");  // its code is gone with the scripts: removed too
  nav.append(gallery);
  const style = document.createElement("style");  // CSS-in-JS: rules in the CSSOM, none in the text
  document.head.append(style);
  style.sheet.insertRule("main h1 { color: rgb(0, 128, 0) }");
  root.append(nav);
  const match = location.pathname.match(/^\\/articles\\/(\\d+)$/);
  const main = document.createElement("main");
  if (match) {
    const article = await (await fetch("/api/articles/" + match[1] + ".json")).json();
    main.innerHTML = "<h1>" + article.title + "</h1><p>" + article.text + "</p>";
  } else {
    main.innerHTML = "<h1>Rendered home</h1><p>" + list.length + " articles</p>";
  }
  root.append(main);
  // What the crawl must not let through: a POST, a URL robots.txt disallows, one scope.exclude names.
  fetch("/api/hit", {method: "POST", body: "seen"}).catch(() => {});
  fetch("/private/secret.json").catch(() => {});
  new Image().src = "/tracking/pixel.gif";
}
main();
"""
CSS = b"body { font-family: sans-serif; background: url(/img/bg.png) repeat-x; } nav a { margin-right: 1em; }"
GALLERY = b"""<!DOCTYPE html>
<html><head><title>Gallery</title></head><body><h1>Gallery</h1><ul id="pictures"></ul>
<script>
for (const name of ["one", "two", "three"]) {
  const item = document.createElement("li");
  const image = document.createElement("img");
  image.src = "/img/" + name + ".png";
  image.alt = name;
  item.append(image);
  document.getElementById("pictures").append(item);
}
</script></body></html>"""
ABOUT = (b"<!DOCTYPE html><html><head><title>About</title><script src='/analytics.js'></script></head><body>"
         b"<h1>About us</h1><p>" + b"A static page with plenty of text to read without any script. " * 10 +
         b"</p><a href='/'>home</a></body></html>")
NEVER = b"""<!DOCTYPE html><html><head><title>Never</title></head><body><div id="app"></div>
<img src="/stall.png"><script>document.getElementById("app").textContent = "never seen";</script></body></html>"""
CRASH = b"""<!DOCTYPE html><html><head><title>Crash</title></head><body><div id="app"></div><script>
const kept = [];
while (true) kept.push(new Array(1e6).fill(Math.random()));
</script></body></html>"""


def cached_html(body: bytes) -> routes.Route:
    """HTML with validators and an hour of freshness: a re-crawl may reuse it without a request."""
    headers = {"ETag": '"v1"', "Last-Modified": "Mon, 30 Nov 2026 10:00:00 GMT", "Cache-Control": "max-age=3600"}
    return lambda handler: routes.send(handler, 200, body, headers=headers)


def app_routes(stall: float = 30.0) -> dict[str, routes.Route]:
    """The site's routes; /stall.png says nothing for `stall` seconds, then comes."""
    listing = [{"id": number, "title": title} for number, (title, _) in ARTICLES.items()]
    served = {
        "/": cached_html(SHELL), "/articles/1": routes.html(SHELL), "/articles/2": routes.html(SHELL),
        "/app.js": routes.raw(APP.encode(), "text/javascript"), "/app.css": routes.raw(CSS, "text/css"),
        "/api/articles.json": routes.raw(json.dumps(listing).encode(), "application/json"),
        "/gallery": routes.html(GALLERY), "/about.html": cached_html(ABOUT),
        "/analytics.js": routes.raw(b"window.counted = true;", "text/javascript"),
        "/never": routes.html(NEVER), "/stall.png": routes.stall(stall, routes.raw(PNG, "image/png")),
        "/crash": routes.html(CRASH),
        "/robots.txt": routes.text("User-agent: *\nDisallow: /private/\n"),
        "/api/hit": routes.raw(b"{}", "application/json"),
        "/private/secret.json": routes.raw(b"{}", "application/json"),
        "/tracking/pixel.gif": routes.raw(b"GIF89a", "image/gif"),
    }
    for number, (title, text) in ARTICLES.items():
        served[f"/api/articles/{number}.json"] = routes.raw(json.dumps({"title": title, "text": text}).encode(),
                                                          "application/json")
    for name in ("bg", "one", "two", "three"):
        served[f"/img/{name}.png"] = routes.raw(PNG, "image/png")
    return served


def app_site(stall: float = 30.0) -> SiteServer:
    return SiteServer(root=None, routes=app_routes(stall))


def saved_page(output: Path, site: SiteServer, path: str) -> Path:
    """Where the mirror keeps the page at `path` (adjust_extension: .html added)."""
    host = output / f"127.0.0.1:{site.port}"
    name = path.strip("/") or "index"
    return host / (name if name.endswith(".html") else f"{name}.html")
