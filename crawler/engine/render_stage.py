"""Stage 3, when render.mode is auto or always: the render queue -> the browser -> the page
queue, between the fetchers and the parsers (waiting on the browser).

Each of render.parallel threads takes a fetched response and decides: a page to render (any
HTML page in mode always; in mode auto, one whose static HTML looks like an app shell:
crawler/render/shell.py) goes to the browser, whose one thread renders the pages of all these
threads at once (crawler/render/browser.py: why one thread); anything else goes straight on,
untouched. A rendered page goes on with its DOM as the browser left it, without scripts, and
with what the browser requested for it (`Page.requested`), which the parsers add to its links:
requisites, saved the crawl's usual way.

A page that cannot be rendered (a timeout, a crashed renderer or browser) goes on as it was
served, with a warning and a render_failed note in the report: the crawl loses nothing. A page
cut short by a stop (Ctrl-C) is put back, to be rendered when the crawl resumes.

A rendered page is saved with no validators (ETag, Last-Modified) nor freshness: what it shows
comes from scripts and APIs its own headers say nothing about, so the next crawl fetches and
renders it again rather than asking the server whether the shell changed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from crawler.config import Config
from crawler.engine.interfaces import Frontier
from crawler.engine.outcomes import QueueItem, Sentinel
from crawler.engine.scope import Scope
from crawler.http.fetcher import Fetcher
from crawler.models import CrawlItem, Failure, LinkKind, Page, Response, is_html
from crawler.render.shell import app_shell
from crawler.tally import Tally

if TYPE_CHECKING:
    from crawler.render.browser import BrowserHost  # Playwright: imported at the first page to render
    from crawler.render.network import BrowserNetwork

log = logging.getLogger(__name__)


class RenderStage:
    def __init__(self, config: Config, *, frontier: Frontier, fetcher: Fetcher, scope: Scope,
                 renders: queue.Queue[QueueItem], pages: queue.Queue[QueueItem]) -> None:
        """`renders`: where the fetchers put responses; `pages`: the parsers' queue; `fetcher`:
        the crawl's, whose engine the browser's downloads share (cookies, connections)."""
        self._config = config
        self._always = config.render.mode == "always"
        self._frontier = frontier
        self._fetcher = fetcher
        self._scope = scope
        self._renders = renders
        self._pages = pages
        self._host: BrowserHost | None = None
        self._network: BrowserNetwork | None = None
        self._starting = threading.Lock()  # guards _host: the first two pages to render come at once
        self.browser_started = False  # was a page rendered (or tried)? Not on a site of static pages

    def run(self, tally: Tally) -> None:
        """One render thread, until the fetchers are all done (a sentinel comes)."""
        while not isinstance(page := self._renders.get(), Sentinel):
            assert isinstance(page, Page)
            try:
                goes_on = self._handle(page, tally)
            except Exception:  # a bug: the page goes on as served, never lost
                log.exception("internal error rendering %s", page.response.url)
                goes_on = True
            if goes_on:
                self._pages.put(page)

    def wanted(self, page: Page) -> bool:
        """Is this response rendered? An HTML page or frame as served (a stored copy reused is
        the file saved already), in mode always; in mode auto, an app shell."""
        response = page.response
        if not is_html(response.content_type) or response.stored is not None or \
                page.item.kind not in (LinkKind.PAGE, LinkKind.REQUISITE):
            return False
        return self._always or app_shell(response.body).render

    def _handle(self, page: Page, tally: Tally) -> bool:
        """Render the page if it is wanted; False if it was put back instead (the crawl stops:
        it is rendered when the crawl resumes, not now)."""
        if not self.wanted(page):
            return True
        if self._fetcher.stopping:
            self._frontier.put_back(page.item)
            return False
        tally.working_on(1)
        try:
            return self._render(page, tally)
        finally:
            tally.working_on(0)

    def close(self) -> Tally:
        """After the last render thread ended: the browser and its threads go. Returns what its
        downloads cost (a tally of no thread: no slot)."""
        tally = Tally(stage="render", slots=0)
        if self._host is not None:
            self._host.close()
            tally.browser_requests, tally.browser_bytes = self._host.downloads
            self._host = None
        return tally

    def _render(self, page: Page, tally: Tally) -> bool:
        """Render the page in place; False if it was put back (the crawl stops)."""
        from crawler.render.page import RenderError, RenderJob

        response = page.response
        try:
            rendered = self._browser().render(RenderJob(response.url, response, self._refusal(page.item)))
        except RenderError as error:
            if self._fetcher.stopping:
                self._frontier.put_back(page.item)
                return False
            log.warning("cannot render %s: %s; saving it as served", response.url, error)
            tally.render_failures.append(Failure(response.url, "render_failed", str(error),
                                                 referrer=page.item.referrer))
            return True
        except Exception as exc:  # a bug: the page is saved as served, and noted
            log.exception("internal error rendering %s", response.url)
            tally.render_failures.append(Failure(response.url, "render_failed", f"{type(exc).__name__}: {exc}",
                                                 referrer=page.item.referrer))
            return True
        if self._fetcher.stopping:  # its requests were cut: rendered again when the crawl resumes
            self._frontier.put_back(page.item)
            return False
        page.served = response
        page.response = replace(response, body=rendered.html, charset="utf-8", etag=None, last_modified=None,
                                fresh_until=None)
        page.rendered = True
        page.requested = rendered.requested
        tally.pages_rendered += 1
        return True

    def _refusal(self, item: CrawlItem) -> Callable[[str], str | None]:
        """What the page's requests may reach: what the scope admits as its requisites."""
        depth, chain = self._scope.link_depth(LinkKind.REQUISITE, item.depth), item.chain + 1
        return lambda url: self._scope.rejection(url, LinkKind.REQUISITE, depth, chain)

    def _browser(self) -> BrowserHost:
        with self._starting:
            if self._host is None:
                from crawler.render.browser import BrowserHost
                from crawler.render.network import BrowserNetwork

                config = self._config
                network = BrowserNetwork(self._fetcher, user_agent=config.http.user_agent,
                                         robots=config.politeness.robots, per_host=config.politeness.per_host,
                                         delay=config.politeness.delay, max_redirects=config.http.max_redirects,
                                         known_rules=self._frontier.robots_rules)
                self._host = BrowserHost(config.render, network)
                self._network = network
                self.browser_started = True
            return self._host

    def loaded(self, url: str) -> Response | None:
        """What the browser downloaded from `url` for a page it rendered, if it still holds it:
        the fetchers save that rather than ask the site for it a second time (from their threads)."""
        network = self._network
        return network.cache.loaded(url) if network is not None else None
