"""report.html: one run, at a glance, for a person with a browser.

Written beside report.json by every run (the output folder of a plain mirror, each snapshot's
folder): outcome and figures, what the run was bound by, files by content type (a picture),
what changed -- each page linked to its saved copy, each modified page's text diff inline --,
failures by reason, pages the browser could not render (render_failed), URLs skipped by rule.
One file that works from disk: inline CSS and SVG, no script, no request to anywhere; links to
saved copies are relative. Everything the site sent (URLs, titles, text, messages) is escaped
by html.py's helpers. Lists are cut at LIST_CAP entries, so that the report of a 100,000-page
crawl stays small: report.json and changes.json have everything.
"""

from __future__ import annotations

import html
import itertools
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from crawler.config_history import IgnoreRule
from crawler.history.changes import Changes, text_diff
from crawler.history.html import bar_chart, diff_html, page, path_link, text, url
from crawler.history.report import CrawlReport, rendered_line
from crawler.models import Failure, SavedFile, is_html
from crawler.urls import host_of

LIST_CAP = 200  # entries of each list shown
DIFF_CAP = 50  # modified pages whose text diff is inline
DIFF_LINES = 300  # lines of one inline diff
EXAMPLES = 5  # example URLs of each skip rule
TYPES_SHOWN = 10  # content types in the picture; the rest are "other"
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)

STYLE = """<style>
.chart text { font: 12px system-ui, sans-serif; fill: currentColor; } .chart rect { fill: var(--accent); }
.figures td:first-child { color: var(--muted); width: 14rem; } .bar { background: var(--line); height: .7rem;
  width: 12rem; display: inline-block; } .bar > span { background: var(--accent); height: 100%; display: block; }
details { border-bottom: 1px solid var(--line); padding: .25rem 0; } details pre.diff { margin: .5rem 0; }
.cap { font-size: .9em; }
</style>"""


@dataclass(frozen=True)
class Earlier:
    """The crawl before this one, to compare with and link to."""

    entries: Mapping[str, SavedFile]  # its files by URL
    replaced: Path  # where the earlier copies of modified pages are (a plain mirror keeps them in .crawl/previous)
    removed: Path  # where removed pages' copies are
    lasting: bool = True  # False: those copies go at the end of this run (snapshots.keep): no links to them


def shown_urls(changes: Changes) -> Iterator[str]:
    """The URLs whose saved entries the report reads (titles, diffs): the first added and modified."""
    for records in (changes.added, changes.modified):
        for record in itertools.islice(records, LIST_CAP):
            yield str(record["url"])  # type: ignore[index]


def render(report: CrawlReport, folder: Path, *, later: Mapping[str, SavedFile], earlier: Earlier | None,
           ignore: tuple[IgnoreRule, ...] = (), path_of: Callable[[str], str | None] = lambda url: None) -> str:
    """The page for `report`, to be saved in `folder` (the run's mirror). `later`: this run's
    entries of the pages shown (shown_urls); `path_of(url)`: where this run saved a URL (None:
    it did not), so that start URLs and referrers link to their saved copies."""
    links = _Links(folder, path_of)
    sections = [_head(report, links), _bound(report), _types(report),
                _changes(report, links, later, earlier, ignore), _failures(report, links), _skipped(report),
                f'<p class="muted cap">Lists show their first {LIST_CAP} entries, and the text diff of the first '
                f"{DIFF_CAP} modified pages (at most {DIFF_LINES} lines each); report.json and changes.json beside "
                "this file have everything.</p>"]
    return page(f"crawl report: {report.outcome}, {_when(report)}", STYLE + "\n".join(sections))


class _Links:
    """Relative links from the report's folder to saved files, where the file is there."""

    def __init__(self, folder: Path, path_of: Callable[[str], str | None]) -> None:
        self.folder = folder
        self._path_of = path_of

    def to(self, root: Path, path: str, label: str) -> str:
        target = root / path
        if ".." in path.split("/") or not target.is_file():
            return text(label)
        return f'<a href="{path_link(os.path.relpath(target, self.folder).replace(os.sep, "/"))}">{text(label)}</a>'

    def saved(self, address: str) -> str:
        """A link to the saved copy of `address`, or to the site where there is none."""
        path = self._path_of(address)
        return self.to(self.folder, path, address) if path else f'<a href="{url(address)}">{text(address)}</a>'


