"""Statistics: the live counters (``counters``) and their HAProxy-compatible stats
page and CSV (``page``)."""
