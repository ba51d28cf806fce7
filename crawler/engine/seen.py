"""Every URL a crawl admitted -- each is fetched once -- and every one it kept out, with the
rule that did (for the report, and for `crawl check`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from crawler.http.robots import RobotsRules
from crawler.models import CrawlItem


class Journal(Protocol):
    """Where the frontier records what it admits, skips and finishes (crawl state)."""

    def added(self, items: list[CrawlItem]) -> None: ...
    def skipped(self, url: str, rule: str) -> None: ...
    def done(self, url: str) -> None: ...


class NoJournal:
    def added(self, items: list[CrawlItem]) -> None:
        pass

    def skipped(self, url: str, rule: str) -> None:
        pass

    def done(self, url: str) -> None:
        pass


class SeenUrls:
    """Not thread-safe: the frontier calls it under its lock."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._seen: set[str] = set()
        self.skipped: dict[str, str] = {}  # URL -> the rule that kept it out

    def __contains__(self, url: str) -> bool:
        return url in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, url: str) -> None:
        """`url` is in the crawl from now on (a rule that skipped it before no longer holds:
        too deep as a page, it may come back as a requisite)."""
        self._seen.add(url)
        self.skipped.pop(url, None)

    def restore(self, seen: Iterable[str], skipped: dict[str, str]) -> None:
        self._seen.update(seen)
        self.skipped.update(skipped)

    def skip(self, url: str, rule: str) -> None:
        """The scope rule `rule` kept `url` out (the first rule wins; an admitted URL is in)."""
        if url not in self._seen and url not in self.skipped:
            self.skipped[url] = rule
            self.journal.skipped(url, rule)

    def forbidden(self, url: str, rules: RobotsRules | None) -> bool:
        """Do the known robots.txt `rules` of its host keep `url` out? (It is skipped if so.)"""
        if rules is None or rules.allows(url):
            return False
        if url not in self.skipped:
            rule = _robots_rule(rules)
            self.skipped[url] = rule
            self.journal.skipped(url, rule)
        return True

    def disallowed(self, url: str, rules: RobotsRules) -> None:
        """A queued URL that robots.txt keeps out: skipped, and no longer pending."""
        rule = _robots_rule(rules)
        self.skipped[url] = rule
        self.journal.skipped(url, rule)
        self.journal.done(url)


def _robots_rule(rules: RobotsRules) -> str:
    return "robots_unavailable" if rules.disallow_all else "robots"
