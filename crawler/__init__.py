"""crawl: mirror websites to disk through a threaded fetch -> parse -> write pipeline."""

__version__ = "0.1.0"
