"""Syslog as HAProxy 2.6 does it: the lines and levels (format) and the
non-blocking delivery to `log` targets (sender)."""
