"""The rendered page as it is saved: the DOM after its scripts ran, serialized, with the scripts
taken out, so that the copy on disk shows what the reader saw instead of starting an app that
cannot reach its API from there.

SERIALIZE runs in the page, once it has settled, and changes it in place (the tab is closed
after):
- every executable <script> is removed (data blocks -- JSON, JSON-LD, templates -- stay: inert),
  with <link rel=modulepreload> and script preloads, and the inline event handlers (onclick=...)
  whose code is gone with them;
- styles that scripts put in the CSSOM rather than in the text of a <style> (CSS-in-JS
  libraries insert their rules so, and constructed stylesheets are adopted so) are written out
  as <style> text, else the page would lose its look on disk;
- the serialization is a JavaScript string, saved as UTF-8: any charset the page declared is
  replaced by <meta charset="utf-8">, first in <head>.
"""

from __future__ import annotations

SERIALIZE = r"""() => {
  const doc = document;
  const code = /^(|module|(text|application)\/(x-)?(java|ecma)script(\s*;.*)?)$/i;
  for (const script of [...doc.querySelectorAll("script")]) {
    if (code.test((script.getAttribute("type") || "").trim())) script.remove();
  }
  for (const link of [...doc.querySelectorAll('link[rel~="modulepreload" i], link[rel~="preload" i][as="script" i]')]) {
    link.remove();
  }
  for (const element of doc.querySelectorAll("*")) {
    for (const name of element.getAttributeNames()) {
      if (name.startsWith("on")) element.removeAttribute(name);
    }
  }
  const rulesOf = sheet => {
    try { return [...sheet.cssRules].map(rule => rule.cssText).join("\n"); } catch (e) { return ""; }
  };
  for (const style of doc.querySelectorAll("style")) {
    if (style.sheet && !style.textContent.trim()) style.textContent = rulesOf(style.sheet);
  }
  const head = doc.head || doc.documentElement.insertBefore(doc.createElement("head"), doc.documentElement.firstChild);
  for (const sheet of doc.adoptedStyleSheets || []) {
    const style = doc.createElement("style");
    style.textContent = rulesOf(sheet);
    head.append(style);
  }
  for (const meta of [...doc.querySelectorAll('meta[charset], meta[http-equiv="content-type" i]')]) meta.remove();
  const charset = doc.createElement("meta");
  charset.setAttribute("charset", "utf-8");
  head.prepend(charset);
  const doctype = doc.doctype ? new XMLSerializer().serializeToString(doc.doctype) + "\n" : "";
  return doctype + doc.documentElement.outerHTML;
}"""
