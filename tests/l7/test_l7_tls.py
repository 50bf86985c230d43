"""Loading `bind ... ssl crt` as HAProxy does: one PEM with certificate and key, a
``.key`` beside it, or a directory chosen from by SNI. Handshakes run in memory
(MemoryBIO), with no socket."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

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
