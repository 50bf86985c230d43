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

/* HAProxy's `struct freq_ctr`: events in the current period, which began at
 * curr_tick (a u32 millisecond tick), and in the one before. bpf/freq_ctr.h
 * holds the arithmetic. Aligned to 8 so that {curr_tick, curr_ctr} can be
 * swapped as one 64-bit word: BCC's compiler has 64-bit compare-and-swap only. */
struct freq_ctr {
    __u32 curr_tick;
    __u32 curr_ctr;
    __u32 prev_ctr;
} __attribute__((aligned(8)));

/* One source's stick-table entry (HAProxy's stksess with its stored data),
 * shared by XDP, which counts SYNs, and the l7 tier, which counts requests,
 * errors and gpc0 through the pyxlb_src_track_apply program. Rates whose
 * period is 0 in dp_params are not kept. */
struct src_track {
    struct freq_ctr conn_rate;
    struct freq_ctr http_req_rate;
    struct freq_ctr http_err_rate;
    struct freq_ctr gpc0_rate;
    __u32 expire;        /* ms tick at which the entry expires; 0: never */
    __u32 conn_cnt;
    __u32 conn_cur;      /* open connections l7 tracks; XDP cannot see ends */
    __u32 http_req_cnt;
    __u32 http_err_cnt;
    __u32 gpc0;
};

/* What user space asks pyxlb_src_track_apply to do, as the "packet" of a
 * BPF_PROG_TEST_RUN: add `delta` to src's entry (each rate's curr_ctr is the
 * number of events to count in it). The program answers with the entry as it
 * left it in place of the delta. Both halves are map types, so Python builds
 * the message from their derived layouts, the key first. */
struct src_track_delta {
    struct src_key src;
    struct src_track delta;
};
_Static_assert(__builtin_offsetof(struct src_track_delta, delta) == sizeof(struct src_key),
               "user space puts the delta right after the key");

/* The datapath's parameters, written by the control plane from the config
 * (array of one). All zero is a valid set: nothing counted, nothing enforced. */
struct dp_params {
    __u32 now_ms_override;      /* tests: the clock's ms tick, when non-zero */
    __u32 expire_ms;            /* the stick-table's expire; 0: entries never expire */
    /* Periods (ms) of the rates the table stores; 0: not stored. */
    __u32 conn_rate_period;
    __u32 http_req_rate_period;
    __u32 http_err_rate_period;
    __u32 gpc0_rate_period;
    /* `tcp-request connection reject if { src_X gt N }`, compiled: with
     * reject_X set, a SYN is dropped when X > X_gt. */
    __u32 conn_rate_gt;
    __u32 http_err_rate_gt;
    __u32 gpc0_gt;
    __u8 count_syns;            /* tracking at `tcp-request connection`: XDP counts SYNs */
    __u8 reject_conn_rate;
    __u8 reject_http_err_rate;
    __u8 reject_gpc0;
};

/* What the program did with every packet (per CPU). */
struct dp_counters {
    __u64 packets;
    __u64 not_ip;        /* ARP, LLDP, ...: passed without a look */
    __u64 malformed;     /* truncated or inconsistent headers: passed, not counted */
    __u64 blocked;       /* dropped: the source is on the block list */
    __u64 allowed;       /* a block or a reject rule matched but the source is allowed: passed */
    __u64 tracked;       /* counted in src_stats */
    __u64 track_full;    /* src_stats or src_track refused a new entry */
    __u64 conns_tracked; /* SYNs counted in src_track */
    __u64 conn_rate_rejected;      /* SYNs dropped: conn_rate over its limit */
    __u64 http_err_rate_rejected;  /* SYNs dropped: http_err_rate over its limit */
    __u64 gpc0_rejected;           /* SYNs dropped: gpc0 over its limit (the abuser flag) */
};

#endif
