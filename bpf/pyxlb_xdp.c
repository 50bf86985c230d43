/* pyxlb's packet hook: parses each packet, drops block-listed sources, counts
 * TCP connection attempts per source (HAProxy's stick-table counters) and
 * drops those a reject rule matches, counts the rest per source address and
 * passes them to the stack. Compiled by BCC when the daemon starts; the same
 * function runs at XDP or, later, at TC ingress.
 *
 * A second entry, pyxlb_src_track_apply, is not a hook: user space runs it
 * with BPF_PROG_TEST_RUN to add to a src_track entry in place. */
#include <uapi/linux/bpf.h>

#include "cidr_lists.h"
#include "maps.h"
#include "parsing.h"
#include "rules.h"
#include "src_track.h"

/* Per-source traffic for inspection; now_ns is 0 for anything but a SYN. */
static __always_inline void pyxlb_count_traffic(struct pyxlb_pkt *pkt, __u64 bytes, __u64 now_ns,
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
    if (now_ns) {
        stats->syns++;
        stats->last_syn_ns = now_ns;
    }
    counters->tracked++;
}

/* Consulted only once a block or a rule has matched, so that ordinary
 * traffic pays for no lookup here. */
static __always_inline int pyxlb_allowed(const struct src_key *src)
{
    struct lpm_key key;

    pyxlb_lpm_key(src, &key);
    return pyxlb_rule_live(allow_list.lookup(&key));
}

static __always_inline int pyxlb_block_listed(const struct src_key *src)
{
    struct lpm_key key;

    pyxlb_lpm_key(src, &key);
    return pyxlb_rule_live(block_list.lookup(&key));
}

/* The entry rules read: NULL when absent or expired, which read as zeros. */
static __always_inline struct src_track *pyxlb_track_lookup(struct src_key *src, __u32 now)
{
    struct src_track *entry = src_track.lookup(src);

    return entry && !pyxlb_track_expired(entry, now) ? entry : NULL;
}

/* The entry to write to, created or renewed as needed; NULL only when the
 * map cannot allocate one. */
static __always_inline struct src_track *pyxlb_track_for_write(struct src_key *src, __u32 now)
{
    struct src_track *entry = src_track.lookup(src);
    struct src_track fresh = {};

    if (entry) {
        pyxlb_track_renew(entry, now);
        return entry;
    }
    /* insert() is BPF_NOEXIST: when two CPUs create the entry at the same
     * moment, the second keeps the first's and both add to it. */
    src_track.insert(src, &fresh);
    return src_track.lookup(src);
}

/* A connection attempt: counted in src_track where the config tracks at
 * `tcp-request connection`, then checked against the reject rules. Returns
 * whether to drop it. Only SYNs come here, so established flows never touch
 * src_track. */
static __always_inline int pyxlb_connection_rejected(struct pyxlb_pkt *pkt, __u64 now_ns,
                                                     struct dp_counters *counters)
{
    __u32 zero = 0;
    struct dp_params *params = dp_params.lookup(&zero);
    struct src_track *entry;
    __u32 now;
    int reason;

    if (!params || !(params->count_syns || pyxlb_rejects_enabled(params)))
        return 0;
    /* Only now: the ms tick costs a 64-bit division. */
    now = pyxlb_now_ms(params, now_ns);
    if (params->count_syns) {
        entry = pyxlb_track_for_write(&pkt->src, now);
        if (!entry) {
            counters->track_full++;
            return 0;
        }
        pyxlb_track_connection(entry, params, now);
        counters->conns_tracked++;
    } else {
        /* src_* fetches on an untracked source: read, never create. */
        entry = pyxlb_track_lookup(&pkt->src, now);
    }

    reason = pyxlb_reject_reason(entry, params, now);
    if (reason == PYXLB_ACCEPT)
        return 0;
    if (pyxlb_allowed(&pkt->src)) {
        counters->allowed++;
        return 0;
    }
    if (reason == PYXLB_REJECT_GPC0)
        counters->gpc0_rejected++;
    else if (reason == PYXLB_REJECT_CONN_RATE)
        counters->conn_rate_rejected++;
    else
        counters->http_err_rate_rejected++;
    return 1;
}

int pyxlb_xdp(struct xdp_md *ctx)
{
    __u32 zero = 0;
    struct dp_counters *counters = dp_counters.lookup(&zero);
    struct pyxlb_pkt pkt = {};
    __u64 now_ns = 0;
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
    if (pyxlb_block_listed(&pkt.src)) {
        if (!pyxlb_allowed(&pkt.src)) {
            counters->blocked++;
            return XDP_DROP;
        }
        counters->allowed++;
    }
    if ((pkt.tcp_flags & (PYXLB_TCP_SYN | PYXLB_TCP_ACK)) == PYXLB_TCP_SYN) {
        /* The clock is read for connection attempts only: it costs about as
         * much as the rest of a packet's path. */
        now_ns = bpf_ktime_get_ns();
        if (pyxlb_connection_rejected(&pkt, now_ns, counters))
            return XDP_DROP;
    }
    pyxlb_count_traffic(&pkt, ctx->data_end - ctx->data, now_ns, counters);
    return XDP_PASS;
}

/* Adds a struct src_track_delta's counts to its source's entry, with the
 * same arithmetic, clock and atomics as XDP: updating the entry in place from
 * kernel code is the only way user space can write it without losing XDP's
 * concurrent counts (a map update from user space replaces the whole value).
 * Answers with the entry as this call left it, in place of the delta.
 * XDP_PASS: done; XDP_DROP: no entry could be made; XDP_ABORTED: the message
 * is too short. */
int pyxlb_src_track_apply(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct src_track_delta *msg = data;
    struct src_track delta;
    struct src_key src;
    struct src_track *entry;
    struct dp_params *params;
    __u32 zero = 0;
    __u32 now;

    if ((void *)(msg + 1) > data_end)
        return XDP_ABORTED;
    params = dp_params.lookup(&zero);
    if (!params)
        return XDP_ABORTED;
    __builtin_memcpy(&src, &msg->src, sizeof(src));
    __builtin_memcpy(&delta, &msg->delta, sizeof(delta));
    now = pyxlb_now_ms(params, bpf_ktime_get_ns());
    entry = pyxlb_track_for_write(&src, now);
    if (!entry)
        return XDP_DROP;
    pyxlb_track_add(entry, &delta, params, now);
    __builtin_memcpy(&msg->delta, entry, sizeof(*entry));
    return XDP_PASS;
}
