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

/* The config's `tcp-request connection accept|reject|silent-drop if { src
 * NETS }` (`src_rules`, an LPM trie keyed like the lists): for the sources
 * whose longest match is this CIDR, what the first of each tracked
 * frontend's rules that matches them does, one bit per frontend (its
 * number: struct port_info, struct listener). The control plane folds the
 * rules' order into these masks, so one lookup decides. */
struct src_rule {
    __u64 accept;        /* accepted: no later rule of the frontend applies */
    __u64 reject;        /* `reject`: answered with a RST */
    __u64 silent_drop;   /* `silent-drop`: dropped */
    __u64 after_track;   /* that rule follows the frontend's track-sc0: the SYN
                          * is counted first */
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
    /* Counting and reject rules apply only to SYNs for the frontends the
     * kernel tracks (`ports` and `listeners`); 0: to SYNs for any port. */
    __u8 tracked_ports_only;
    /* A rejected SYN is answered with a RST (`reject`); 0: dropped
     * (`silent-drop`). */
    __u8 reject_with_rst;
    /* `src_rules` holds the config's src rules: SYNs for a tracked frontend
     * look their source up there; 0: the lookup is skipped. */
    __u8 src_rules;
    /* 1 + the number of the frontend whose track-sc0 counts SYNs and whose
     * counter rules apply: other frontends' SYNs are neither counted nor
     * checked against them; 0: every SYN the rules apply to. */
    __u8 track_frontend;
};

/* What the program does with a destination port (`ports`, an array indexed
 * by the port number), one set of PYXLB_PORT_* flags per protocol. */
struct port_info {
    __u8 tcp;
    __u8 udp;
    __u8 tcp_frontend;   /* PYXLB_PORT_TRACKED: the number of the frontend that
                          * binds the port on every address */
};

#define PYXLB_PORT_TRACKED      0x01  /* a tracked frontend binds the port on every address */
#define PYXLB_PORT_TRACKED_ADDR 0x02  /* ... on some addresses: ask `listeners` */
#define PYXLB_PORT_SERVICE      0x04  /* a layer-4 service's port on some address: ask `services` */
#define PYXLB_PORT_NAT          0x08  /* a full-NAT source port: replies from backends come
                                       * to it, ask `nat_reverse` */

/* An address, port and protocol: a frontend's bind. IPv4 addresses are
 * stored mapped; the wildcard bind is ::, and the port is in host order. */
struct endpoint_key {
    __u8 addr[16];
    __u16 port;
    __u8 proto;
    __u8 __pad;
};

/* A bind of a frontend whose connections the kernel tracks. */
struct listener {
    __u32 frontend;      /* its number among the tracked frontends (config order,
                          * < PYXLB_TRACKED_FRONTENDS_MAX): its bit in src_rule */
};

#define PYXLB_TRACKED_FRONTENDS_MAX 64

/* A layer-4 service (`services`, keyed by its VIP's endpoint_key). */
struct service {
    __u8 snat_addr[16];  /* full NAT: the source address backends see (the balancer's) */
    __u32 id;            /* its slot in `maglev` and `service_stats`, < PYXLB_SERVICES_MAX */
    __u8 flags;          /* PYXLB_SERVICE_*: how its packets reach a backend */
    __u8 algorithm;      /* PYXLB_ALGO_*: how a new flow picks its backend */
    __u16 candidates;    /* leastconn, first: its table's first slots list this many
                          * backends, the ones taking new flows, in server order */
    __u64 rr_next;       /* roundrobin: new flows so far, the next slot to take */
};

/* Direct server return: only the MACs change; backends hold the VIP on a
 * loopback and answer clients straight, never through the balancer. Without
 * it, full NAT. */
#define PYXLB_SERVICE_DSR 0x01

/* Each service's table in `maglev` holds the backend for every slot; the
 * algorithm says which slot a new flow takes. */
#define PYXLB_ALGO_MAGLEV 0      /* the Maglev slot of the 5-tuple's hash */
#define PYXLB_ALGO_ROUNDROBIN 1  /* the next slot; the table repeats a weighted sequence */
#define PYXLB_ALGO_LEASTCONN 2   /* the candidate with the fewest flows for its weight,
                                  * in turns among equals */
#define PYXLB_ALGO_FIRST 3       /* the first candidate under its maxconn */
/* Candidates a leastconn or first service may list: each is looked at per new flow. */
#define PYXLB_CANDIDATES_MAX 32

/* A server of a layer-4 service (`backends`, an array: the index is the
 * backend's number, which `maglev` tables and conntrack entries hold). */
struct backend {
    __u8 addr[16];
    __u16 port;
    __u8 state;          /* PYXLB_BACKEND_*; only an UP backend gets new flows */
    __u8 __pad;
    __u32 service;       /* its service's id */
    __u32 weight;
    __u32 maxconn;       /* `first`: flows it takes before the next one does; 0: no limit */
};

