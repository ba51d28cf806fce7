"""Which discovered URLs the crawl follows, and which rule said no.

Each rule has a name, so a skipped URL can be reported (and later explained) by the rule
that rejected it. Rules are checked cheapest first.
"""

from __future__ import annotations

import re

from crawler.config import ScopeConfig
from crawler.models import LinkKind
from crawler.urls import host_of


class Scope:
    def __init__(self, config: ScopeConfig) -> None:
        self._exact_hosts = frozenset(d for d in config.domains if not d.startswith("*."))
        self._host_suffixes = tuple(d[1:] for d in config.domains if d.startswith("*."))
        self._wildcard_roots = frozenset(d[2:] for d in config.domains if d.startswith("*."))
        self._include = [re.compile(p) for p in config.include]
        self._exclude = [re.compile(p) for p in config.exclude]
        self._max_depth = config.max_depth

    def in_domains(self, url: str) -> bool:
        host = host_of(url)
        return (host in self._exact_hosts or host in self._wildcard_roots
                or (bool(self._host_suffixes) and host.endswith(self._host_suffixes)))

    def rejection(self, url: str, kind: LinkKind, depth: int) -> str | None:
        """The name of the first rule that keeps `url` out of the crawl, or None to crawl it.

        `url` is canonical; `depth` is the number of hops it would be from a start URL.
        Requisites are fetched whatever the depth, since the page that embeds them was saved.
        """
        if not self.in_domains(url):
            return "domain"
        if any(p.search(url) for p in self._exclude):
            return "exclude"
        if kind is LinkKind.PAGE:
            if self._include and not any(p.search(url) for p in self._include):
                return "include"
            if self._max_depth is not None and depth > self._max_depth:
                return "max_depth"
        return None
