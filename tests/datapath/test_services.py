"""The layer-4 control plane: planning map contents (pure), writing them and
swapping Maglev tables, sweeping idle flows."""

from __future__ import annotations

import ctypes
import os

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from pyxlb.datapath import libbpf, loader, maglev, ports, services
from pyxlb.datapath.build import PROG_PIN
from pyxlb.datapath.instance import Instance
from pyxlb.datapath.maps import decode
from pyxlb.datapath.services import (
    Assignment,
    Backend,
    BackendEntry,
    Service,
    Timeouts,
    flow_hash,
    flow_timeout,
    plan,
)

VIP = "10.111.0.100"
SNAT = "10.111.0.2"
NAT_PORTS = range(40000, 40100)
SIZE = 251  # a small prime keeps pure tests fast


def web(*addrs: str, port: int = 80, **backend) -> Service:
    return Service(VIP, port, SNAT, tuple(Backend(a, 8080, **backend) for a in addrs))


def test_ids_and_numbers_count_from_zero():
    p = plan([web("10.0.0.1", "10.0.0.2"), web("10.0.0.3", port=443)], maglev_size=SIZE)
    assert {key: sid for key, (sid, _) in p.services.items()} == {
        (VIP, 80, "tcp"): 0, (VIP, 443, "tcp"): 1}
    assert p.backends == {
        0: BackendEntry(0, "10.0.0.1", 8080, 1, "up"),
        1: BackendEntry(0, "10.0.0.2", 8080, 1, "up"),
        2: BackendEntry(1, "10.0.0.3", 8080, 1, "up")}
    assert set(p.tables[0]) == {0, 1} and set(p.tables[1]) == {2}


def test_servers_keep_their_numbers_and_freed_ones_wait():
    first = plan([web("10.0.0.1", "10.0.0.2", "10.0.0.3")], maglev_size=SIZE)
    current = Assignment({k: sid for k, (sid, _) in first.services.items()}, first.backends)
    second = plan([web("10.0.0.3", "10.0.0.4", "10.0.0.1")], current, maglev_size=SIZE)
    numbers = {e.addr: n for n, e in second.backends.items()}
    # 10.0.0.2's number 1 is not reused in the update that frees it.
    assert numbers == {"10.0.0.1": 0, "10.0.0.3": 2, "10.0.0.4": 3}


def test_a_services_table_follows_maglev_with_global_numbers():
    svc_a = web("10.0.0.1")
    svc_b = Service(VIP, 443, SNAT, (Backend("10.0.0.5", 1, weight=3),
                                     Backend("10.0.0.6", 1, weight=1)))
    p = plan([svc_a, svc_b], maglev_size=SIZE)
    local = maglev.build_table([("10.0.0.5:1", 3), ("10.0.0.6:1", 1)], SIZE)
    assert p.tables[1] == [[1, 2][i] for i in local]


def test_drained_and_down_servers_get_no_slot_but_keep_their_entry():
    p = plan([Service(VIP, 80, SNAT, (Backend("10.0.0.1", 80), Backend("10.0.0.2", 80,
                                                                         state="drain"),
                                      Backend("10.0.0.3", 80, state="down")))],
             maglev_size=SIZE)
    assert set(p.tables[0]) == {0}
    assert [e.state for e in p.backends.values()] == ["up", "drain", "down"]