/* A backend's flows as the kernel counts them (`backend_flows`, shared by
 * every CPU: leastconn compares them): opened on a new flow, closed on the
 * client's first FIN or RST. The sweeper counts in `backend_swept` the flows
 * it removed that never closed that way (idle, unanswered); a backend's
 * active flows are opened - closed - swept. */
struct backend_flows {
    __u64 opened;
    __u64 closed;
};

#define PYXLB_BACKEND_UNUSED 0
#define PYXLB_BACKEND_UP 1
#define PYXLB_BACKEND_DRAIN 2  /* keeps its flows, gets no new one */
#define PYXLB_BACKEND_DOWN 3   /* likewise: flows stay where conntrack put them */

/* A TCP or UDP flow as a packet carries it: the key of `conntrack` (client
 * to VIP) and of `nat_reverse` (backend to the balancer's NAT address).
 * proto is a u32 so that the key has no padding and hashes as whole words. */
struct flow_key {
    __u8 src_addr[16];
    __u8 dst_addr[16];
    __u16 sport;
    __u16 dport;
    __u32 proto;
};

/* What a flow's packets are rewritten to (both maps above): the addresses
 * and ports they leave with. */
struct conn {
    __u8 out_src_addr[16];
    __u8 out_dst_addr[16];
    __u16 out_sport;
    __u16 out_dport;
    __u32 backend;
    __u32 service;
    __u8 state;          /* PYXLB_CONN_*: what went this way */
    __u8 __pad[3];
    __u32 ts_shift;      /* TCP timestamps (tcp_ts.h): added to the client's TSval
                          * (forward entry), to the backend's TSecr (reply entry,
                          * as its negation); 0: left alone */
    __u64 last_seen_ns;  /* bpf_ktime_get_coarse_ns() of the latest packet */
};

#define PYXLB_CONN_FIN 0x01
#define PYXLB_CONN_RST 0x02
#define PYXLB_CONN_ANSWERED 0x04  /* reply entry: the backend sent its SYN-ACK */
#define PYXLB_CONN_DSR 0x08       /* forward entry of a DSR flow: sent on unchanged to
                                   * out_dst_addr's link; no reply entry */
#define PYXLB_CONN_CLOSED 0x10    /* forward entry: counted closed in backend_flows */

/* Where a new flow's two entries are put together (`l4_scratch`, per CPU):
 * the program's stack (512 bytes) cannot hold them beside the rest. */
struct l4_scratch {
    struct conn forward;
    struct conn reply;
    struct flow_key reply_key;
    struct flow_key old_key;  /* the flow a NAT port is taken over from */
};

/* Counters of a service (`service_stats`) or a backend (`backend_stats`),
 * per CPU. */
struct l4_stats {
    __u64 packets;       /* client to backend */
    __u64 bytes;
    __u64 reply_packets; /* backend to client */
    __u64 reply_bytes;
    __u64 new_flows;
    __u64 failed_flows;  /* new flows that found no backend or no NAT port */
    /* `observe layer4`'s passive signals, TCP only, once per flow: the
     * backend answered the SYN (SYN-ACK), or refused it (a RST before any
     * SYN-ACK). A SYN never answered shows in neither. */
    __u64 answered;
    __u64 refused;
    /* TCP/UDP payload bytes each way (HAProxy's bin and bout for a layer-4
     * proxy count these, not frames). */
    __u64 payload;
    __u64 reply_payload;
};

/* Layer-4 settings (array of one), written with the services. */
struct l4_params {
    __u32 nat_port_min;   /* full NAT source ports: [min, min + count) */
    __u32 nat_port_count; /* 0: no new NAT flow is possible */
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
    __u64 rst_sent;      /* rejected SYNs answered with a RST instead of dropped */
    __u64 src_accepted;  /* SYNs a config src rule accepted: no later rule applied */
    __u64 src_rejected;  /* SYNs a config src rule rejected (RST) or silently dropped */
    __u64 l4_forwarded;  /* rewritten toward a backend */
    __u64 l4_replied;    /* a backend's reply rewritten toward its client */
    __u64 l4_new_flows;
    __u64 l4_no_conn;    /* TCP other than a SYN for a service, without a flow: passed */
    __u64 l4_no_backend; /* a new flow found no live backend: passed */
    __u64 l4_no_nat_port;/* a new flow found no free NAT port: passed */
    __u64 l4_fragments;  /* fragments to a service port: passed */
    __u64 l4_tx;         /* sent back out of the interface it came in on */
    __u64 l4_redirected; /* sent out of another interface */
    __u64 fib_no_neigh;  /* rewritten, but the next hop's MAC is unknown: passed */
    __u64 fib_failed;    /* rewritten, but not routable here (no route, forwarding off): passed */
    __u64 l4_icmp;       /* ICMP errors about a layer-4 flow, translated for its other end */
};

#endif
