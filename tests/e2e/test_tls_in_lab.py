"""The tutorial's HTTP-to-HTTPS configuration served by `pyxlb up` in the lab: a
self-signed certificate the test makes, curl following the redirect to HTTPS, and
openssl s_client seeing ALPN http/1.1; and, beside the real HAProxy 2.6 on the
same configuration, the same answers to a TLS 1.1 client and to one offering h2
only."""

from __future__ import annotations

import pytest
from side_by_side import running

from pyxlb.lab.balancer import LabBalancer, lab_config
from pyxlb.lab.certs import make_pem

SHIPPED_PEM = "/tmp/pyxlb-lab-site.pem"


@pytest.fixture
def tls(lab, tmp_path):
    pem = make_pem(tmp_path / "site.pem", "example.com")
    config = tmp_path / "tls.cfg"
    config.write_text(lab_config("tls").read_text().replace(SHIPPED_PEM, str(pem)))
    lb = LabBalancer(lab, config)
    lb.start()
    yield lb
    lb.stop()


def curl(lab, *args: str) -> str:
    vip = lab.topo.addr("lb")
    return lab.run("client", [
        "curl", "-s", "-m", "5", "-k", "-o", "/dev/null",
        "--resolve", f"example.com:80:{vip}", "--resolve", f"example.com:443:{vip}",
        "-w", "%{http_code} %{scheme} %{num_redirects} %header{x-server}|%header{location}",
        *args]).stdout


def test_plain_http_is_sent_to_https_which_is_served(lab, tls):
    assert curl(lab, "http://example.com/secure/x?y=1") == \
        "302 HTTP 0 |https://example.com/secure/x?y=1"
    # ssl_fc is true on the TLS bind: no redirect there.
    first = curl(lab, "https://example.com/")
    assert first in ("200 HTTPS 0 web1|", "200 HTTPS 0 web2|")
    # The tutorial's whole path: curl follows the redirect to the TLS bind.
    assert curl(lab, "-L", "http://example.com/a") in ("200 HTTPS 1 web1|",
                                                       "200 HTTPS 1 web2|")


def test_tls_offers_alpn_http_1_1(lab, tls):
    out = lab.run("client", [
        "openssl", "s_client", "-connect", f"{lab.topo.addr('lb')}:443",
        "-servername", "example.com", "-alpn", "h2,http/1.1"], input="").stdout
    assert "ALPN protocol: http/1.1" in out
    assert "CN = example.com" in out


HAPROXY_TLS_PORT = 8443


@pytest.fixture
def haproxy_too(lab, tls, tmp_path):
    """HAProxy on the same configuration and certificate, its TLS bind on 8443."""
    config = tmp_path / "haproxy.cfg"
    config.write_text((tmp_path / "tls.cfg").read_text()
                      .replace("bind *:80\n", "bind *:8080\n")
                      .replace("bind *:443 ", f"bind *:{HAPROXY_TLS_PORT} "))
    with running(lab, "haproxy", config, [HAPROXY_TLS_PORT]):
        yield


def s_client(lab, port: int, *args: str) -> str:
    """openssl s_client's report of a handshake (stdout and stderr)."""
    done = lab.run("client", [
        "openssl", "s_client", "-connect", f"{lab.topo.addr('lb')}:{port}",
        "-servername", "example.com", *args], input="", check=False)
    return done.stdout + done.stderr


def test_a_tls_1_1_client_gets_the_alert_haproxy_sends(lab, haproxy_too):
    for port in (HAPROXY_TLS_PORT, 443):
        out = s_client(lab, port, "-tls1_1", "-cipher", "ALL:@SECLEVEL=0")
        # A fatal protocol_version alert (70): 7 bytes read, no bare close.
        assert "alert protocol version" in out and "SSL alert number 70" in out, port
        assert "SSL handshake has read 7 bytes" in out, port


def test_a_client_offering_h2_only_gets_no_alpn_from_either(lab, haproxy_too):
    for port in (HAPROXY_TLS_PORT, 443):
        out = s_client(lab, port, "-alpn", "h2")
        assert "No ALPN negotiated" in out, port
        assert "Cipher is TLS_AES_256_GCM_SHA384" in out, port
