"""robots.txt: what one host allows, read with protego (wildcards, `$`, Allow/Disallow
precedence by rule length, Crawl-delay, Sitemap lines); and what a page says of its own links
in a robots meta tag or an X-Robots-Tag header (`nofollow`).

What a host's robots.txt *answer* means follows RFC 9309 and the major crawlers:
2xx -> its rules; 4xx (no robots.txt) -> everything allowed; 5xx or no answer after retries
-> nothing allowed (the server may be overloaded; do not add to it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from protego import Protego

from crawler.errors import FetchError
from crawler.models import Response

MAX_VERDICTS = 16384
MAX_ROBOTS_BYTES = 500 * 1024  # what Google reads of a robots.txt; the rest is ignored


@dataclass(frozen=True)
class RobotsRules:
    """One host's rules for our user agent."""

    allow_all: bool = False
    disallow_all: bool = False
    crawl_delay: float | None = None
    sitemaps: tuple[str, ...] = ()
    source: str = field(default="", repr=False, compare=False)  # the text parsed: other workers parse it again
    _parser: Protego | None = field(default=None, repr=False, compare=False)
    _agent: str = "*"
    # URL -> verdict. Read and written under the frontier's lock, the only place asking.
    _verdicts: dict[str, bool] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_body(cls, body: bytes, user_agent: str) -> RobotsRules:
        """The rules of a robots.txt as served: its first MAX_ROBOTS_BYTES, as UTF-8."""
        return cls.parse(body[:MAX_ROBOTS_BYTES].decode("utf-8", "replace"), user_agent)

    @classmethod
    def parse(cls, text: str, user_agent: str) -> RobotsRules:
        parser = Protego.parse(text)
        agent = product_token(user_agent)
        delay = parser.crawl_delay(agent)
        return cls(crawl_delay=float(delay) if delay is not None else None,
                   sitemaps=tuple(parser.sitemaps), source=text, _parser=parser, _agent=agent)

    def allows(self, url: str) -> bool:
        if self.allow_all or self._parser is None:
            return not self.disallow_all
        verdict = self._verdicts.get(url)
        if verdict is None:
            if len(self._verdicts) >= MAX_VERDICTS:  # a big site: start over rather than grow
                self._verdicts.clear()
            verdict = self._verdicts[url] = bool(self._parser.can_fetch(url, self._agent))
        return verdict


ALLOW_ALL = RobotsRules(allow_all=True)
DISALLOW_ALL = RobotsRules(disallow_all=True)


def answered_rules(answer: Response | FetchError, user_agent: str) -> RobotsRules:
    """A host's rules from what became of its robots.txt, after retries (see the module's
    docstring): a response's rules; a 4xx, everything allowed; else nothing allowed."""
    if isinstance(answer, Response):
        return RobotsRules.from_body(answer.body, user_agent)
    return ALLOW_ALL if answer.status is not None and 400 <= answer.status < 500 else DISALLOW_ALL


def product_token(user_agent: str) -> str:
    """The name robots.txt groups are matched against: "crawl" for "crawl/0.1 (...)"."""
    return user_agent.split("/", 1)[0].split(maxsplit=1)[0] if user_agent.strip() else "*"


_NOFOLLOW = frozenset({"nofollow", "none"})  # "none" is noindex and nofollow
# X-Robots-Tag directives that take a value after a colon; any other "name:" names a crawler.
_VALUED = frozenset({"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"})
_SEPARATORS = re.compile(r"[,\s]+")


def nofollow(meta_contents: Iterable[str], header: str | None, user_agent: str) -> bool:
    """Does the page ask crawlers not to follow its links: `<meta name="robots"
    content="nofollow">` (or "none"), or an X-Robots-Tag header saying so to all crawlers or to
    ours ("crawl: nofollow")?"""
    if any(_NOFOLLOW & set(_SEPARATORS.split(content.lower())) for content in meta_contents):
        return True
    return bool(header) and _header_nofollow(header or "", product_token(user_agent).lower())


def _header_nofollow(header: str, agent: str) -> bool:
    """X-Robots-Tag: "noindex, nofollow", "googlebot: nofollow", several of them joined by ","."""
    applies = True  # directives before any "agent:" are for every crawler
    for part in header.split(","):
        name, colon, rest = part.partition(":")
        directive = part
        if colon and name.strip().lower() not in _VALUED:
            applies = name.strip().lower() == agent
            directive = rest
        if applies and directive.strip().lower() in _NOFOLLOW:
            return True
    return False
