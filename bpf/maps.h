/* The program's maps. With PYXLB_PIN_DIR defined (the daemon's build), BCC
 * reuses the maps pinned there or creates and pins them, so their contents
 * outlive the process; without it (unit tests) they are private. */
#ifndef PYXLB_MAPS_H
#define PYXLB_MAPS_H

#include "structs.h"

#ifndef PYXLB_SRC_STATS_MAX
#define PYXLB_SRC_STATS_MAX 65536
#endif

/* The stick-table's `size`; the control plane passes the config's with -D,
 * since a map's size is fixed when it is created. */
#ifndef PYXLB_SRC_TRACK_MAX
#define PYXLB_SRC_TRACK_MAX 65536
#endif

#ifndef PYXLB_CIDR_LIST_MAX
#define PYXLB_CIDR_LIST_MAX 65536
#endif

#ifndef PYXLB_LISTENERS_MAX
#define PYXLB_LISTENERS_MAX 1024
#endif

#ifndef PYXLB_SERVICES_MAX
#define PYXLB_SERVICES_MAX 64
#endif

#ifndef PYXLB_BACKENDS_MAX
#define PYXLB_BACKENDS_MAX 4096
#endif

/* A prime: Maglev's permutations visit every slot. */
#ifndef PYXLB_MAGLEV_SIZE
#define PYXLB_MAGLEV_SIZE 65537
#endif

#ifndef PYXLB_CONNTRACK_MAX
#define PYXLB_CONNTRACK_MAX 65536
#endif

#ifdef PYXLB_PIN_DIR
#define PYXLB_MAP(type, key, value, name, max, flags) \
    BPF_TABLE_PINNED(type, key, value, name, max, PYXLB_PIN_DIR "/" #name, flags)
#else
#define PYXLB_MAP(type, key, value, name, max, flags) \
    BPF_F_TABLE(type, key, value, name, max, flags)
#endif

PYXLB_MAP("lru_percpu_hash", struct src_key, struct src_stats, src_stats,
          PYXLB_SRC_STATS_MAX, 0);
PYXLB_MAP("percpu_array", __u32, struct dp_counters, dp_counters, 1, 0);
/* Shared, not per CPU: XDP and the l7 workers add to the same entry. An LRU
 * hash, so that a full table makes room by dropping the least recently used
 * entries, as HAProxy drops its oldest. */
PYXLB_MAP("lru_hash", struct src_key, struct src_track, src_track, PYXLB_SRC_TRACK_MAX, 0);
PYXLB_MAP("array", __u32, struct dp_params, dp_params, 1, 0);
/* The kernel requires LPM tries to be allocated on demand. */
PYXLB_MAP("lpm_trie", struct lpm_key, struct cidr_rule, block_list,
          PYXLB_CIDR_LIST_MAX, BPF_F_NO_PREALLOC);
PYXLB_MAP("lpm_trie", struct lpm_key, struct cidr_rule, allow_list,
          PYXLB_CIDR_LIST_MAX, BPF_F_NO_PREALLOC);
PYXLB_MAP("lpm_trie", struct lpm_key, struct src_rule, src_rules,
          PYXLB_CIDR_LIST_MAX, BPF_F_NO_PREALLOC);
/* Which SYNs are counted: the tracked frontends' ports, and their addresses
 * where they do not bind every address. */
PYXLB_MAP("array", __u32, struct port_info, ports, 65536, 0);
PYXLB_MAP("hash", struct endpoint_key, struct listener, listeners, PYXLB_LISTENERS_MAX, 0);

/* Layer-4 services. Each service's Maglev table (slot -> backend number) is
 * a map of its own in `maglev`, so that the control plane swaps a whole new
 * table in with one update; maglev_table is only the shape they all have. */
PYXLB_MAP("hash", struct endpoint_key, struct service, services, PYXLB_SERVICES_MAX, 0);
PYXLB_MAP("array", __u32, struct backend, backends, PYXLB_BACKENDS_MAX, 0);
PYXLB_MAP("array", __u32, __u32, maglev_table, PYXLB_MAGLEV_SIZE, 0);
PYXLB_MAP("array_of_maps$maglev_table", __u32, __u32, maglev, PYXLB_SERVICES_MAX, 0);
PYXLB_MAP("lru_hash", struct flow_key, struct conn, conntrack, PYXLB_CONNTRACK_MAX, 0);
PYXLB_MAP("lru_hash", struct flow_key, struct conn, nat_reverse, PYXLB_CONNTRACK_MAX, 0);
PYXLB_MAP("percpu_array", __u32, struct l4_stats, service_stats, PYXLB_SERVICES_MAX, 0);
PYXLB_MAP("percpu_array", __u32, struct l4_stats, backend_stats, PYXLB_BACKENDS_MAX, 0);
PYXLB_MAP("array", __u32, struct backend_flows, backend_flows, PYXLB_BACKENDS_MAX, 0);
/* Written by the control plane only (the sweeper), read by leastconn and first. */
PYXLB_MAP("array", __u32, __u64, backend_swept, PYXLB_BACKENDS_MAX, 0);
PYXLB_MAP("array", __u32, struct l4_params, l4_params, 1, 0);
PYXLB_MAP("percpu_array", __u32, struct l4_scratch, l4_scratch, 1, 0);

#endif
