/* The program's maps. With PYXLB_PIN_DIR defined (the daemon's build), BCC
 * reuses the maps pinned there or creates and pins them, so their contents
 * outlive the process; without it (unit tests) they are private. */
#ifndef PYXLB_MAPS_H
#define PYXLB_MAPS_H

#include "structs.h"

#ifndef PYXLB_SRC_STATS_MAX
#define PYXLB_SRC_STATS_MAX 65536
#endif

#ifndef PYXLB_CIDR_LIST_MAX
#define PYXLB_CIDR_LIST_MAX 65536
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
/* The kernel requires LPM tries to be allocated on demand. */
PYXLB_MAP("lpm_trie", struct lpm_key, struct cidr_rule, block_list,
          PYXLB_CIDR_LIST_MAX, BPF_F_NO_PREALLOC);
PYXLB_MAP("lpm_trie", struct lpm_key, struct cidr_rule, allow_list,
          PYXLB_CIDR_LIST_MAX, BPF_F_NO_PREALLOC);

#endif
