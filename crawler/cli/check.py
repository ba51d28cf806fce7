"""`crawl check CONFIG [URL ...]`: is the config valid, and would these URLs be crawled?

Like HTTrack's --why: for each URL, the verdict and the rule that decided it -- a scope rule
(domains, include, exclude, the trap rules, logout), the depth limit, or the host's robots.txt,
which is fetched to answer. A page that would be crawled is fetched too, to say whether its
links would be followed (robots_meta_nofollow) and, with render.mode auto or always, whether
it would be rendered in a browser (in mode auto, by the app-shell rule applied to it).
"""

from __future__ import annotations

from dataclasses import dataclass

from crawler.config import Config
from crawler.engine.scope import Scope, logged_in
from crawler.errors import FetchError
from crawler.http.fetcher import Fetcher
from crawler.http.policy import Follow
from crawler.http.robots import RobotsRules, answered_rules, nofollow
from crawler.mirror.links import parse_document
from crawler.models import CrawlItem, LinkKind, Response, is_html
from crawler.render.shell import app_shell
from crawler.urls import InvalidURLError, canonicalize, origin_of


@dataclass(frozen=True)
class Verdict:
    url: str
    crawled: bool
    rule: str  # what decided: a scope rule's name, "robots", "start_url" or "scope"
    reason: str
    rendered: bool | None = None  # render.mode auto or always: would the page be rendered

    def __str__(self) -> str:
        return f"{self.url}: {'crawled' if self.crawled else 'not crawled'} -- {self.rule}: {self.reason}"

    def to_dict(self) -> dict[str, object]:
        """For --json: `rendered` only when the config renders pages."""
        fields = vars(self).copy()
        if self.rendered is None:
            del fields["rendered"]
        return fields


def describe(config: Config) -> str:
    """One line about what a config crawls."""
    scope = config.scope
    depth = "no depth limit" if scope.max_depth is None else f"max_depth {scope.max_depth}"
    robots = "robots.txt obeyed" if config.politeness.robots else "robots.txt ignored"
    mode = f"snapshots, keep {config.snapshots.keep}" if config.snapshots.keep else "plain mirror"
    session = f"; logged in at {config.login.url}" if config.login is not None else \
        "; cookies from http.cookies_file" if config.http.cookies_file is not None else ""
    if session:
        session += " (links that log out are not followed: rule logout)"
    return (f"start {', '.join(config.start_urls)}; domains {', '.join(scope.domains)}; {depth}; "
            f"{robots}; {mode} in {config.output_dir}{session}")


class Checker:
    def __init__(self, config: Config, fetch_robots: bool = True) -> None:
        self._config = config
        self._scope = Scope(config.scope, requisites_anywhere=config.mirror.requisites, logged_in=logged_in(config))
        self._fetch_robots = fetch_robots and config.politeness.robots
        self._robots: dict[str, tuple[RobotsRules, str]] = {}
        self._pages: dict[str, Response | None] = {}  # URL -> the page as fetched (None: it was not)

    def verdict(self, url: str, as_requisite: bool = False) -> Verdict:
        try:
            canonical = canonicalize(url.strip())
        except InvalidURLError as error:
            return Verdict(url, False, "url", str(error))
        kind = LinkKind.REQUISITE if as_requisite else LinkKind.PAGE
        start = canonical in self._config.start_urls
        rule, reason = self._scope.explain(canonical, kind, depth=0 if start else 1)
        if rule is not None:
            return Verdict(canonical, False, rule, reason)
        if self._fetch_robots:
            rules, source = self._robots_of(canonical)
            if not rules.allows(canonical):
                return Verdict(canonical, False, "robots", f"{source} disallows it")
            reason += f"; {source} allows it"
        if self._fetch_robots and not as_requisite:
            reason += self._nofollow(canonical)
        rendered, why = self._rendering(canonical) if not as_requisite else (None, "")
        if start:
            return Verdict(canonical, True, "start_url", f"a start URL; {reason}{why}", rendered)
        depth = self._config.scope.max_depth
        follows_depth = not as_requisite or not self._config.mirror.requisites
        if follows_depth and depth is not None:
            if depth == 0:
                return Verdict(canonical, False, "max_depth", "scope.max_depth is 0: only the start URLs")
            reason += f"; if linked within {depth} hops of a start URL"
        return Verdict(canonical, True, "scope", reason + why, rendered)

    def _rendering(self, url: str) -> tuple[bool | None, str]:
        """Would the page be rendered in a browser (None: render.mode never), and why."""
        mode = self._config.render.mode
        if mode == "never":
            return None, ""
        page = self._page(url)
        if page is None:
            return None, "; not rendered -- it could not be fetched now"
        if not is_html(page.content_type):
            return False, f"; not rendered -- {page.content_type or 'no content type'}, not HTML"
        if mode == "always":
            return True, "; rendered in a browser -- render.mode always"
        shell = app_shell(page.body)
        return shell.render, f"; {'rendered in a browser' if shell.render else 'not rendered'} -- " \
                             f"render.mode auto: {shell.why}"

    def _nofollow(self, url: str) -> str:
        """"; its links are not followed..." if the page says nofollow, else ""."""
        page = self._page(url)  # None: the crawl would fail it -- not a scope rule's doing
        document = parse_document(page.body, page.url, page.content_type, page.charset) \
            if page is not None and is_html(page.content_type) else None
        if document is None:
            return ""
        metas = [content.decode("latin-1") for content in document.robots]
        if not nofollow(metas, (page.headers or {}).get("X-Robots-Tag"), self._config.http.user_agent):
            return ""
        return "; its links are not followed -- robots_meta_nofollow: the page says nofollow (robots meta tag or " \
               "X-Robots-Tag)"

    def _page(self, url: str) -> Response | None:
        """The page at `url`, fetched once (None: it failed)."""
        if url not in self._pages:
            try:
                result = self._fetcher().fetch(CrawlItem(url, 0, LinkKind.PAGE))
            except FetchError:
                result = None
            self._pages[url] = result if isinstance(result, Response) else None
        return self._pages[url]

    def _fetcher(self) -> Fetcher:
        return Fetcher(self._config.http, in_domains=self._scope.in_domains,
                       may_follow=lambda item, target: Follow.NOW)

    def _robots_of(self, url: str) -> tuple[RobotsRules, str]:
        origin = origin_of(url)
        if origin not in self._robots:
            self._robots[origin] = self._fetch(origin + "/robots.txt")
        return self._robots[origin]

    def _fetch(self, robots_url: str) -> tuple[RobotsRules, str]:
        answer: Response | FetchError
        try:
            result = self._fetcher().fetch(CrawlItem(robots_url, 0, LinkKind.ROBOTS))
            assert isinstance(result, Response)  # every redirect is followed
            answer = result
        except FetchError as error:
            answer = error
        rules = answered_rules(answer, self._config.http.user_agent)
        if isinstance(answer, Response):
            return rules, robots_url
        if rules.allow_all:
            return rules, f"{robots_url} (none: HTTP {answer.status})"
        return rules, f"{robots_url} (unavailable: {answer.reason}, so nothing of the host)"
