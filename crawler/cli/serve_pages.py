"""`crawl serve`: the server's own pages -- the timeline, the history of a URL, the search,
folder listings, errors.

Built only from history/html.py's pieces: every string a crawled site chose (URLs, file
names, diff text) goes through text(), every link through path_link() or a quoted query, and
the pages have no script. The server adds a strict Content-Security-Policy on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from crawler.history.changes import Changes
from crawler.history.html import diff_html, page, path_link, text
from crawler.history.timeline import IN_PROGRESS, Run, snapshot_time
from crawler.history.versions import MODIFIED, NOISE, OTHER, UNCHANGED, UNKNOWN, Step, Version
from crawler.output_folder import REPORT, REPORT_HTML

MIRROR = "/mirror/"  # where the files of the output folder are served
HISTORY = "/history"  # the history of a URL: ?url=...
LISTED = 20  # changes of a kind listed per run on the timeline
DIFF_LINES = 400  # lines of one text diff shown

_STEP_WORDS = {UNCHANGED: "unchanged", MODIFIED: "text changed", NOISE: "changed, same visible text",
               OTHER: "content changed", UNKNOWN: "changed (earlier copy not kept)"}
_EXTRA_STYLE = """<style>
form.search { margin: 1rem 0; display: flex; gap: .5rem; } form.search input { flex: 1; font: inherit; padding: .3rem; }
tr.changes td { border-bottom: 2px solid var(--line); } ul.changes { margin: .2rem 0 .6rem; padding-left: 1.2rem; }
.kind { display: inline-block; min-width: 5.5rem; } nav { margin-bottom: 1rem; }
td.nowrap { white-space: nowrap; }
pre.diff .add, pre.diff .del, pre.diff .hunk { display: inline-block; width: 100%; }
</style>"""


def mirror_link(relative: str) -> str:
    """The href of a file of the output folder on this server (escaped)."""
    return MIRROR + path_link(relative) if relative else MIRROR


def history_link(url: str) -> str:
    """The href of the history page of a URL (escaped)."""
    return text(f"{HISTORY}?url={quote(url, safe='')}")


def when(iso: str) -> str:
    """2026-05-02T02:00:07+00:00 -> 2026-05-02 02:00 UTC (as text)."""
    if len(iso) < 16 or iso[10] != "T":
        return text(iso)
    zone = " UTC" if iso.endswith(("+00:00", "Z")) else ""
    return text(f"{iso[:10]} {iso[11:16]}{zone}")


def _page(title: str, body: str) -> str:
    nav = f'<nav><a href="/">timeline</a> · <a href="{HISTORY}">history of a URL</a></nav>'
    return page(title, _EXTRA_STYLE + nav + body)


def _search_form(value: str = "") -> str:
    return (f'<form class="search" action="{HISTORY}" method="get" role="search">'
            f'<input type="search" name="url" value="{text(value)}" aria-label="URL"'
            ' placeholder="a URL, or part of one"><button type="submit">History</button></form>')


# -- the timeline --------------------------------------------------------------------------

def timeline_page(output: str, found: Sequence[Run], start_pages: dict[str, str | None],
                  report_pages: dict[str, bool]) -> str:
    """`output`: the folder's path; `start_pages`, `report_pages`: by the run's root, the page
    its mirror opens at and whether it has a report.html. The newest run's changes are open."""
    name = output.rstrip("/").rpartition("/")[2] or output
    head = (f"<h1>{text(name)}</h1><p class=\"muted\">{text(output)}: {len(found)} "
            f"run{'s' if len(found) != 1 else ''}, newest first</p>")
    if not found:
        return _page(name, head + "<p>No crawl has finished here yet.</p>")
    rows = []
    for number, run in enumerate(found):
        rows.append(_run_row(run, start_pages.get(run.root), report_pages.get(run.root, False)))
        if run.changes is not None and not run.first and _any_change(run.changes):
            rows.append(f'<tr class="changes"><td colspan="7">{_change_lists(run.changes, number == 0)}</td></tr>')
    table = ("<table><thead><tr><th>run</th><th>outcome</th><th class=\"num\">files</th><th class=\"num\">added</th>"
             "<th class=\"num\">modified</th><th class=\"num\">removed</th><th>open</th></tr></thead><tbody>"
             + "".join(rows) + "</tbody></table>")
    return _page(f"{name}: history", head + _search_form() + table)


