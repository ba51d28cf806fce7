"""Pages in the browser: a tab renders page after page -- the page served to the browser as the
crawl fetched it, every request it makes answered through the crawl's rules (network.py), then,
once it settled, its DOM without its scripts (dom.py).

A tab is reused rather than opened for each page: a new tab (let alone a new browser context)
costs a renderer process, 150-300 ms on a busy machine, more than rendering a plain page. So
the tabs share one context: a page sees the cookies and localStorage the pages before it left
in the browser, as a reader's browser would. Between two pages a tab is emptied (about:blank),
so that nothing of the last page -- a timer, a late request -- acts during the next one.

What the page asked for is kept: the URLs of its requests -- stylesheets, images, fonts, the
XHR and fetch calls of its scripts, frames -- become requisites of the page, saved through the
crawl's usual way (fetched, journaled, written); a navigation its scripts tried (a redirect
by script) is a page link, followed like the links of its DOM.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from crawler.config_render import RenderConfig
from crawler.errors import FetchError
from crawler.models import Link, LinkKind, Response
from crawler.render.dom import SERIALIZE
from crawler.render.network import Blocked, BrowserNetwork, Refusal
from crawler.urls import InvalidURLError, canonicalize

log = logging.getLogger(__name__)

# Not passed on to the browser with a body that curl has already decoded and measured.
HOP_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"})
CLOSE_TIMEOUT = 10.0  # seconds to close or empty a tab before it is given up as hung
PAGES_PER_TAB = 100  # pages a tab renders before it is closed and another opened (what leaks, goes)


class RenderError(Exception):
    """A page that could not be rendered: why, in a few words (the report's render_failed)."""


@dataclass(frozen=True)
class RenderJob:
    url: str  # the page's URL, after redirects
    document: Response  # the page as the crawl fetched it
    refusal: Refusal  # the scope rule that keeps a URL the page asks for out, or None


@dataclass
class Rendered:
    html: bytes  # the DOM without its scripts, UTF-8
    requested: list[Link] = field(default_factory=list)  # what the page asked for, in order


class Tab:
    """One tab of the browser, rendering one page at a time. Open it with `Tab.open`."""

    def __init__(self, page: Any, network: BrowserNetwork) -> None:
        self._page = page
        self._router = Router(network)
        self.crashed = False
        self.rendered = 0

    @classmethod
    async def open(cls, context: Any, network: BrowserNetwork) -> Tab:
        tab = cls(await context.new_page(), network)
        tab._page.on("crash", tab._crashed)
        await tab._page.route("**/*", tab._router.answer)
        return tab

    @property
    def reusable(self) -> bool:
        return not self.crashed and self.rendered < PAGES_PER_TAB

    async def render(self, job: RenderJob, settings: RenderConfig) -> Rendered:
        """Render `job` (the tab is empty). Raises RenderError."""
        from playwright.async_api import Error
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.timeout
        self.rendered += 1
        self._router.job = job
        try:
            await self._page.goto(job.url, wait_until="load", timeout=_milliseconds(deadline - loop.time()))
            await _settle(self._page, settings.wait, deadline)
            html: str = await self._page.evaluate(SERIALIZE)
        except PlaywrightTimeout:
            raise RenderError(f"not loaded within render.timeout ({settings.timeout:g} s)") from None
        except Error as error:
            if self.crashed:
                raise RenderError("the page crashed the browser's renderer (out of memory?)") from None
            raise RenderError(str(error).splitlines()[0]) from None
        finally:
            requested = self._router.done()
        return Rendered(html.encode("utf-8", "replace"), requested)

    async def empty(self) -> bool:
        """Leave the last page (its timers, its requests): False if the tab does not answer."""
        try:
            await asyncio.wait_for(self._page.goto("about:blank"), CLOSE_TIMEOUT)
        except Exception as error:  # hung, crashed, or the browser is gone
            log.debug("emptying a browser tab: %s", error)
            return False
        return True

    async def close(self) -> None:
        await close_quietly(self._page)

    def _crashed(self, _: Any) -> None:
        self.crashed = True


async def close_quietly(closable: Any) -> None:
    """Close a tab or a browser whatever became of it; one that cannot is hung (the caller's
    check of `is_connected` and the timeout around a render deal with it)."""
    try:
        await asyncio.wait_for(closable.close(), CLOSE_TIMEOUT)
    except Exception as error:  # a crashed browser; or a timeout
        log.debug("closing %s: %s", type(closable).__name__, error)


async def _settle(page: Any, wait: str | float, deadline: float) -> None:
    """After the load event, what render.wait asks for, until the deadline at most."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    remaining = deadline - asyncio.get_running_loop().time()
    if wait == "network_idle":
        try:
            await page.wait_for_load_state("networkidle", timeout=_milliseconds(remaining))
        except PlaywrightTimeout:  # it loaded, and keeps asking (polling): taken as it is now
            log.debug("%s: the network was never idle; taken at render.timeout", page.url)
    elif isinstance(wait, float):
        await asyncio.sleep(max(0.0, min(wait, remaining)))


class Router:
    """Answers every request of one tab: its page's, while it renders one; none otherwise."""

    def __init__(self, network: BrowserNetwork) -> None:
        self._network = network
        self.job: RenderJob | None = None
        self._document_served = False
        self._requested: list[Link] = []

    def done(self) -> list[Link]:
        """The page is rendered (or given up): what it asked for. Its requests stop here."""
        requested, self._requested = self._requested, []
        self.job, self._document_served = None, False
        return requested

    async def answer(self, route: Any, request: Any) -> None:
        from playwright.async_api import Error

        try:
            await self._answer(route, request)
        except Error as error:  # the page is gone (it timed out, the tab was emptied)
            log.debug("browser request %s: %s", request.url, error)

    async def _answer(self, route: Any, request: Any) -> None:
        job = self.job
        top = request.is_navigation_request() and request.frame.parent_frame is None
        if job is not None and top and not self._document_served:
            self._document_served = True
            await _fulfill(route, job.document)
            return
        url = _canonical(request.url)
        if job is None or url is None or request.method not in ("GET", "HEAD"):  # the crawl sends no forms nor posts
            await route.abort("blockedbyclient")
            return
        self._requested.append(Link(url, LinkKind.PAGE if top else LinkKind.REQUISITE))
        if top:  # a script leaving the page: what was saved is the page the reader saw
            await route.abort("blockedbyclient")
            return
        answer = await self._network.get(url, job.refusal)
        if isinstance(answer, Response):
            await _fulfill(route, answer)
        elif isinstance(answer, FetchError) and answer.status is not None:
            await route.fulfill(status=answer.status, body=b"")
        else:
            await route.abort("blockedbyclient" if isinstance(answer, Blocked) else "failed")


async def _fulfill(route: Any, response: Response) -> None:
    headers = {name: value for name, value in (response.headers or {}).items() if name.lower() not in HOP_HEADERS}
    if response.content_type and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = response.content_type + (f"; charset={response.charset}" if response.charset else "")
    await route.fulfill(status=response.status, headers=headers, body=response.body)


def _canonical(url: str) -> str | None:
    try:
        return canonicalize(url)
    except InvalidURLError:
        return None


def _milliseconds(seconds: float) -> float:
    return max(1.0, seconds * 1000)
