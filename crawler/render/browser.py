"""One headless Chromium for a crawl, driven by Playwright from a thread of its own.

Playwright's objects belong to the thread (and event loop) that made them. Rather than one
synchronous Playwright -- and one browser process -- per render thread, one thread runs an
asyncio loop that owns Playwright, the browser, its tabs (page.py) and its network
(network.py): the render threads hand it pages (`render`, from any thread) and wait for their
result, and it renders render.parallel of them at once, in as many tabs of the one browser.
One browser is cheaper than several (its processes are shared), and nothing of it can outlive
the crawl: `close` ends it all.

The browser is started at the first page to render: a crawl in render.mode auto that meets no
app shell starts none. A tab that crashes its renderer fails that page only, and is replaced;
a browser that dies (or hangs) is started again for the next page; one that cannot be started
at all, LAUNCH_TRIES times in a row, fails every page at once rather than each waiting for it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any

from crawler.config_render import RenderConfig
from crawler.render.network import BrowserNetwork
from crawler.render.page import Rendered, RenderError, RenderJob, Tab, close_quietly

log = logging.getLogger(__name__)

# This machine's closed network refuses Chromium's background connections: they are off. The
# proxy leads nowhere: every request a page makes is answered by the route handler, and
# anything that would escape it (a redirect Chromium follows itself) fails instead of reaching
# the network. <-loopback>: not even 127.0.0.1 is reached directly. A page's scripts get
# HEAP_MB of heap: one that wants more crashes its own tab, not the machine.
HEAP_MB = 512
FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic", "--proxy-server=http://render-network.invalid:1",
         "--proxy-bypass-list=<-loopback>", f"--js-flags=--max-old-space-size={HEAP_MB}")
LAUNCH_TRIES = 3  # browsers that failed to start in a row before rendering is given up for the run
GRACE = 15.0  # seconds past render.timeout before a render is cut from outside (a hung browser)


class BrowserHost:
    def __init__(self, settings: RenderConfig, network: BrowserNetwork) -> None:
        """`settings.browser`: the Chromium (config.py found it); `network`: the browser's way
        out, used from this host's loop only."""
        assert settings.browser is not None
        self._settings = settings
        self._executable = str(settings.browser)
        self._network = network
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="browser", daemon=True)
        self._thread.start()
        self._playwright: Any = None
        self._browser: Any = None
        self._context: Any = None  # the tabs' (one per browser)
        self._idle: list[Tab] = []  # tabs of the running browser, waiting for a page
        self._launching = asyncio.Lock()  # (bound to the loop when first used, in the loop)
        self._failed_launches = 0
        self.restarts = 0

    def render(self, job: RenderJob) -> Rendered:
        """Render a page, from any thread (waits for the result). Raises RenderError."""
        return asyncio.run_coroutine_threadsafe(self._render(job), self._loop).result()

    @property
    def downloads(self) -> tuple[int, int]:
        """(requests, bytes) the browser's pages cost the sites so far."""
        return self._network.downloads, self._network.downloaded_bytes

    def close(self) -> None:
        """Close the browser, Playwright and the network, then end the loop's thread."""
        asyncio.run_coroutine_threadsafe(self._shut_down(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _render(self, job: RenderJob) -> Rendered:
        browser, tab = await self._tab()
        try:
            return await asyncio.wait_for(tab.render(job, self._settings), self._settings.timeout + GRACE)
        except asyncio.TimeoutError:
            await self._drop(browser, "stopped answering")
            raise RenderError(f"the browser stopped answering (past render.timeout, {self._settings.timeout:g} s); "
                              "it is started again") from None
        finally:
            await self._give_back(browser, tab)

    async def _tab(self) -> tuple[Any, Tab]:
        """An idle tab of the running browser (started now if need be), or a new one."""
        browser = await self._started()
        if self._idle:
            return browser, self._idle.pop()
        try:
            return browser, await Tab.open(self._context, self._network)
        except Exception as error:
            await self._drop(browser, "cannot open a tab")
            raise RenderError(f"the browser cannot open a tab: {str(error).splitlines()[0]}") from None

    async def _give_back(self, browser: Any, tab: Tab) -> None:
        """The tab, emptied, waits for the next page; one that crashed, has rendered its share
        or does not answer is closed (and a browser that died dropped)."""
        if not browser.is_connected():
            await self._drop(browser, "crashed")
        elif browser is self._browser and tab.reusable and await tab.empty():
            self._idle.append(tab)
        else:
            await tab.close()

    async def _started(self) -> Any:
        """The browser, started now if it is not running."""
        async with self._launching:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._failed_launches >= LAUNCH_TRIES:
                raise RenderError(f"the browser {self._executable} cannot be started; no page is rendered")
            try:
                self._browser, self._context = await self._launch()
            except Exception as error:
                self._failed_launches += 1
                log.error("cannot start the browser %s: %s", self._executable, str(error).splitlines()[0])
                raise RenderError(f"cannot start the browser {self._executable}") from None
            self._failed_launches = 0
            return self._browser

    async def _launch(self) -> tuple[Any, Any]:
        from playwright.async_api import async_playwright

        if self._playwright is None:
            self._playwright = await async_playwright().start()
        browser = await self._playwright.chromium.launch(executable_path=self._executable, args=list(FLAGS),
                                                         headless=True)
        context = await browser.new_context(service_workers="block", bypass_csp=True)
        await context.route_web_socket(re.compile(".*"), _refuse_web_socket)
        return browser, context

    async def _drop(self, browser: Any, why: str) -> None:
        """A browser that crashed or hung: closed (its processes killed); the next page starts
        another."""
        async with self._launching:
            if self._browser is not browser:
                return  # another render dropped it already
            self._browser, self._context, self._idle = None, None, []
            self.restarts += 1
        log.warning("the browser %s %s; it is started again for the next page", self._executable, why)
        await close_quietly(browser)

    async def _shut_down(self) -> None:
        if self._browser is not None:
            await close_quietly(self._browser)
            self._browser = None
        if self._playwright is not None:
            try:
                await self._playwright.stop()
            except Exception as error:  # its driver died with the browser
                log.debug("stopping Playwright: %s", error)
        self._network.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _refuse_web_socket(socket: Any) -> None:
    """A WebSocket is never connected: it leads past the crawl's rules, and nothing it brings
    can be saved."""
    await socket.close()