def _run_row(run: Run, start: str | None, has_report_html: bool) -> str:
    title = f"{when(run.started_at)}"
    title += ' <span class="badge ok">latest</span>' if run.latest else ""
    title += f'<br><span class="muted">{text(run.name or "plain mirror: last run")}</span>'
    links = [f'<a href="{mirror_link(start or run.root)}">mirror</a>']
    if has_report_html:
        links.append(f'<a href="{mirror_link(run.files(REPORT_HTML))}">report</a>')
    if run.report:
        links.append(f'<a href="{mirror_link(run.files(REPORT))}">report.json</a>')
    return (f'<tr><td class="nowrap">{title}</td><td>{_outcome(run)}</td><td class="num nowrap">{_files(run)}</td>'
            f'{_counts(run)}<td class="nowrap">{" · ".join(links)}</td></tr>')


def _files(run: Run) -> str:
    """Files saved, and fetches that failed (broken links aside: the site's own problem)."""
    counts = run.report.get("counts")
    if not isinstance(counts, dict) or not isinstance(counts.get("saved"), int):
        return ""
    failed, broken = counts.get("failed"), counts.get("failed_broken_links", 0)
    failed = failed - broken if isinstance(failed, int) and isinstance(broken, int) else 0
    return f"{counts['saved']:,}" + (f'<br><span class="bad">{failed:,} failed</span>' if failed > 0 else "")


def _counts(run: Run) -> str:
    changes = run.changes
    if changes is None:
        return '<td class="num muted" colspan="3">no changes recorded</td>'
    if run.first:
        return f'<td class="num">{len(changes.added)}</td><td class="muted" colspan="2">(the first crawl)</td>'
    return "".join(f'<td class="num">{len(entries)}</td>'
                   for entries in (changes.added, changes.modified, changes.removed))


def _outcome(run: Run) -> str:
    outcome = run.outcome
    if outcome == IN_PROGRESS:
        return '<span class="muted">no report (running, or stopped before its end)</span>'
    if outcome != "completed":
        error = run.report.get("fatal_error")
        cause = f'<br><span class="muted">{text(error)}</span>' if isinstance(error, str) and error else ""
        return f'<span class="bad">{text(outcome)}</span>{cause}'
    if run.health_problems:
        return ('<span class="bad">completed, not published</span><br><span class="muted">'
                + text("; ".join(run.health_problems)) + "</span>")
    return '<span class="ok">completed</span>'


def _any_change(changes: Changes) -> bool:
    return bool(changes.added or changes.modified or changes.removed)


def _change_lists(changes: Changes, open_: bool) -> str:
    parts = []
    for kind in ("modified", "added", "removed"):
        entries = list(getattr(changes, kind))
        if not entries:
            continue
        urls = [str(entry.get("url")) if isinstance(entry, dict) else str(entry) for entry in entries[:LISTED]]
        items = "".join(f'<li><span class="kind">{kind}</span> <a class="url" href="{history_link(url)}">'
                        f"{text(url)}</a></li>" for url in urls)
        more = f'<li class="muted">and {len(entries) - LISTED} more</li>' if len(entries) > LISTED else ""
        parts.append(f'<ul class="changes">{items}{more}</ul>')
    total = len(changes.added) + len(changes.modified) + len(changes.removed)
    summary = text(f"{total} change{'s' if total != 1 else ''}")
    earlier = snapshot_time(changes.compared_with or "")
    summary += f" since {when(earlier)}" if earlier else " since the previous crawl"
    return f"<details{' open' if open_ else ''}><summary>{summary}</summary>{''.join(parts)}</details>"


# -- the history of a URL ------------------------------------------------------------------

