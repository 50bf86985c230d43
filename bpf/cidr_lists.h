/* The allow and block lists: LPM tries of CIDRs, each rule for good or until
 * a bpf_ktime_get_ns() deadline. An allowed source is exempt from every block
 * and every reject rule. (The lookups themselves are in pyxlb_xdp.c: BCC
 * rewrites map calls in the main file only.) */
#ifndef PYXLB_CIDR_LISTS_H
#define PYXLB_CIDR_LISTS_H

#include "structs.h"

/* An expired rule stays until the control plane sweeps it; until then it
 * no longer applies. */
static __always_inline int pyxlb_rule_live(const struct cidr_rule *rule)
{
    return rule && (!rule->expires_ns || bpf_ktime_get_ns() < rule->expires_ns);
}

/* The most specific key for a source: the trie finds its longest match. */
static __always_inline void pyxlb_lpm_key(const struct src_key *src, struct lpm_key *key)
{
    key->prefixlen = 128;
    __builtin_memcpy(key->addr, src->addr, sizeof(key->addr));
}

#endif
