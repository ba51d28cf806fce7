"""`python -m crawler ...` is the same as the `crawl` command."""

import sys

from crawler.cli import main

sys.exit(main())
