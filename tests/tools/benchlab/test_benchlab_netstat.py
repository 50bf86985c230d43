"""A namespace's protocol counters, parsed from the kernel's text and read from a
lab namespace, and the TCP note built from them."""

from __future__ import annotations

import pytest
from benchlab.netstat import (
    OUT_OF_ORDER,
    RETRANSMITTED,
    proc_net_counters,
    read_counters,
    tcp_counters,
    tcp_note,
)

SNMP = """\
Ip: Forwarding DefaultTTL InReceives ForwDatagrams
Ip: 1 64 500 420
IcmpMsg: InType3 OutType5
IcmpMsg: 3 0
Tcp: RtoAlgorithm RetransSegs
Tcp: 1 17
"""
NETSTAT = """\
TcpExt: SyncookiesSent TCPOFOQueue
TcpExt: 0 9
"""


def test_counters_are_named_by_group_and_field_across_both_files():
    c = proc_net_counters(SNMP + NETSTAT)
    assert c["Ip.ForwDatagrams"] == 420 and c["Ip.Forwarding"] == 1
    assert c["IcmpMsg.OutType5"] == 0
    assert c[RETRANSMITTED] == 17 and c[OUT_OF_ORDER] == 9


@pytest.mark.parametrize("text, says", [
    ("Ip: A B\nIp: 1\n", "Ip has 2 names but 1 values"),
    ("Ip: A\nTcp: 1\n", "'Ip' names are followed by 'Tcp' values"),
])
def test_garbled_counters_are_an_error_saying_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=says):
        proc_net_counters(text)


def test_the_tcp_note_tells_what_changed():
    before = {RETRANSMITTED: 10, OUT_OF_ORDER: 5}
    after = {RETRANSMITTED: 13, OUT_OF_ORDER: 5}
    assert tcp_note(before, after) == "TCP: 3 segments retransmitted, 0 queued out of order"


def test_a_lab_namespace_has_both_files_counters_and_they_move_with_traffic(lab):
    c = read_counters(lab, "client")
    assert {"Ip.ForwDatagrams", "Tcp.ActiveOpens", OUT_OF_ORDER} <= set(c)
    url = f"http://{lab.topo.addr('web1')}:{lab.topo.port('web1')}/"
    lab.run("client", ["curl", "-sf", "-m", "3", "-o", "/dev/null", url])
    assert read_counters(lab, "client")["Tcp.ActiveOpens"] == c["Tcp.ActiveOpens"] + 1


def test_tcp_counters_add_the_namespaces_up(lab):
    one = tcp_counters(lab, ["client"])
    two = tcp_counters(lab, ["client", "client"])
    assert set(one) == {RETRANSMITTED, OUT_OF_ORDER}
    assert all(two[k] == 2 * one[k] for k in one)
