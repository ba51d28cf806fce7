"""Pages built by JavaScript (render.mode auto|always), rendered in the system's Chromium.

shell.py decides which pages need it (render.mode auto); browser.py runs the one browser of a
crawl, on a thread of its own; page.py renders a page in one of its tabs; network.py answers
every request the browser makes, through the crawl's fetcher and within the crawl's rules;
dom.py is the DOM as it is saved, without scripts. The render stage that uses them is
engine/render_stage.py. Playwright (an optional dependency) is imported at the first page to
render, never by a crawl that renders none.
"""
