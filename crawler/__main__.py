"""`python -m crawler ...` is the same as the `crawl` command."""

import sys

from crawler.cli.main import run

sys.exit(run())
