"""What crawl keeps where in an output folder: the names every part of it agrees on.

    OUTPUT/
      <host>/<path>                      the mirror (plain mode): one folder per host
      manifest.jsonl, report.json,       what the last run saved, how it went, what changed
        changes.json, report.html          (report.html: the same for a person, in a browser)
      crawl.log                          scheduled runs log here (crawl schedule)
      warc/<time>.warc.gz                plain mode, output_formats: [files, warc]: one per run
      snapshots/<UTC time>/              snapshot mode: a complete mirror per run, with its own
                                         manifest, report, changes and crawl.warc.gz
      latest -> snapshots/<name>         the newest snapshot that passed its health checks
      .crawl/state.sqlite                the crawl state (the journal a crawl resumes from)
      .crawl/lock                        held by the running crawl; names its pid
      .crawl/previous/                   plain mode: the earlier copies of the pages the last
                                         run changed, and the manifest they belong to

None of these can be a host name in the mirror: a URL never maps to them.
"""

from __future__ import annotations

MANIFEST = "manifest.jsonl"
REPORT = "report.json"
REPORT_HTML = "report.html"
CHANGES = "changes.json"
LOG = "crawl.log"
WARC_DIR = "warc"
WARC_NAME = "crawl.warc.gz"  # in a snapshot
SNAPSHOTS = "snapshots"
LATEST = "latest"
STATE_DIR = ".crawl"
STATE_FILE = "state.sqlite"  # in STATE_DIR
LOCK_FILE = "lock"  # in STATE_DIR
KEPT = "previous"  # in STATE_DIR

RESERVED = frozenset({MANIFEST, REPORT, REPORT_HTML, CHANGES, LOG, WARC_DIR, WARC_NAME, SNAPSHOTS, LATEST, STATE_DIR})
