"""TLS termination for ``bind ... ssl crt PATH``, as HAProxy 2.6 loads certificates.

``PATH`` is a PEM file holding the certificate, its chain and the private key (the
key may also sit beside it in ``PATH.key``, as HAProxy's ssl-load-extra-files
allows), or a directory of such files: then every file is loaded in name order,
the first is the default certificate and the others are chosen by SNI against
their DNS names (subject alternative names, else the common name; ``*.`` wildcards
cover one label). Companion files (``.key``, ``.ocsp``, ``.issuer``, ``.sctl``)
are not certificates.

The context offers ALPN ``http/1.1`` and TLS 1.2 or later (HAProxy 2.6's default
``ssl-min-ver``). A client offering only ``h2`` gets no ALPN and its handshake goes
on, as with HAProxy's bind without ``alpn``. A failed handshake sends the client
OpenSSL's alert before the close, as HAProxy does (``AlertingSSLObject``).
Everything is loaded once, when the listener starts; a file that cannot be loaded
is an error naming the bind's line.
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


class AlertingSSLObject(ssl.SSLObject):
    """The connections' SSL object: a failed handshake's alert reaches the client.

    On a handshake error, asyncio's and uvloop's SSL transports close the
    connection without sending what OpenSSL wrote for the peer (CPython
    gh-98078), so a TLS 1.1 client sees a bare close where HAProxy sends a
    protocol_version alert. Here a failure that left bytes for the peer is first
    reported as "want read": the loop sends them, as after any handshake step.
    The failure itself is raised at the next step: the client's next bytes, its
    close (clients close on a fatal alert), or the handshake timeout (``timeout
    client``) ends the connection.
    """

    _outgoing: ssl.MemoryBIO | None = None
    _failure: ssl.SSLError | None = None

    def do_handshake(self) -> None:
        if self._failure is not None:
            raise self._failure
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            if self._outgoing is None or not self._outgoing.pending:
                raise
            self._failure = exc
            raise ssl.SSLWantReadError("the alert goes out before the failure") from exc


class _Context(ssl.SSLContext):
    """A server context whose SSL objects can see what they leave for the peer."""

    sslobject_class = AlertingSSLObject

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO,
                 server_side: bool = False, server_hostname: str | None = None,
                 session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        obj = super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        if isinstance(obj, AlertingSSLObject):
            obj._outgoing = outgoing
        return obj


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
    ctx = _Context(ssl.PROTOCOL_TLS_SERVER)
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
