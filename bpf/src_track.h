/* Per-source tracking: HAProxy's stick-table entries (conn_cnt, conn_rate,
 * http_req/err counts and rates, gpc0) in the src_track map, with HAProxy's
 * expiry: a write sets the expiry to now + `expire`, reads leave it, and an
 * expired entry reads as absent and restarts from zero on its next write (the
 * purge HAProxy would have done). Like HAProxy, an entry with connections
 * open (conn_cur > 0) does not expire. The map is an LRU, so a full table
 * drops its least recently used entries, open connections or not.
 *
 * Counters are added atomically, so concurrent writers (XDP on every CPU,
 * l7 through pyxlb_src_track_apply) lose nothing. Resetting an expired entry
 * and refreshing its expiry are plain stores: two writers racing on an entry
 * that just expired can lose the other's first event, a race HAProxy's entry
 * lock closes and that matters for one event per expiry at most.
 *
 * The map lookups are in pyxlb_xdp.c (BCC rewrites map calls in the main
 * file only); these helpers work on an entry already found. */
#ifndef PYXLB_SRC_TRACK_H
#define PYXLB_SRC_TRACK_H

#include "freq_ctr.h"
#include "structs.h"

#define PYXLB_NS_PER_MS 1000000

/* HAProxy's now_ms: the u32 ms tick of CLOCK_MONOTONIC, the clock behind
 * Python's time.monotonic_ns() (pyxlb.rates.freq_ctr.ms_tick), unless a test
 * set one. `now_ns` is the caller's bpf_ktime_get_ns() reading. */
static __always_inline __u32 pyxlb_now_ms(const struct dp_params *params, __u64 now_ns)
{
    if (params->now_ms_override)
        return params->now_ms_override;
    return (__u32)(now_ns / PYXLB_NS_PER_MS);
}

/* tick_is_expired(); a 0 expiry is HAProxy's unset tick: never. */
static __always_inline int pyxlb_track_expired(const struct src_track *entry, __u32 now)
{
    return entry->expire && (int)(entry->expire - now) <= 0 && !entry->conn_cur;
}

/* An entry that expired restarts from zero on its next write. */
static __always_inline void pyxlb_track_renew(struct src_track *entry, __u32 now)
{
    if (pyxlb_track_expired(entry, now))
        __builtin_memset(entry, 0, sizeof(*entry));
}

/* stktable_touch_local(): every write pushes the expiry to now + expire
 * (tick_add(), which never gives the unset tick 0). */
static __always_inline void pyxlb_track_touch(struct src_track *entry,
                                              const struct dp_params *params, __u32 now)
{
    __u32 expire;

    if (!params->expire_ms)
        return;
    expire = now + params->expire_ms;
    entry->expire = expire ? expire : 1;
}

static __always_inline void pyxlb_track_rate(struct freq_ctr *ctr, __u32 now, __u32 period,
                                             __u32 events)
{
    if (period && events)
        pyxlb_freq_ctr_update(ctr, now, period, events);
}

/* A connection as `tcp-request connection track-sc0 src` counts it. Unlike
 * HAProxy's stream_start_counters(), conn_cur stays: XDP never sees the end. */
static __always_inline void pyxlb_track_connection(struct src_track *entry,
                                                   const struct dp_params *params, __u32 now)
{
    __sync_fetch_and_add(&entry->conn_cnt, 1);
    pyxlb_track_rate(&entry->conn_rate, now, params->conn_rate_period, 1);
    pyxlb_track_touch(entry, params, now);
}

/* What l7 counts (pyxlb_src_track_apply): counters are added (conn_cur may
 * be "added" 2^32 - 1 to decrement it), each rate counts its delta's
 * curr_ctr events. */
static __always_inline void pyxlb_track_add(struct src_track *entry, const struct src_track *delta,
                                            const struct dp_params *params, __u32 now)
{
    if (delta->conn_cnt)
        __sync_fetch_and_add(&entry->conn_cnt, delta->conn_cnt);
    if (delta->conn_cur)
        __sync_fetch_and_add(&entry->conn_cur, delta->conn_cur);
    if (delta->http_req_cnt)
        __sync_fetch_and_add(&entry->http_req_cnt, delta->http_req_cnt);
    if (delta->http_err_cnt)
        __sync_fetch_and_add(&entry->http_err_cnt, delta->http_err_cnt);
    if (delta->gpc0)
        __sync_fetch_and_add(&entry->gpc0, delta->gpc0);
    pyxlb_track_rate(&entry->conn_rate, now, params->conn_rate_period,
                     delta->conn_rate.curr_ctr);
    pyxlb_track_rate(&entry->http_req_rate, now, params->http_req_rate_period,
                     delta->http_req_rate.curr_ctr);
    pyxlb_track_rate(&entry->http_err_rate, now, params->http_err_rate_period,
                     delta->http_err_rate.curr_ctr);
    pyxlb_track_rate(&entry->gpc0_rate, now, params->gpc0_rate_period,
                     delta->gpc0_rate.curr_ctr);
    pyxlb_track_touch(entry, params, now);
}

#endif
