"""One page in the browser: a fresh context (nothing shared with the pages before it), the page
served to the browser as the crawl fetched it, every request it makes answered through the
crawl's rules (network.py), then, once it settled, its DOM without its scripts (dom.py).

What the page asked for is kept: the URLs of its requests -- stylesheets, images, fonts, the
XHR and fetch calls of its scripts, frames -- become requisites of the page, saved through the
crawl's usual way (fetched, journaled, written); a navigation its scripts tried (a redirect
by script) is a page link, followed like the links of its DOM.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from crawler.config import RenderConfig
from crawler.errors import FetchError
from crawler.models import Link, LinkKind, Response
from crawler.render.dom import SERIALIZE
from crawler.render.network import Blocked, BrowserNetwork, Refusal
from crawler.urls import InvalidURLError, canonicalize

log = logging.getLogger(__name__)

# Not passed on to the browser with a body that curl has already decoded and measured.
HOP_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"})
CLOSE_TIMEOUT = 10.0  # seconds to close a tab's context before the browser is given up as hung


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


async def render_page(browser: Any, job: RenderJob, network: BrowserNetwork, settings: RenderConfig) -> Rendered:
    """Render `job` in a new context of `browser` (a playwright.async_api.Browser). Raises
    RenderError."""
    from playwright.async_api import Error
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.timeout
    context = None
    crashed: list[bool] = []
    router = Router(job, network)
    try:
        context = await browser.new_context(service_workers="block", bypass_csp=True)
        await context.route_web_socket(re.compile(".*"), _refuse_web_socket)
        await context.route("**/*", router.answer)
        page = await context.new_page()
        page.on("crash", lambda _: crashed.append(True))
        await page.goto(job.url, wait_until="load", timeout=_milliseconds(deadline - loop.time()))
        await _settle(page, settings.wait, deadline)
        html: str = await page.evaluate(SERIALIZE)
    except PlaywrightTimeout:
        raise RenderError(f"not loaded within render.timeout ({settings.timeout:g} s)") from None
    except Error as error:
        if crashed:
            raise RenderError("the page crashed the browser's renderer (out of memory?)") from None
        raise RenderError(str(error).splitlines()[0]) from None
    finally:
        if context is not None:
            await close_quietly(context)
    return Rendered(html.encode("utf-8", "replace"), router.requested)


async def close_quietly(context: Any) -> None:
    """Close a context whatever became of its pages; a browser that cannot is hung (the
    caller's check of `is_connected` and the timeout around a render deal with it)."""
    try:
        await asyncio.wait_for(context.close(), CLOSE_TIMEOUT)
    except Exception as error:  # a crashed browser; or a timeout
        log.debug("closing a browser context: %s", error)


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
    """Answers every request of one page's context."""

    def __init__(self, job: RenderJob, network: BrowserNetwork) -> None:
        self._job = job
        self._network = network
        self._document_served = False
        self.requested: list[Link] = []

    async def answer(self, route: Any, request: Any) -> None:
        from playwright.async_api import Error

        try:
            await self._answer(route, request)
        except Error as error:  # the page is gone (closed at its timeout)
            log.debug("browser request %s: %s", request.url, error)

    async def _answer(self, route: Any, request: Any) -> None:
        top = request.is_navigation_request() and request.frame.parent_frame is None
        if top and not self._document_served:
            self._document_served = True
            await _fulfill(route, self._job.document)
            return
        url = _canonical(request.url)
        if url is None or request.method not in ("GET", "HEAD"):  # the crawl sends no forms nor posts
            await route.abort("blockedbyclient")
            return
        self.requested.append(Link(url, LinkKind.PAGE if top else LinkKind.REQUISITE))
        if top:  # a script leaving the page: what was saved is the page the reader saw
            await route.abort("blockedbyclient")
            return
        answer = await self._network.get(url, self._job.refusal)
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


async def _refuse_web_socket(socket: Any) -> None:
    """A WebSocket is never connected: it leads past the crawl's rules, and nothing it brings
    can be saved."""
    await socket.close()


def _canonical(url: str) -> str | None:
    try:
        return canonicalize(url)
    except InvalidURLError:
        return None


def _milliseconds(seconds: float) -> float:
    return max(1.0, seconds * 1000)