def _head(report: CrawlReport, links: _Links) -> str:
    tally, counts = report.tally, report.counts()
    good = report.outcome == "completed" and not report.serious_failures and report.published is not False
    rate = report.files_this_run / report.duration_s if report.duration_s else 0.0
    starts = ", ".join(links.saved(start) for start in report.start_urls)
    rows = [("started", f"{_when(report)} (UTC)"), ("duration", f"{report.duration_s:,.1f} s"),
            ("start URLs", starts), ("output", text(report.output)),
            ("files saved", f"{tally.files_saved:,} ({tally.html_pages_saved:,} HTML pages)"),
            ("downloaded", _size(tally.bytes_downloaded)), ("rate", f"{rate:,.1f} files/s"),
            ("failed", f"{counts['failed']:,} ({len(report.serious_failures):,} after retries, "
                       f"{counts['failed_broken_links']:,} broken links, "
                       f"{counts['failed_off_site']:,} on other hosts)"),
            ("skipped", f"{len(report.skipped):,} by scope or robots.txt; {len(report.not_fetched):,} not fetched")]
    if tally.pages_rendered or tally.render_failures:
        rows.append(("rendered", text(rendered_line(tally).partition(": ")[2])))
    if report.offline_links is not None and report.offline_links.total:
        ok, total = report.offline_links.ok, report.offline_links.total
        rows.append(("links that work offline", f"{ok:,} of {total:,} ({100 * ok / total:.1f}%)"))
    if report.snapshot is not None:
        state = {True: "published as latest", False: "NOT published: " + "; ".join(report.health_problems or []),
                 None: "not published"}[report.published]
        rows.append(("snapshot", text(f"{report.snapshot}: {state}")))
    if report.resumed_from:
        rows.append(("resumed", text(f"the crawl started {report.resumed_from}")))
    if report.fatal_error:
        rows.append(("stopped by", text(report.fatal_error)))
    rows += [("warning", text(warning)) for warning in report.warnings]
    shown = report.outcome if good or report.outcome != "completed" else \
        "completed, not published" if report.published is False else "completed, with failures"
    badge = f'<span class="badge {"ok" if good else "bad"}">{text(shown)}</span>'
    site = text(host_of(report.start_urls[0])) if report.start_urls else ""
    return (f"<h1>crawl report: {site} {badge}</h1>\n<table class=\"figures\">"
            + "".join(f"<tr><td>{name}</td><td>{value}</td></tr>" for name, value in rows) + "</table>")


def _bound(report: CrawlReport) -> str:
    verdict = report.bound_by()
    lines = [f"<p><strong>{text(verdict)}</strong></p>" if verdict else
             "<p>Not enough to go by: the run was too short, or no stage worked.</p>"]
    shares = report.busy_shares()
    if shares:
        lines.append("<table><tr><th>stage</th><th class=\"num\">at once</th><th>busy</th></tr>" + "".join(
            f'<tr><td>{stage}</td><td class="num">{report.slots.get(stage, 0)}</td><td><span class="bar">'
            f'<span style="width:{100 * share:.0f}%"></span></span> {100 * share:.0f}%</td></tr>'
            for stage, share in shares.items()) + "</table>")
    if report.outcome == "completed" and report.not_fetched:
        lines.append(f"<p>What was crawled was limited by scope.max_pages: {len(report.not_fetched):,} URLs "
                     "found were not fetched.</p>")
    lines.append(f'<p class="muted">From how much of what each stage can do at once (its threads; a fetcher drives '
                 f"many downloads) it did, on average over this run: a stage busy 70% or more held the others "
                 f"back. CPU: {report.cpu_seconds:,.1f} s.</p>")
    return "<h2>Bound by</h2>" + "".join(lines)