def test_a_service_with_nothing_up_has_an_empty_table():
    p = plan([web("10.0.0.1", state="down"), Service(VIP, 81, SNAT)], maglev_size=SIZE)
    assert p.tables[0] == p.tables[1] == [services.NO_BACKEND] * SIZE


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Service(VIP, 80, "fd00::1"), "source address fd00::1 is not IPv4"),
    (lambda: Service(VIP, 80, SNAT, (Backend("fd00::2", 80),)), "is not IPv4 like the VIP"),
    (lambda: web("10.0.0.1", "10.0.0.1"), "server 10.0.0.1:8080 is listed twice"),
    (lambda: web("10.0.0.1", weight=257), "weight 257 is not 0-256"),
    (lambda: web("10.0.0.1", state="maint"), "state 'maint'"),
    (lambda: Service(VIP, 0, SNAT), "port out of range"),
    (lambda: Service("vip", 80, SNAT), "'vip' is not an IP address"),
    (lambda: Service(VIP, 80, SNAT, proto="sctp"), "protocol must be one of tcp, udp"),
    (lambda: plan([web("10.0.0.1"), web("10.0.0.2")]), "10.111.0.100:80/tcp is listed twice"),
    (lambda: plan([web(*(f"10.0.0.{i}" for i in range(1, 6)))], backends_max=4,
                  maglev_size=SIZE), "more layer-4 servers than the datapath holds"),
])
def test_impossible_services_are_refused_by_name(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_service_ports_mark_services_and_nat_ports():
    flags = services.service_ports([web(), Service(VIP, 53, SNAT, proto="udp")], range(5, 7))
    assert flags == {("tcp", 80): ports.PORT_SERVICE, ("udp", 53): ports.PORT_SERVICE,
                     ("tcp", 5): ports.PORT_NAT, ("udp", 5): ports.PORT_NAT,
                     ("tcp", 6): ports.PORT_NAT, ("udp", 6): ports.PORT_NAT}


@pytest.mark.parametrize(("current", "expected"), [
    ("", "40000-40099"),
    ("\n", "40000-40099"),
    ("22,8080-8090\n", "22,8080-8090,40000-40099"),
    ("40050-40200", "40000-40200"),
    ("39999,40100", "39999-40100"),
])
def test_nat_ports_join_the_reserved_ports(current, expected):
    assert services.reserved_ports_with(current, NAT_PORTS) == expected


def test_reserving_writes_the_sysctl(tmp_path):
    sysctl = tmp_path / "ip_local_reserved_ports"
    sysctl.write_text("22\n")
    services.reserve_nat_ports(NAT_PORTS, str(sysctl))
    assert sysctl.read_text() == "22,40000-40099"


@pytest.mark.parametrize("bad", [range(0), range(0, 10), range(65000, 65537), range(1, 9, 2)])
def test_impossible_nat_ranges_are_refused(bad):
    with pytest.raises(ValueError, match="NAT source ports"):
        services.check_nat_ports(bad)


@pytest.mark.parametrize(("proto", "forward", "reply", "timeout"), [
    (6, 0, 0, 900.0),
    (6, services.CONN_FIN, 0, 120.0),
    (6, 0, services.CONN_FIN, 120.0),
    (6, services.CONN_FIN, services.CONN_FIN, 10.0),
    (6, 0, services.CONN_RST, 10.0),
    (17, services.CONN_RST, 0, 300.0),
])
def test_a_flows_life_depends_on_what_its_packets_said(proto, forward, reply, timeout):
    assert flow_timeout(proto, forward, reply, Timeouts()) == timeout


@pytest.mark.parametrize(("data", "seed", "expected"), [
    (b"", 0, 0),
    (b"", 1, 0x514E28B7),
    (b"test", 0, 0xBA6BD213),
    (b"\x00" * 4, 0, 0x2362F9DE),
])
def test_the_flow_hash_is_murmur3(data, seed, expected):
    # Reference values of MurmurHash3_x86_32 (whole 32-bit words only).
    assert flow_hash(data, seed) == expected


def test_nat_ports_are_tried_in_order_from_the_hash():
    hash_ = 0x12345678
    first = services.nat_port(hash_, NAT_PORTS)
    assert first == 40000 + (hash_ >> 8) % 100
    assert services.nat_port(hash_, NAT_PORTS, 1) == (first + 1 - 40000) % 100 + 40000


# With the maps.

def maglev_ids(l4) -> dict[int, int]:
    """Service id -> id of the table map in its slot."""
    outer = l4["maglev"]
    found = {}
    for sid in range(outer.max_entries):
        value = ctypes.c_uint32()
        if libbpf.map_lookup(outer.fd, ctypes.c_uint32(sid), value):
            found[sid] = value.value
    return found


def test_applying_writes_every_map(xdp):
    l4 = xdp.l4
    p = services.apply(l4, [web("10.0.0.1", "10.0.0.2")], NAT_PORTS)
    [(key, value)] = xdp.maps["services"].decoded_items()
    assert key == {"addr": VIP, "port": 80, "proto": 6}
    assert value == {"snat_addr": SNAT, "id": 0, "flags": 0, "algorithm": 0, "candidates": 0,
                     "rr_next": 0}
    assert l4.read_backends() == p.backends
    assert list(maglev_ids(l4)) == [0]
    params = xdp.maps["l4_params"]
    assert decode(params.lookup(params.layout.key_type(0))) == {
        "nat_port_min": 40000, "nat_port_count": 100}
    flags = ports.read_flags(xdp.maps["ports"])
    assert flags[("tcp", 80)] == ports.PORT_SERVICE
    assert flags[("tcp", 40099)] == flags[("udp", 40000)] == ports.PORT_NAT
    assert ("tcp", 40100) not in flags


def test_a_table_is_swapped_only_when_its_service_changes(xdp):
    l4 = xdp.l4
    services.apply(l4, [web("10.0.0.1", "10.0.0.2"), web("10.0.0.3", port=443)], NAT_PORTS)
    before = maglev_ids(l4)
    services.apply(l4, [web("10.0.0.1", "10.0.0.2"), web("10.0.0.3", port=443)], NAT_PORTS)
    assert maglev_ids(l4) == before
    services.apply(l4, [web("10.0.0.1", "10.0.0.2", weight=2), web("10.0.0.3", port=443)],
                   NAT_PORTS)
    after = maglev_ids(l4)
    assert after[1] == before[1] and after[0] != before[0]
    rr = Service(VIP, 443, SNAT, (Backend("10.0.0.3", 8080),), algorithm="roundrobin")
    services.apply(l4, [web("10.0.0.1", "10.0.0.2", weight=2), rr], NAT_PORTS)
    assert maglev_ids(l4)[0] == after[0] and maglev_ids(l4)[1] != after[1]


def test_the_assignment_is_read_back_from_the_maps(xdp):
    # What a restarted daemon finds: the same ids and numbers.
    first = services.apply(xdp.l4, [web("10.0.0.1"), web("10.0.0.2", port=443)], NAT_PORTS)
    current = xdp.l4.read_assignment()
    assert current.service_ids == {key: sid for key, (sid, _) in first.services.items()}
    assert current.backends == first.backends


def test_a_removed_service_leaves_nothing_behind(xdp):
    l4 = xdp.l4
    services.apply(l4, [web("10.0.0.1"), web("10.0.0.2", port=443)], NAT_PORTS)
    services.apply(l4, [web("10.0.0.2", port=443)], NAT_PORTS)
    assert [k["port"] for k, _ in xdp.maps["services"].decoded_items()] == [443]
    assert list(maglev_ids(l4)) == [1]
    assert [e.addr for e in l4.read_backends().values()] == ["10.0.0.2"]
    assert ("tcp", 80) not in ports.read_flags(xdp.maps["ports"])
    services.apply(l4, [], NAT_PORTS)
    assert len(xdp.maps["services"]) == 0 and not maglev_ids(l4)
    assert ports.read_flags(xdp.maps["ports"]) == {}


def test_other_owners_port_bits_survive(xdp):
    ports.write_tracked(xdp.maps["ports"], xdp.maps["listeners"], [ports.Bind(None, 80)])
    services.apply(xdp.l4, [web("10.0.0.1")], NAT_PORTS)
    services.apply(xdp.l4, [], NAT_PORTS)
    assert ports.read_flags(xdp.maps["ports"]) == {("tcp", 80): ports.PORT_TRACKED}


def conn_entry(l4, name: str, key, **fields):
    table = l4[name]
    value = table.layout.value_type()
    for field, setting in fields.items():
        if field.endswith("_addr"):
            getattr(value, field)[:] = list(bytes(10) + b"\xff\xff" +
                                            bytes(map(int, setting.split("."))))
        else:
            setattr(value, field, setting)
    libbpf.map_update(table.fd, key, value)


def test_sweeping_removes_orphan_replies_once_idle(xdp):
    l4 = xdp.l4
    key_type = l4["conntrack"].layout.key_type
    orphan = services.flow_key(key_type, "10.0.0.1", SNAT, 8080, 40007, "tcp")
    conn_entry(l4, "nat_reverse", orphan, out_src_addr=VIP, out_dst_addr="10.1.1.1",
               out_sport=80, out_dport=1234, last_seen_ns=10**12)
    assert services.sweep(l4, now_ns=10**12 + 899 * 10**9) == services.SweepResult(0, 0)
    assert services.sweep(l4, now_ns=10**12 + 901 * 10**9) == services.SweepResult(0, 1)
    assert len(l4["nat_reverse"]) == 0


def test_a_one_way_flow_lives_by_its_latest_packet_either_way(xdp):
    l4 = xdp.l4
    key_type = l4["conntrack"].layout.key_type
    forward = services.flow_key(key_type, "10.1.1.1", VIP, 1234, 53, "udp")
    conn_entry(l4, "conntrack", forward, out_src_addr=SNAT, out_dst_addr="10.0.0.1",
               out_sport=40007, out_dport=53, last_seen_ns=10**12)
    reply = services.flow_key(key_type, "10.0.0.1", SNAT, 53, 40007, "udp")
    conn_entry(l4, "nat_reverse", reply, out_src_addr=VIP, out_dst_addr="10.1.1.1",
               out_sport=53, out_dport=1234, last_seen_ns=10**12 + 200 * 10**9)
    assert services.sweep(l4, now_ns=10**12 + 400 * 10**9) == services.SweepResult(0, 0)
    assert services.sweep(l4, now_ns=10**12 + 501 * 10**9) == services.SweepResult(1, 0)
    assert len(l4["conntrack"]) == len(l4["nat_reverse"]) == 0


def test_services_and_flows_outlive_a_rebuild_through_the_pins():
    # What `pyxlb up` after a crash finds: the pinned maps, reused.
    if os.geteuid() != 0:
        pytest.skip("pinning BPF objects needs root")
    instance = Instance(f"pyxlbtest{os.getpid()}")
    syn = bytes(Ether() / IP(src="10.1.1.1", dst=VIP) / TCP(sport=999, dport=80, flags="S"))
    ack = bytes(Ether() / IP(src="10.1.1.1", dst=VIP) / TCP(sport=999, dport=80, flags="A"))

    def run(packet: bytes) -> bytes:
        prog_fd = libbpf.obj_get(str(instance.pin_dir / PROG_PIN))
        try:
            return libbpf.prog_test_run(prog_fd, packet).data_out
        finally:
            os.close(prog_fd)

    try:
        loader.build(instance)
        with services.L4Maps.open(instance) as l4:
            services.apply(l4, [web("10.0.0.1", "10.0.0.2", "10.0.0.3")], NAT_PORTS)
        first = Ether(run(syn))
        loader.build(instance)
        with services.L4Maps.open(instance) as l4:
            assert len(l4["conntrack"]) == len(l4["nat_reverse"]) == 1
            assert list(maglev_ids(l4)) == [0]
            services.apply(l4, [web("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4")],
                           NAT_PORTS)
        after = Ether(run(ack))
        assert (after[IP].dst, after[TCP].sport) == (first[IP].dst, first[TCP].sport)
    finally:
        loader.unload(instance)


@pytest.mark.parametrize(("weights", "period"), [
    ([1, 1, 1], [0, 1, 2]),
    ([2, 0, 1], [0, 2, 0]),
    ([5, 1, 1], [0, 0, 1, 0, 2, 0, 0]),  # smooth: the heavy one never runs 5 in a row
    ([4, 2], [0, 1, 0]),                 # weights reduced by their gcd
])
def test_roundrobin_tables_repeat_a_smooth_weighted_turn(weights, period):
    table = services.roundrobin_table(weights, SIZE)
    assert table[:len(period)] == period
    assert table == [period[i % len(period)] for i in range(SIZE)]


def test_roundrobin_with_nothing_up_has_an_empty_table():
    assert services.roundrobin_table([0, 0], SIZE) == [services.maglev.NO_BACKEND] * SIZE
