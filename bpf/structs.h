/* Map keys and values shared by the XDP program and the Python control plane.
 *
 * This header is the only definition of these layouts: Python builds its
 * ctypes types from the descriptions BCC derives from it when it compiles the
 * program (pyxlb/datapath/layout.py). Never mirror a struct by hand.
 */
#ifndef PYXLB_STRUCTS_H
#define PYXLB_STRUCTS_H

/* One map serves both families: IPv4 sources are stored IPv4-mapped
 * (::ffff:a.b.c.d), as the kernel's dual-stack sockets show them. */
struct src_key {
    __u8 addr[16];
};

/* A key of the allow and block lists: a CIDR. IPv4 networks are stored
 * mapped too, so an IPv4 /24 has prefixlen 96 + 24. */
struct lpm_key {
    __u32 prefixlen;
    __u8 addr[16];
};

struct cidr_rule {
    __u64 expires_ns;    /* bpf_ktime_get_ns() deadline; 0: for good */
};

/* Per-source traffic seen at the hook (per CPU; readers add the CPUs'
 * counters up and keep the latest of the last_* timestamps). */
struct src_stats {
    __u64 packets;
    __u64 bytes;
    __u64 syns;          /* TCP SYN without ACK: connection attempts */
    __u64 last_syn_ns;   /* bpf_ktime_get_ns() of the latest SYN */
};

/* What the program did with every packet (per CPU). */
struct dp_counters {
    __u64 packets;
    __u64 not_ip;        /* ARP, LLDP, ...: passed without a look */
    __u64 malformed;     /* truncated or inconsistent headers: passed, not counted */
    __u64 blocked;       /* dropped: the source is on the block list */
    __u64 allowed;       /* on the block list but also allowed: passed */
    __u64 tracked;       /* counted in src_stats */
    __u64 track_full;    /* src_stats refused a new entry */
};

#endif
