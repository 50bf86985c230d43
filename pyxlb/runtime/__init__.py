"""The runtime API on the `stats socket`: HAProxy's CLI commands as a pure session
(``commands``), the server changes they make in both tiers (``admin``) and the
unix-socket server the daemon runs (``server``)."""
