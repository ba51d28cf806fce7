"""Attributes of log records (`extra=`) that the command line's log handlers look at."""

FIELDS = "fields"
"""A dict that JSON logs give as fields of their own (the summary's counts, a failure's URL)."""

ENDING = "ending"
"""True on the record of what ended the run, which the command line reports itself, in one line
on stderr: a console log in text leaves it out, not to say it twice."""
