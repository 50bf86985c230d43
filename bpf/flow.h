/* Flows of layer-4 services: the key a packet is looked up by, the key of
 * the reply a backend will send, and the hash that places a new flow in a
 * Maglev table and picks its NAT port. pyxlb/datapath/services.py has the
 * hash's Python twin: keep the two in step. */
#ifndef PYXLB_FLOW_H
#define PYXLB_FLOW_H

#include "parsing.h"
#include "structs.h"

#define PYXLB_FLOW_HASH_SEED 0x70786c62  /* "pxlb" */

static __always_inline void pyxlb_flow_key(const struct pyxlb_pkt *pkt, struct flow_key *key)
{
    __builtin_memcpy(key->src_addr, pkt->src.addr, sizeof(key->src_addr));
    __builtin_memcpy(key->dst_addr, pkt->dst, sizeof(key->dst_addr));
    key->sport = pkt->sport;
    key->dport = pkt->dport;
    key->proto = pkt->l4_proto;
}

/* The flow a packet rewritten by `out` belongs to, seen from the other end:
 * the key its replies are looked up by. */
static __always_inline void pyxlb_reply_key(const struct conn *out, __u32 proto,
                                            struct flow_key *key)
{
    __builtin_memcpy(key->src_addr, out->out_dst_addr, sizeof(key->src_addr));
    __builtin_memcpy(key->dst_addr, out->out_src_addr, sizeof(key->dst_addr));
    key->sport = out->out_dport;
    key->dport = out->out_sport;
    key->proto = proto;
}

static __always_inline __u32 pyxlb_rotl32(__u32 x, int r)
{
    return (x << r) | (x >> (32 - r));
}

/* MurmurHash3 (x86, 32 bits) of the key's words, as the CPU reads them. */
static __always_inline __u32 pyxlb_flow_hash(const struct flow_key *key)
{
    const __u32 *words = (const __u32 *)key;
    __u32 h = PYXLB_FLOW_HASH_SEED;

#pragma unroll
    for (int i = 0; i < sizeof(*key) / 4; i++) {
        __u32 k = words[i] * 0xcc9e2d51;

        k = pyxlb_rotl32(k, 15) * 0x1b873593;
        h ^= k;
        h = pyxlb_rotl32(h, 13) * 5 + 0xe6546b64;
    }
    h ^= sizeof(*key);
    h ^= h >> 16;
    h *= 0x85ebca6b;
    h ^= h >> 13;
    h *= 0xc2b2ae35;
    h ^= h >> 16;
    return h;
}

#endif
