"""Loading `bind ... ssl crt` as HAProxy does: one PEM with certificate and key, a
``.key`` beside it, or a directory chosen from by SNI. Handshakes run in memory
(MemoryBIO), with no socket; then on loopback, through the proxy on both event
loops: a failed handshake's alert reaches the client, and ALPN as HAProxy
negotiates it."""

from __future__ import annotations

import socket
import ssl
import warnings
from pathlib import Path

import pytest
from l7_harness import ProxyStarter, Servers, one_server_config

from pyxlb.l7.tls import TLSConfigError, server_context
from pyxlb.lab.certs import make_pem


def handshake(server: ssl.SSLContext, sni: str | None = None,
              alpn: list[str] | None = None) -> ssl.SSLObject:
    """A client handshake against ``server`` in memory; the client's SSLObject."""
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        client_ctx.set_alpn_protocols(alpn)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=sni)
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, obj in (("client", client), ("server", srv)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return client
    raise AssertionError("the handshake did not finish")


def served(obj: ssl.SSLObject) -> bytes:
    """The certificate the server presented (DER)."""
    der = obj.getpeercert(binary_form=True)
    assert der is not None
    return der


def der(pem: Path) -> bytes:
    """The first certificate of a PEM file (DER)."""
    text = pem.read_text()
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(text[:end])


def test_one_pem_with_certificate_and_key(tmp_path: Path) -> None:
    pem = make_pem(tmp_path / "site.pem", "example.com")
    client = handshake(server_context(str(pem), "t.cfg:3"), "example.com", ["h2", "http/1.1"])
    # ALPN: http/1.1 only, whatever else the client offers.
    assert client.selected_alpn_protocol() == "http/1.1"
    assert client.version() in ("TLSv1.2", "TLSv1.3")
    assert served(client) == der(pem)


def test_the_key_may_sit_beside_the_certificate(tmp_path: Path) -> None:
    both = make_pem(tmp_path / "both.pem", "example.com").read_text()
    cert_end = both.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----\n")
    (tmp_path / "site.pem").write_text(both[:cert_end])
    (tmp_path / "site.pem.key").write_text(both[cert_end:])
    assert served(handshake(server_context(str(tmp_path / "site.pem"), "t.cfg:3"))) == \
        der(tmp_path / "both.pem")


def test_a_directory_serves_by_sni_with_the_first_file_as_default(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    default = der(make_pem(certs / "a-default.pem", "default.example"))
    shop = der(make_pem(certs / "b-shop.pem", "shop.example.com"))
    wild = der(make_pem(certs / "c-wild.pem", "*.example.org"))
    (certs / "c-wild.pem.ocsp").write_text("a companion file, not a certificate")
    ctx = server_context(str(certs), "t.cfg:3")
    assert served(handshake(ctx, "shop.example.com")) == shop
    assert served(handshake(ctx, "SHOP.example.com")) == shop
    assert served(handshake(ctx, "www.example.org")) == wild
    assert served(handshake(ctx, "a.b.example.org")) == default
    assert served(handshake(ctx, "other.net")) == default
    assert served(handshake(ctx)) == default


@pytest.mark.parametrize(("setup", "message"), [
    ("missing", "t.cfg:3: 'crt {path}': no such file"),
    ("no-key", "t.cfg:3: 'crt {path}': not a PEM with a certificate and its private key"),
    ("garbage", "t.cfg:3: 'crt {path}': not a PEM with a certificate and its private key"),
    ("empty-dir", "t.cfg:3: 'crt {path}': the directory holds no certificate"),
])
def test_a_crt_that_cannot_be_served_names_the_bind(
    tmp_path: Path, setup: str, message: str
) -> None:
    path = tmp_path / "site.pem"
    if setup == "no-key":
        both = make_pem(tmp_path / "both.pem", "example.com").read_text()
        path.write_text(both[: both.index("-----BEGIN PRIVATE KEY-----")])
    elif setup == "garbage":
        path.write_text("not a certificate\n")
    elif setup == "empty-dir":
        path.mkdir()
    with pytest.raises(TLSConfigError) as err:
        server_context(str(path), "t.cfg:3")
    assert str(err.value).startswith(message.format(path=path))


PROTOCOL_VERSION_ALERT = bytes.fromhex("15030200020246")
"""A fatal protocol_version alert in a TLS 1.1 record: what haproxy 2.6.12 answers a
client offering TLS 1.1 at most (tests/e2e/test_tls_in_lab.py)."""


def tls11_client() -> tuple[ssl.SSLObject, ssl.MemoryBIO, bytes]:
    """A client offering TLS 1.0 to 1.1 only: its SSLObject, incoming BIO and hello."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ctx.wrap_bio(incoming, outgoing, server_hostname="example.com")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return client, incoming, outgoing.read()


def test_a_failed_handshake_leaves_its_alert_out_before_failing(tmp_path: Path) -> None:
    ctx = server_context(str(make_pem(tmp_path / "site.pem", "example.com")), "t.cfg:3")
    _, _, hello = tls11_client()
    s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = ctx.wrap_bio(s_in, s_out, server_side=True)
    s_in.write(hello)
    # First "want read", so that the event loop sends what is pending...
    with pytest.raises(ssl.SSLWantReadError):
        server.do_handshake()
    assert s_out.read() == PROTOCOL_VERSION_ALERT
    # ...then the failure, whatever comes next.
    with pytest.raises(ssl.SSLError, match="UNSUPPORTED_PROTOCOL"):
        server.do_handshake()


def tls_config(port: int, pem: Path) -> str:
    return one_server_config(port).replace("bind :80", f"bind :443 ssl crt {pem}")


def test_a_tls_1_1_client_gets_haproxys_protocol_version_alert(
    backends: Servers, run_proxy: ProxyStarter, tmp_path: Path
) -> None:
    pem = make_pem(tmp_path / "site.pem", "example.com")
    proxy = run_proxy(tls_config(backends.ports["web1"], pem))
    client, incoming, hello = tls11_client()
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=10) as s:
        s.sendall(hello)
        got = b""
        while len(got) < len(PROTOCOL_VERSION_ALERT):
            chunk = s.recv(65536)
            assert chunk, f"closed after {got!r}, with no alert"
            got += chunk
        assert got == PROTOCOL_VERSION_ALERT
        incoming.write(got)
        with pytest.raises(ssl.SSLError, match="TLSV1_ALERT_PROTOCOL_VERSION"):
            client.do_handshake()
        # A client closes on a fatal alert; so does the proxy then.
        s.shutdown(socket.SHUT_WR)
        assert s.recv(65536) == b""


@pytest.mark.parametrize(("offered", "selected"), [
    (["h2"], None),  # no ALPN, and the handshake goes on (haproxy: the same)
    (["h2", "http/1.1"], "http/1.1"),
    (None, None),
])
def test_alpn_over_a_tls_bind(
    backends: Servers, run_proxy: ProxyStarter, tmp_path: Path,
    offered: list[str] | None, selected: str | None,
) -> None:
    pem = make_pem(tmp_path / "site.pem", "example.com")
    proxy = run_proxy(tls_config(backends.ports["web1"], pem))
    ctx = ssl.create_default_context(cafile=str(pem))
    if offered:
        ctx.set_alpn_protocols(offered)
    with socket.create_connection(("127.0.0.1", proxy.port["fe"]), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="example.com") as s:
        assert s.selected_alpn_protocol() == selected
        s.sendall(b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")
