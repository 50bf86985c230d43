/* pyxlb's packet hook: parses each packet, drops block-listed sources,
 * counts the rest per source address and passes them to the stack. Compiled by BCC when the daemon starts; the same
 * function runs at XDP or, later, at TC ingress. */
#include <uapi/linux/bpf.h>

#include "maps.h"
#include "parsing.h"

static __always_inline void pyxlb_track_source(struct pyxlb_pkt *pkt, __u64 bytes,
                                               struct dp_counters *counters)
{
    struct src_stats *stats = src_stats.lookup(&pkt->src);

    if (!stats) {
        struct src_stats fresh = {};

        src_stats.update(&pkt->src, &fresh);
        stats = src_stats.lookup(&pkt->src);
        if (!stats) {
            counters->track_full++;
            return;
        }
    }
    stats->packets++;
    stats->bytes += bytes;
    /* The clock is read for connection attempts only: it costs as much as
     * the rest of this function. */
    if ((pkt->tcp_flags & (PYXLB_TCP_SYN | PYXLB_TCP_ACK)) == PYXLB_TCP_SYN) {
        stats->syns++;
        stats->last_syn_ns = bpf_ktime_get_ns();
    }
    counters->tracked++;
}

/* An expired entry stays until the control plane sweeps it; until then it
 * no longer applies. */
static __always_inline int pyxlb_rule_live(struct cidr_rule *rule)
{
    return rule && (!rule->expires_ns || bpf_ktime_get_ns() < rule->expires_ns);
}

static __always_inline int pyxlb_blocked(struct pyxlb_pkt *pkt, struct dp_counters *counters)
{
    struct lpm_key key = {.prefixlen = 128};

    __builtin_memcpy(key.addr, pkt->src.addr, sizeof(key.addr));
    if (!pyxlb_rule_live(block_list.lookup(&key)))
        return 0;
    /* The allow list overrides every block; it is consulted only for
     * blocked sources so that ordinary traffic pays for one lookup. */
    if (pyxlb_rule_live(allow_list.lookup(&key))) {
        counters->allowed++;
        return 0;
    }
    return 1;
}

int pyxlb_xdp(struct xdp_md *ctx)
{
    __u32 zero = 0;
    struct dp_counters *counters = dp_counters.lookup(&zero);
    struct pyxlb_pkt pkt = {};
    int parsed;

    if (!counters)
        return XDP_PASS;
    counters->packets++;

    parsed = pyxlb_parse(ctx, &pkt);
    if (parsed == PYXLB_NOT_IP) {
        counters->not_ip++;
        return XDP_PASS;
    }
    if (parsed == PYXLB_MALFORMED) {
        counters->malformed++;
        return XDP_PASS;
    }
    if (pyxlb_blocked(&pkt, counters)) {
        counters->blocked++;
        return XDP_DROP;
    }
    pyxlb_track_source(&pkt, ctx->data_end - ctx->data, counters);
    return XDP_PASS;
}
