"""robots.txt in a crawl shared through Redis: fetched once per host for the whole crawl, by
whichever worker takes it; its text goes to Redis (hash "robots", origin -> rules), and every
other worker parses it from there the first time it needs the host's rules.
"""

from __future__ import annotations

import threading

from crawler.engine.redis_crawl import SharedCrawl
from crawler.http.robots import ALLOW_ALL, DISALLOW_ALL, RobotsRules


def robots_rule(rules: RobotsRules) -> str:
    """The skip rule of a URL the rules keep out."""
    return "robots_unavailable" if rules.disallow_all else "robots"


class SharedRobots:
    """The robots.txt rules this worker knows (they never change within a crawl)."""

    def __init__(self, shared: SharedCrawl, obey: bool, user_agent: str) -> None:
        self._shared = shared
        self._obey = obey
        self._user_agent = user_agent
        self._lock = threading.Lock()  # guards _rules
        self._rules: dict[str, RobotsRules] = {}

    def known(self, origin: str) -> RobotsRules | None:
        """The host's rules, if the crawl knows them yet (ALLOW_ALL when robots are not obeyed)."""
        if not self._obey:
            return ALLOW_ALL
        with self._lock:
            rules = self._rules.get(origin)
        if rules is not None:
            return rules
        text = self._shared.client.hget(f"{self._shared.keys}robots", origin)
        if text is None:
            return None
        rules = ALLOW_ALL if text == "allow" else DISALLOW_ALL if text == "deny" else \
            RobotsRules.parse(text.partition("\n")[2], self._user_agent)
        with self._lock:
            self._rules[origin] = rules
        return rules

    def learn(self, origin: str, rules: RobotsRules, delay_ms: int) -> None:
        """The host's robots.txt answered (here): its rules, and its Crawl-delay, for every worker."""
        text = "allow" if rules.allow_all else "deny" if rules.disallow_all else "rules\n" + rules.source
        self._shared.call("robots", origin, text, int((rules.crawl_delay or 0) * 1000), delay_ms)
        with self._lock:
            self._rules[origin] = rules
