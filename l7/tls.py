"""TLS termination for ``bind ... ssl crt PATH``, as HAProxy 2.6 loads certificates.

``PATH`` is a PEM file holding the certificate, its chain and the private key (the
key may also sit beside it in ``PATH.key``, as HAProxy's ssl-load-extra-files
allows), or a directory of such files: then every file is loaded in name order,
the first is the default certificate and the others are chosen by SNI against
their DNS names (subject alternative names, else the common name; ``*.`` wildcards
cover one label). Companion files (``.key``, ``.ocsp``, ``.issuer``, ``.sctl``)
are not certificates.

The context offers ALPN ``http/1.1`` and TLS 1.2 or later (HAProxy 2.6's default
``ssl-min-ver``). Everything is loaded once, when the listener starts; a file that
cannot be loaded is an error naming the bind's line.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

COMPANION_SUFFIXES = (".key", ".ocsp", ".issuer", ".sctl")
"""Files in a crt directory that accompany a certificate rather than being one."""

ALPN = ["http/1.1"]


class TLSConfigError(ValueError):
    """A ``crt`` that cannot be served; the message names the bind's line."""


def server_context(crt: str, where: object) -> ssl.SSLContext:
    """The SSLContext serving a bind's ``crt`` (a file or a directory)."""
    path = Path(crt)
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix not in COMPANION_SUFFIXES
        )
        if not files:
            raise TLSConfigError(f"{where}: 'crt {crt}': the directory holds no certificate")
        contexts = [_load(p, where) for p in files]
        default = contexts[0]
        by_name: dict[str, ssl.SSLContext] = {}
        for p, ctx in zip(files, contexts, strict=True):
            for name in _dns_names(p):
                by_name.setdefault(name.lower(), ctx)
        if len(contexts) > 1:
            default.sni_callback = _sni_chooser(by_name)
        return default
    return _load(path, where)


def _new_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(ALPN)
    return ctx


def _load(path: Path, where: object) -> ssl.SSLContext:
    ctx = _new_context()
    keyfile = Path(f"{path}.key")
    try:
        ctx.load_cert_chain(path, keyfile if keyfile.is_file() else None)
    except FileNotFoundError:
        raise TLSConfigError(f"{where}: 'crt {path}': no such file") from None
    except PermissionError:
        raise TLSConfigError(f"{where}: 'crt {path}': permission denied") from None
    except ssl.SSLError as exc:
        detail = f" ({exc.reason})" if exc.reason else ""
        raise TLSConfigError(
            f"{where}: 'crt {path}': not a PEM with a certificate and its private key{detail}"
        ) from None
    return ctx


def _dns_names(path: Path) -> list[str]:
    """The names a certificate serves: its DNS subject alternative names, else its
    common name."""
    # The only certificate parser in the standard library; it reads the first
    # certificate of the PEM, which is the server's.
    decoded: Mapping[str, Any] = ssl._ssl._test_decode_cert(os.fspath(path))  # type: ignore[attr-defined]
    sans = [value for kind, value in decoded.get("subjectAltName", ()) if kind == "DNS"]
    if sans:
        return sans
    return [value for rdn in decoded.get("subject", ()) for key, value in rdn
            if key == "commonName"]


def _sni_chooser(by_name: Mapping[str, ssl.SSLContext]) -> Any:
    def choose(sock: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        if server_name is None:
            return
        name = server_name.lower()
        ctx = by_name.get(name)
        if ctx is None:
            _, dot, parent = name.partition(".")
            ctx = by_name.get("*." + parent) if dot else None
        if ctx is not None:
            sock.context = ctx

    return choose
