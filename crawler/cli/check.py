"""`crawl check CONFIG [URL ...]`: is the config valid, and would these URLs be crawled?

Like HTTrack's --why: for each URL, the verdict and the rule that decided it -- a scope rule
(domains, include, exclude, the trap rules, logout), the depth limit, or the host's robots.txt,
which is fetched to answer. A page that would be crawled is fetched too, to say whether its
links would be followed (robots_meta_nofollow).
"""

from __future__ import annotations

from dataclasses import dataclass

from crawler.config import Config
from crawler.engine.scope import Scope, logged_in
from crawler.errors import FetchError
from crawler.http.fetcher import Fetcher
from crawler.http.policy import Follow
from crawler.http.robots import ALLOW_ALL, DISALLOW_ALL, RobotsRules, nofollow
from crawler.mirror.links import parse_document
from crawler.models import CrawlItem, LinkKind, Response, is_html
from crawler.urls import InvalidURLError, canonicalize, origin_of


@dataclass(frozen=True)
class Verdict:
    url: str
    crawled: bool
    rule: str  # what decided: a scope rule's name, "robots", "start_url" or "scope"
    reason: str

    def __str__(self) -> str:
        return f"{self.url}: {'crawled' if self.crawled else 'not crawled'} -- {self.rule}: {self.reason}"


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
        if start:
            return Verdict(canonical, True, "start_url", f"a start URL; {reason}")
        depth = self._config.scope.max_depth
        follows_depth = not as_requisite or not self._config.mirror.requisites
        if follows_depth and depth is not None:
            if depth == 0:
                return Verdict(canonical, False, "max_depth", "scope.max_depth is 0: only the start URLs")
            reason += f"; if linked within {depth} hops of a start URL"
        return Verdict(canonical, True, "scope", reason)

    def _nofollow(self, url: str) -> str:
        """"; its links are not followed..." if the page says nofollow, else ""."""
        try:
            result = self._fetcher().fetch(CrawlItem(url, 0, LinkKind.PAGE))
        except FetchError:
            return ""  # the crawl would fail it: not a scope rule's doing
        document = parse_document(result.body, result.url, result.content_type, result.charset) \
            if isinstance(result, Response) and is_html(result.content_type) else None
        if document is None:
            return ""
        metas = [content.decode("latin-1") for content in document.robots]
        if not nofollow(metas, (result.headers or {}).get("X-Robots-Tag"), self._config.http.user_agent):
            return ""
        return "; its links are not followed -- robots_meta_nofollow: the page says nofollow (robots meta tag or " \
               "X-Robots-Tag)"

    def _fetcher(self) -> Fetcher:
        return Fetcher(self._config.http, in_domains=self._scope.in_domains,
                       may_follow=lambda item, target: Follow.NOW)

    def _robots_of(self, url: str) -> tuple[RobotsRules, str]:
        origin = origin_of(url)
        if origin not in self._robots:
            self._robots[origin] = self._fetch(origin + "/robots.txt")
        return self._robots[origin]

    def _fetch(self, robots_url: str) -> tuple[RobotsRules, str]:
        try:
            result = self._fetcher().fetch(CrawlItem(robots_url, 0, LinkKind.ROBOTS))
        except FetchError as error:
            if error.status is not None and 400 <= error.status < 500:
                return ALLOW_ALL, f"{robots_url} (none: HTTP {error.status})"
            return DISALLOW_ALL, f"{robots_url} (unavailable: {error.reason}, so nothing of the host)"
        assert isinstance(result, Response)
        return RobotsRules.from_body(result.body, self._config.http.user_agent), robots_url