def history_page(url: str, kept: Sequence[Version], changes: Sequence[Step]) -> str:
    """Every version kept of `url`, and the text diff of each change of its visible text."""
    after = {id(step.after): step for step in changes}
    rows = []
    absent: list[Version] = []
    for version in kept:
        if version.entry is None:
            absent.append(version)
            continue
        if absent:
            rows.append(_absent_row(absent))
            absent = []
        rows.append(_version_row(version, after.get(id(version))))
    if absent:
        rows.append(_absent_row(absent))
    table = ("<table><thead><tr><th>run</th><th>fetched</th><th class=\"num\">bytes</th><th>sha256</th>"
             "<th>since the version before</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    diffs = [f'<h3>{_run_name(step.before)} → {_run_name(step.after)}</h3>{_diff(step.diff)}'
             for step in changes if step.kind == MODIFIED]
    body = (f"<h1>History of a URL</h1><p class=\"url\"><code>{text(url)}</code></p>{_search_form(url)}"
            f"<h2>{len([v for v in kept if v.entry])} versions kept</h2>{table}"
            + (f"<h2>Changes of the visible text</h2>{''.join(diffs)}" if diffs else ""))
    return _page(f"History of {url}", body)


def _version_row(version: Version, step: Step | None) -> str:
    entry = version.entry
    assert entry is not None
    run = _run_name(version)
    if version.served:
        run = f'<a href="{mirror_link(version.served)}" title="{text(version.run)}">{run}</a>'
    if step is None:
        change = "first version kept"
    elif step.kind == UNCHANGED:
        change = "unchanged" + (" (the same file, hard-linked)" if step.hard_linked else "")
    else:
        change = f'<span class="bad">{text(_STEP_WORDS[step.kind])}</span>'
    return (f"<tr><td>{run}</td><td>{when(entry.fetched_at)}</td><td class=\"num\">{entry.size:,}</td>"
            f"<td><code title=\"{text(entry.sha256)}\">{text(entry.sha256[:12])}</code></td><td>{change}</td></tr>")


def _run_name(version: Version) -> str:
    """A snapshot by its date; a plain mirror's runs by name ("previous crawl")."""
    moment = snapshot_time(version.run)
    return when(moment) if moment else text(version.run)


def _absent_row(absent: list[Version]) -> str:
    runs = _run_name(absent[0]) if len(absent) == 1 else f"{_run_name(absent[0])} … {_run_name(absent[-1])}"
    count = f"{len(absent)} run{'s' if len(absent) > 1 else ''}"
    count = f"{len(absent)} run{'s' if len(absent) > 1 else ''}"
    return f'<tr><td>{runs}</td><td colspan="4" class="muted">not saved ({count})</td></tr>'


def _diff(diff: str) -> str:
    lines = diff.splitlines()
    shown = diff_html(lines[:DIFF_LINES])
    if len(lines) > DIFF_LINES:
        shown += f'<p class="muted">and {len(lines) - DIFF_LINES} more lines</p>'
    return shown


def search_page(query: str, matches: Sequence[str]) -> str:
    """The search box, and the URLs kept that contain what was typed."""
    if not query:
        found = "<p>Type a URL, or part of one, to see every version of it the history keeps.</p>"
    elif not matches:
        found = f"<p>No URL kept contains <code>{text(query)}</code>.</p>"
    else:
        found = (f"<p>URLs kept that contain <code>{text(query)}</code>:</p><ul>"
                 + "".join(f'<li><a class="url" href="{history_link(url)}">{text(url)}</a></li>' for url in matches)
                 + "</ul>")
    return _page("History of a URL", f"<h1>History of a URL</h1>{_search_form(query)}{found}")


# -- folders and errors --------------------------------------------------------------------

def listing_page(relative: str, entries: Sequence[tuple[str, bool]]) -> str:
    """A folder no page was saved as: what it holds."""
    prefix = f"{relative}/" if relative else ""
    items = "".join(f'<li><a href="{mirror_link(prefix + name)}{"/" if is_dir else ""}">{text(name)}'
                    f'{"/" if is_dir else ""}</a></li>' for name, is_dir in entries)
    title = f"/{relative}" if relative else "the output folder"
    return _page(f"Files of {title}", f"<h1>Files of <code>{text(title)}</code></h1><ul>{items}</ul>")


def error_page(status: int, message: str) -> str:
    return _page(f"{status} {message}", f"<h1>{status} {text(message)}</h1>")