def _types(report: CrawlReport) -> str:
    kinds = sorted(report.content_types.items(), key=lambda item: -item[1][1])
    if not kinds:
        return ""
    shown, rest = kinds[:TYPES_SHOWN], kinds[TYPES_SHOWN:]
    if rest:
        shown.append(("other", [sum(files for _, (files, _) in rest), sum(size for _, (_, size) in rest)]))
    files = bar_chart("files by content type", [(kind, n, f"{n:,}") for kind, (n, _) in shown])
    sizes = bar_chart("bytes by content type", [(kind, size, _size(size)) for kind, (_, size) in shown])
    return f"<h2>Files by content type</h2><h3>files</h3>{files}<h3>bytes</h3>{sizes}"


def _changes(report: CrawlReport, links: _Links, later: Mapping[str, SavedFile], earlier: Earlier | None,
             ignore: tuple[IgnoreRule, ...]) -> str:
    changes = report.changes
    if changes is None:
        return "<h2>Changes</h2><p>None recorded: only a completed run compares with the crawl before.</p>"
    parts = [f"<h2>Changes</h2><p>{text(changes.headline())}</p>"]
    modified = []
    for number, record in enumerate(itertools.islice(changes.modified, LIST_CAP)):
        modified.append(_modified(record, links, later, earlier, ignore, with_diff=number < DIFF_CAP))
    parts.append(_list("modified", len(changes.modified), "".join(modified)))
    added = "".join(
        f"<tr><td class=\"url\">{links.to(links.folder, str(r['path']), str(r['url']))}</td>"
        f"<td>{text(_title(links.folder, later.get(str(r['url']))) or '')}</td>"
        f"<td class=\"num\">{_size(int(r['size']))}</td></tr>"  # type: ignore[call-overload]
        for r in itertools.islice(changes.added, LIST_CAP))  # type: ignore[index]
    parts.append(_list("added", len(changes.added), f"<table>{added}</table>" if added else ""))
    removed = "".join(
        f"<tr><td class=\"url\">{_earlier_copy(r, links, earlier)}</td><td>{text(r['reason'])}</td>"
        f"<td>last seen {text(r.get('last_seen') or '?')}</td></tr>" for r in changes.removed[:LIST_CAP])
    parts.append(_list("removed", len(changes.removed), f"<table>{removed}</table>" if removed else ""))
    others = [f"{len(changes.noise_only):,} changed only in ignored noise", f"{len(changes.unavailable):,} "
              f"could not be fetched this time (see failures)", f"{len(changes.not_checked):,} not checked"]
    parts.append(f'<p class="muted">Also: {"; ".join(others)}.</p>')
    return "".join(parts)


def _modified(record: Mapping[str, object], links: _Links, later: Mapping[str, SavedFile], earlier: Earlier | None,
              ignore: tuple[IgnoreRule, ...], *, with_diff: bool) -> str:
    address = str(record["url"])
    new, old = later.get(address), earlier.entries.get(address) if earlier else None
    title = _title(links.folder, new)
    head = (f"{links.to(links.folder, str(record['path']), address)}"
            + (f" &mdash; {text(title)}" if title else "")
            + f' <span class="muted">{_size(int(record["old_size"]))} &rarr; '  # type: ignore[call-overload]
              f'{_size(int(record["new_size"]))}</span>')  # type: ignore[call-overload]
    if earlier is not None and old is not None and earlier.lasting:
        head += f" ({links.to(earlier.replaced, old.path, 'earlier copy')})"
    if not with_diff:
        body = f'<p class="muted">Text diff not shown here (only the first {DIFF_CAP}): crawl diff --text.</p>'
    elif earlier is None or old is None or new is None or not (is_html(old.content_type) and
                                                             is_html(new.content_type)):
        body = '<p class="muted">Not an HTML page: no text diff.</p>'
    else:
        diff = text_diff(earlier.replaced / old.path, links.folder / new.path, address,
                         charset_before=old.charset, charset_after=new.charset, ignore=ignore).splitlines()
        more = len(diff) - DIFF_LINES
        body = diff_html(diff[:DIFF_LINES]) + (f'<p class="muted">... and {more:,} more lines</p>' if more > 0 else "")
    return f"<details><summary>{head}</summary>{body}</details>"


