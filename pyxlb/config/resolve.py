"""Checks that need the whole configuration: every name a section uses (backends,
stick tables, userlists and their groups) must exist, and be of the right kind.

Runs once every section has been read, over the drafts' Refs and the built model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyxlb.config.acl import Ref
from pyxlb.config.errors import ConfigError, Where
from pyxlb.config.keywords import did_you_mean
from pyxlb.config.model import Backend, Userlist
from pyxlb.config.proxy_draft import ProxyDraft


class Resolver:
    """What the configuration declares, to check references against."""

    def __init__(self, proxies: Sequence[ProxyDraft], frontends: Mapping[str, ProxyDraft],
                 backends: Mapping[str, Backend], userlists: Mapping[str, Userlist]) -> None:
        self.frontends = frontends
        self.backends = backends
        self.userlists = userlists
        self.tables = {p.name: p for p in proxies if p.stick_table is not None and p.name}
        self.errors: list[ConfigError] = []

    def check(self, draft: ProxyDraft, default_backend: str | None = None) -> None:
        """Check a section's references, and the backend its frontend defaults to."""
        for ref in draft.scope.refs:
            message = self._problem(draft, ref)
            if message:
                self.errors.append(ConfigError(message, ref.where))
        if default_backend is not None:
            self.check_backend(draft, default_backend, "default_backend",
                               draft.origins.get("default_backend", draft.where))

    def _problem(self, draft: ProxyDraft, ref: Ref) -> str | None:
        if ref.kind == "table":
            if ref.name in self.tables:
                return None
            if not ref.written:
                return (f"{ref.what} needs a stick table, but {draft.label} has none: declare "
                        f"one with 'stick-table', or name another proxy's table")
            hint = did_you_mean(ref.name, self.tables)
            return (f"{ref.what}: no stick table is named '{ref.name}' (a table takes the name "
                    f"of the proxy that declares it){hint}")
        if ref.kind == "userlist":
            if ref.name in self.userlists:
                return None
            return f"{ref.what}: no userlist is named '{ref.name}'" \
                   f"{did_you_mean(ref.name, self.userlists)}"
        if ref.kind == "group":
            userlist = self.userlists.get(ref.userlist)
            if userlist is None or ref.name in userlist.groups:
                return None  # an unknown userlist is reported once, by its own Ref
            return (f"{ref.what}: userlist '{ref.userlist}' has no group '{ref.name}'"
                    f"{did_you_mean(ref.name, userlist.groups)}")
        self.check_backend(draft, ref.name, ref.what, ref.where)
        return None

    def check_backend(self, draft: ProxyDraft, target: str, what: str, where: Where) -> None:
        """A backend a frontend sends to: it must exist, and not turn HTTP into TCP."""
        backend = self.backends.get(target)
        if backend is not None:
            # HAProxy upgrades a tcp frontend's streams to an http backend, not the reverse.
            if draft.mode == "http" and backend.mode == "tcp":
                self.errors.append(ConfigError(
                    f"http {draft.label} cannot use tcp backend '{target}' (at {backend.where}) "
                    f"as its {what}: give both the same 'mode'", where))
            return
        if target in self.frontends:
            reason = f"'{target}' is a frontend, not a backend"
        else:
            reason = f"no backend is named '{target}'{did_you_mean(target, self.backends)}"
        self.errors.append(ConfigError(f"{what} of {draft.label}: {reason}", where))
