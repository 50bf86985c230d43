"""The tutorial's stick-table examples served by `pyxlb up`, their counters
kept per source in the kernel's table by the l7 tier: the abuser example
(abusers.cfg: the deny onset at the very request HAProxy 2.6 denies, the 61st
within 3 s, as measured with haproxy on the same config in this lab; other
sources unaffected; the flagged source served again once its entry expired)
and the allow-list example (errors.cfg: http_err_rate)."""

from __future__ import annotations

import json
import time

import pytest

# Keep-alive requests from one source address; a denied request closes.
CLIENT = """
import http.client, sys
vip, count, src, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def connect():
    return http.client.HTTPConnection(vip, 80, timeout=3, source_address=(src, 0))
conn, statuses = connect(), []
for _ in range(count):
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    statuses.append(response.status)
    if response.will_close:
        conn.close()
        conn = connect()
print(" ".join(map(str, statuses)))
"""


@pytest.fixture
def guarded(pyxlb_up):
    return pyxlb_up("abusers")


def requests_from(lab, source: str, count: int, path: str = "/") -> list[int]:
    out = lab.run("client", [lab.python, "-c", CLIENT, lab.topo.addr("lb"), str(count), source,
                             path])
    return [int(s) for s in out.stdout.split()]


def test_the_61st_request_is_denied_and_the_flag_lasts_until_expiry(lab, guarded):
    abuser, other = lab.topo.client_addrs[0], lab.topo.client_addrs[1]
    assert requests_from(lab, abuser, 66) == [200] * 60 + [403] * 6
    assert requests_from(lab, other, 3) == [200] * 3
    assert requests_from(lab, abuser, 2) == [403] * 2  # flagged: gpc0 > 0

    entries = {e["key"]["addr"]: e["value"] for e in json.loads(
        guarded.cli("maps", "show", "src_track", "--json", "-i", guarded.instance.name).stdout)}
    assert entries[abuser]["gpc0"] >= 1 and entries[abuser]["conn_cnt"] == 68
    assert entries[other]["gpc0"] == 0

    time.sleep(5.5)  # expire 5s, refreshed by the last request
    assert requests_from(lab, abuser, 2) == [200] * 2


@pytest.fixture
def error_guarded(pyxlb_up):
    return pyxlb_up("errors")


def test_more_than_10_errors_deny_a_source_but_not_the_allow_listed_one(lab, error_guarded):
    # As haproxy 2.6 answered the same sequence on errors.cfg in this lab.
    abuser, other, trusted = lab.topo.client_addrs[0], lab.topo.client_addrs[1], \
        lab.topo.client_addrs[2]
    assert requests_from(lab, abuser, 14, "/notfound") == [404] * 11 + [403] * 3
    assert requests_from(lab, abuser, 2) == [403] * 2
    assert requests_from(lab, trusted, 14, "/notfound") == [404] * 14
    assert requests_from(lab, other, 2) == [200] * 2