def _earlier_copy(record: Mapping[str, object], links: _Links, earlier: Earlier | None) -> str:
    address = str(record["url"])
    if earlier is None or not earlier.lasting or "path" not in record:
        return text(address)
    return links.to(earlier.removed, str(record["path"]), address)


def _failures(report: CrawlReport, links: _Links) -> str:
    failures = report.tally.failures
    if not failures:
        return "<h2>Failures</h2><p>None.</p>" + _render_failed(report, links)
    groups: dict[str, list[Failure]] = defaultdict(list)
    for failure in sorted(failures, key=lambda f: f.url):
        groups[failure.reason].append(failure)
    parts = ["<h2>Failures</h2>"]
    for reason, members in sorted(groups.items(), key=lambda item: -len(item[1])):
        rows = "".join(
            f"<tr><td class=\"url\">{text(f.url)}</td><td>{_kind(f)}</td><td>{text(f.message)}</td>"
            f"<td class=\"url\">{links.saved(f.referrer) if f.referrer else ''}</td></tr>" for f in members[:LIST_CAP])
        table = f"<table><tr><th>URL</th><th>kind</th><th>message</th><th>linked from</th></tr>{rows}</table>"
        parts.append(_list(reason, len(members), table))
    return "".join(parts) + _render_failed(report, links)


def _render_failed(report: CrawlReport, links: _Links) -> str:
    """Pages the browser could not render: saved as served (no failure of the crawl)."""
    failed = sorted(report.tally.render_failures, key=lambda f: f.url)
    if not failed:
        return ""
    rows = "".join(f"<tr><td class=\"url\">{links.saved(f.url)}</td><td>{text(f.message)}</td></tr>"
                   for f in failed[:LIST_CAP])
    return _list("render_failed: saved as served", len(failed),
                 f"<table><tr><th>page</th><th>why it was not rendered</th></tr>{rows}</table>")


def _kind(failure: Failure) -> str:
    return "broken link" if failure.is_client_error else "other host" if failure.off_site else \
        f"HTTP {failure.status}" if failure.status else "no answer"


def _skipped(report: CrawlReport) -> str:
    rules: dict[str, list[str]] = defaultdict(list)
    for address, rule in sorted(report.skipped.items()):
        rules[rule].append(address)
    rows = "".join(
        f"<tr><td>{text(rule)}</td><td class=\"num\">{len(urls):,}</td><td class=\"url\">"
        + "<br>".join(text(address) for address in urls[:EXAMPLES]) + "</td></tr>"
        for rule, urls in sorted(rules.items(), key=lambda item: -len(item[1])))
    parts = ["<h2>Skipped by rule</h2>", f"<table><tr><th>rule</th><th class=\"num\">URLs</th>"
             f"<th>first {EXAMPLES}</th></tr>{rows}</table>" if rows else "<p>None.</p>"]
    if report.not_fetched:
        examples = "<br>".join(text(address) for address in report.not_fetched[:EXAMPLES])
        reason = "max_pages" if report.outcome == "completed" else report.outcome
        parts.append(f"<p>Not fetched ({text(reason)}): {len(report.not_fetched):,}, first: </p>"
                     f"<p class=\"url\">{examples}</p>")
    return "".join(parts)


def _list(title: str, count: int, content: str) -> str:
    more = f'<p class="muted">... and {count - LIST_CAP:,} more</p>' if count > LIST_CAP else ""
    return f"<h3>{text(title)} ({count:,})</h3>{content}{more}"


def _title(folder: Path, entry: SavedFile | None) -> str | None:
    """The <title> of a saved HTML page (its first 64 KB), as text."""
    if entry is None or not is_html(entry.content_type):
        return None
    try:
        with open(folder / entry.path, "rb") as file:
            head = file.read(65536)
    except OSError:
        return None
    found = _TITLE.search(head)
    if not found:
        return None
    try:
        title = found.group(1).decode(entry.charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        title = found.group(1).decode("utf-8", "replace")
    title = html.unescape(title)
    return " ".join(title.split())[:200] or None


def _when(report: CrawlReport) -> str:
    return report.started_at.strftime("%Y-%m-%d %H:%M")


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count:,} B"
