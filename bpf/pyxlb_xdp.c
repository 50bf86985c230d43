/* pyxlb's packet hook: parses each packet, drops block-listed sources, runs
 * the tracked frontends' `tcp-request connection` rules on the TCP
 * connection attempts to them (src rules, counting per source in HAProxy's
 * stick-table counters, counter rules) and answers or drops the rejected
 * ones; forwards the packets of layer-4 services with full NAT (new flows
 * to a server picked by Maglev, known ones as conntrack says, servers'
 * replies back to their clients); counts the rest per source address and
 * passes them to the stack.
 * Compiled by BCC when the daemon starts; the same function runs at XDP or,
 * built with -DPYXLB_HOOK_TC, at TC ingress (hook.h).
 *
 * Every map access is in this file: BCC rewrites map calls in the main file
 * only, so the headers work on values already found.
 *
 * A second entry, pyxlb_src_track_apply, is not a hook: user space runs it
 * with BPF_PROG_TEST_RUN to add to a src_track entry in place. */
#include <uapi/linux/bpf.h>

#include "cidr_lists.h"
#include "hook.h"
#include "icmp.h"
#include "flow.h"
#include "maps.h"
#include "nat.h"
#include "nexthop.h"
#include "parsing.h"
#include "rst.h"
#include "rules.h"
#include "src_track.h"

/* The entry's name says its hook: build.py loads it by that name. */
#ifdef PYXLB_HOOK_TC
#define PYXLB_ENTRY pyxlb_tc
#else
#define PYXLB_ENTRY pyxlb_xdp
#endif

/* How many NAT ports a new flow tries before it gives up. */
#define PYXLB_NAT_PORT_TRIES 8
/* pyxlb_l4's answer for a packet that is none of its business. */
#define PYXLB_NOT_L4 -1

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

/* The number of the tracked frontend a SYN is for: the one bound to its
 * address and port, else the one bound to its port on every address; -1:
 * none. A port no frontend tracks costs two flag tests. */
static __always_inline int pyxlb_tracked_frontend(const struct pyxlb_pkt *pkt,
                                                  const struct port_info *port)
{
    struct endpoint_key key = {};
    struct listener *bound;

    if (!port)
        return -1;
    if (port->tcp & PYXLB_PORT_TRACKED_ADDR) {
        __builtin_memcpy(key.addr, pkt->dst, sizeof(key.addr));
        key.port = pkt->dport;
        key.proto = IPPROTO_TCP;
        bound = listeners.lookup(&key);
        if (bound)
            return bound->frontend;
    }
    return port->tcp & PYXLB_PORT_TRACKED ? port->tcp_frontend : -1;
}

/* What the config's src rules of `frontend` say of a source (rules.h). */
static __always_inline int pyxlb_src_verdict(const struct src_key *src, int frontend)
{
    struct lpm_key key;

    pyxlb_lpm_key(src, &key);
    return pyxlb_src_rule_verdict(src_rules.lookup(&key), frontend);
}

/* What pyxlb_connection_rejected answers for a SYN a rule rejects (0: let it on). */
#define PYXLB_REJECT_SILENTLY 1  /* `silent-drop` */
#define PYXLB_REJECT_WITH_RST 2  /* `reject`: HAProxy's closing socket sends one RST */

/* A src rule decided: 0 (accepted, or the source is on the allow list), or
 * how to reject. */
static __always_inline int pyxlb_src_decided(const struct src_key *src, int verdict,
                                             struct dp_counters *counters)
{
    verdict &= ~PYXLB_SRC_AFTER_TRACK;
    if (verdict == PYXLB_SRC_ACCEPT) {
        counters->src_accepted++;
        return 0;
    }
    if (pyxlb_allowed(src)) {
        counters->allowed++;
        return 0;
    }
    counters->src_rejected++;
    return verdict == PYXLB_SRC_REJECT ? PYXLB_REJECT_WITH_RST : PYXLB_REJECT_SILENTLY;
}

/* A connection attempt, checked as HAProxy runs the frontend's `tcp-request
 * connection` rules: its src rules (one lookup), counted in src_track where
 * the frontend tracks, then its counter rules. Returns 0, or how to reject
 * it. Only SYNs come here, so established flows never touch src_track. */
static __always_inline int pyxlb_connection_rejected(struct pyxlb_pkt *pkt,
                                                     const struct port_info *port,
                                                     __u64 now_ns,
                                                     struct dp_counters *counters)
{
    __u32 zero = 0;
    struct dp_params *params = dp_params.lookup(&zero);
    struct src_track *entry;
    int verdict = PYXLB_SRC_NONE;
    int frontend;
    __u32 now;
    int reason;

    if (!params || !(params->count_syns || pyxlb_rejects_enabled(params) || params->src_rules))
        return 0;
    frontend = pyxlb_tracked_frontend(pkt, port);
    if (params->tracked_ports_only && frontend < 0)
        return 0;
    if (params->src_rules && frontend >= 0) {
        verdict = pyxlb_src_verdict(&pkt->src, frontend);
        /* A rule before track-sc0 decides before anything is counted. */
        if (verdict != PYXLB_SRC_NONE && !(verdict & PYXLB_SRC_AFTER_TRACK))
            return pyxlb_src_decided(&pkt->src, verdict, counters);
    }
    if (!(params->count_syns || pyxlb_rejects_enabled(params)) ||
        (params->track_frontend && frontend + 1 != params->track_frontend))
        return verdict == PYXLB_SRC_NONE ? 0 : pyxlb_src_decided(&pkt->src, verdict, counters);
    /* Only now: the ms tick costs a 64-bit division. */
    now = pyxlb_now_ms(params, now_ns);
    if (params->count_syns) {
        /* A full table counts nothing, and the rules read zeros. */
        entry = pyxlb_track_for_write(&pkt->src, now);
        if (entry) {
            pyxlb_track_connection(entry, params, now);
            counters->conns_tracked++;
        } else {
            counters->track_full++;
        }
    } else {
        /* src_* fetches on an untracked source: read, never create. */
        entry = pyxlb_track_lookup(&pkt->src, now);
    }
    if (verdict != PYXLB_SRC_NONE)
        return pyxlb_src_decided(&pkt->src, verdict, counters);

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
    return params->reject_with_rst ? PYXLB_REJECT_WITH_RST : PYXLB_REJECT_SILENTLY;
}

static __always_inline void pyxlb_l4_add(struct l4_stats *stats, int reply, __u64 bytes,
                                         __u64 payload)
{
    if (!stats)
        return;
    if (reply) {
        stats->reply_packets++;
        stats->reply_bytes += bytes;
        stats->reply_payload += payload;
    } else {
        stats->packets++;
        stats->bytes += bytes;
        stats->payload += payload;
    }
}

/* The TCP or UDP payload's length: the IP packet's length less its headers
 * (0 when they are not all there). */
static __always_inline __u32 pyxlb_l4_payload(PYXLB_CTX *ctx, const struct pyxlb_pkt *pkt)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    void *l3 = data + (pkt->l3_off & PYXLB_L3_OFF_MASK);
    void *l4 = data + (pkt->l4_off & PYXLB_L4_OFF_MASK);
    __u32 ip_len, headers;

    if (pkt->ipv6) {
        struct ipv6hdr *ip6 = l3;

        if ((void *)(ip6 + 1) > data_end)
            return 0;
        ip_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
    } else {
        struct iphdr *ip = l3;

        if ((void *)(ip + 1) > data_end)
            return 0;
        ip_len = bpf_ntohs(ip->tot_len);
    }
    headers = (pkt->l4_off & PYXLB_L4_OFF_MASK) - (pkt->l3_off & PYXLB_L3_OFF_MASK);
    if (pkt->l4_proto == IPPROTO_TCP) {
        struct tcphdr *tcp = l4;

        if ((void *)(tcp + 1) > data_end)
            return 0;
        headers += tcp->doff * 4;
    } else {
        headers += sizeof(struct udphdr);
    }
    return ip_len > headers ? ip_len - headers : 0;
}

static __always_inline void pyxlb_l4_count(PYXLB_CTX *ctx, const struct pyxlb_pkt *pkt,
                                           __u32 service, __u32 backend, int reply)
{
    __u64 bytes = PYXLB_PKT_LEN(ctx);
    __u32 payload = pyxlb_l4_payload(ctx, pkt);

    pyxlb_l4_add(service_stats.lookup(&service), reply, bytes, payload);
    pyxlb_l4_add(backend_stats.lookup(&backend), reply, bytes, payload);
}

static __always_inline void pyxlb_l4_count_flow(__u32 service, __u32 backend, int failed)
{
    struct backend_flows *flows;
    struct l4_stats *stats;

    stats = service_stats.lookup(&service);
    if (stats) {
        if (failed)
            stats->failed_flows++;
        else
            stats->new_flows++;
    }
    if (failed)
        return;
    stats = backend_stats.lookup(&backend);
    if (stats)
        stats->new_flows++;
    flows = backend_flows.lookup(&backend);
    if (flows)
        __sync_fetch_and_add(&flows->opened, 1);
}

/* The client's first FIN or RST ends its flow for leastconn's count. */
static __always_inline void pyxlb_l4_count_close(struct conn *conn, const struct pyxlb_pkt *pkt)
{
    struct backend_flows *flows;

    if (!(pkt->tcp_flags & (PYXLB_TCP_FIN | PYXLB_TCP_RST)) || (conn->state & PYXLB_CONN_CLOSED))
        return;
    conn->state |= PYXLB_CONN_CLOSED;
    flows = backend_flows.lookup(&conn->backend);
    if (flows)
        __sync_fetch_and_add(&flows->closed, 1);
}

/* What a backend's reply says of its connection attempt, for `observe
 * layer4`: a SYN-ACK answers it; a RST before any SYN-ACK refuses it. The
 * reply entry remembers the answer and a RST ends the flow, so each flow
 * counts once, however often a packet is retransmitted. */
static __always_inline void pyxlb_l4_observe(struct conn *conn, const struct pyxlb_pkt *pkt)
{
    __u8 flags = pkt->tcp_flags;
    struct l4_stats *stats;
    int answered;

    if (conn->state & (PYXLB_CONN_ANSWERED | PYXLB_CONN_RST))
        return;
    if ((flags & (PYXLB_TCP_SYN | PYXLB_TCP_ACK)) == (PYXLB_TCP_SYN | PYXLB_TCP_ACK))
        answered = 1;
    else if (flags & PYXLB_TCP_RST)
        answered = 0;
    else
        return;
    if (answered)
        conn->state |= PYXLB_CONN_ANSWERED;
    stats = service_stats.lookup(&conn->service);
    if (stats) {
        if (answered)
            stats->answered++;
        else
            stats->refused++;
    }
    stats = backend_stats.lookup(&conn->backend);
    if (stats) {
        if (answered)
            stats->answered++;
        else
            stats->refused++;
    }
}

/* A packet of a known flow, either way: rewritten as its entry says, counted
 * and sent on. */
static __always_inline int pyxlb_l4_send(PYXLB_CTX *ctx, struct pyxlb_pkt *pkt,
                                         struct conn *conn, int reply,
                                         struct dp_counters *counters)
{
    const __u8 *via = NULL;

    if (reply && pkt->l4_proto == IPPROTO_TCP)
        pyxlb_l4_observe(conn, pkt);
    else if (!reply)
        pyxlb_l4_count_close(conn, pkt);
    pyxlb_conn_touch(conn, pkt);
    if (conn->state & PYXLB_CONN_DSR)
        via = conn->out_dst_addr;
    else if (pyxlb_nat_rewrite(ctx, pkt, conn, reply))
        return PYXLB_NOT_L4;
    pyxlb_l4_count(ctx, pkt, conn->service, conn->backend, reply);
    if (reply)
        counters->l4_replied++;
    else
        counters->l4_forwarded++;
    return pyxlb_send_on(ctx, pkt, via, counters);
}

/* A backend's flows now: opened - closed - swept (struct backend_flows). */
static __always_inline __u64 pyxlb_active_flows(__u32 number)
{
    struct backend_flows *flows = backend_flows.lookup(&number);
    __u64 *swept = backend_swept.lookup(&number);
    __u64 done;

    if (!flows)
        return 0;
    done = flows->closed + (swept ? *swept : 0);
    return flows->opened > done ? flows->opened - done : 0;
}

/* leastconn and first: the candidates listed at the head of the service's
 * table, looked at in server order. first takes the first one under its
 * maxconn; leastconn the one with the fewest flows for its weight (HAProxy's
 * (flows + 1) / weight), starting each time one further along so that equals
 * take turns. NULL when none can take the flow. */
static __always_inline struct backend *pyxlb_pick_by_load(struct service *svc, void *table,
                                                          __u32 *number)
{
    __u32 count = svc->candidates < PYXLB_CANDIDATES_MAX ? svc->candidates
                                                         : PYXLB_CANDIDATES_MAX;
    int leastconn = svc->algorithm == PYXLB_ALGO_LEASTCONN;
    struct backend *best = NULL;
    __u64 best_load = 0;
    __u32 best_weight = 1;
    __u32 start = 0;

    if (!count)
        return NULL;
    if (leastconn)
        start = __sync_fetch_and_add(&svc->rr_next, 1) % count;
    for (__u32 i = 0; i < PYXLB_CANDIDATES_MAX; i++) {
        struct backend *backend;
        __u32 slot = start + i;
        __u32 *listed;
        __u32 candidate;
        __u64 active;

        if (i >= count)
            break;
        if (slot >= count)
            slot -= count;
        listed = bpf_map_lookup_elem(table, &slot);
        if (!listed)
            continue;
        candidate = *listed;
        backend = backends.lookup(&candidate);
        if (!backend || backend->state != PYXLB_BACKEND_UP || backend->service != svc->id)
            continue;
        active = pyxlb_active_flows(candidate);
        if (!leastconn) {
            if (backend->maxconn && active >= backend->maxconn)
                continue;
            *number = candidate;
            return backend;
        }
        if (!backend->weight)
            continue;
        if (!best || (active + 1) * best_weight < (best_load + 1) * backend->weight) {
            best = backend;
            best_load = active;
            best_weight = backend->weight;
            *number = candidate;
        }
    }
    return best;
}

/* The backend a new flow gets from its service's table; NULL when the
 * table is missing or empty, or names a backend that takes no new flow (the
 * control plane is between two updates). */
static __always_inline struct backend *pyxlb_pick_backend(struct service *svc, __u32 hash,
                                                          __u32 *number)
{
    __u32 slot = svc->algorithm == PYXLB_ALGO_ROUNDROBIN
                     ? __sync_fetch_and_add(&svc->rr_next, 1) % PYXLB_MAGLEV_SIZE
                     : hash % PYXLB_MAGLEV_SIZE;
    __u32 id = svc->id;
    struct backend *backend;
    __u32 *picked;
    void *table;

    table = maglev.lookup(&id);
    if (!table)
        return NULL;
    if (svc->algorithm == PYXLB_ALGO_LEASTCONN || svc->algorithm == PYXLB_ALGO_FIRST)
        return pyxlb_pick_by_load(svc, table, number);
    picked = bpf_map_lookup_elem(table, &slot);
    if (!picked)
        return NULL;
    *number = *picked;
    backend = backends.lookup(number);
    if (!backend || backend->state != PYXLB_BACKEND_UP || backend->service != id)
        return NULL;
    return backend;
}

/* Whether a NAT port's reverse entry (`held`, under `port`) belongs to a
 * flow that is over: its forward entry is gone (swept, evicted) or uses
 * another port now, or a RST or FINs both ways closed it. An over flow's
 * forward entry is removed (counted closed if it was not), so that the port
 * can be taken at once instead of after the sweeper's next pass: short
 * connections would otherwise run the range dry. */
static __always_inline int pyxlb_nat_port_free(struct conn *held, __u16 port, __u32 proto,
                                               struct flow_key *old_key)
{
    struct backend_flows *flows;
    struct conn *old;

    pyxlb_reply_key(held, proto, old_key);
    old = conntrack.lookup(old_key);
    if (old && old->out_sport != port)
        return 1;  /* its client reopened the flow: that one counts on its own */
    if (old) {
        if (!((held->state | old->state) & PYXLB_CONN_RST) &&
            !(held->state & old->state & PYXLB_CONN_FIN))
            return 0;
        if (old->state & PYXLB_CONN_CLOSED)
            flows = NULL;
        else
            flows = backend_flows.lookup(&old->backend);
        conntrack.delete(old_key);
    } else {
        /* Evicted from conntrack, never counted closed. */
        flows = backend_flows.lookup(&held->backend);
    }
    if (flows)
        __sync_fetch_and_add(&flows->closed, 1);
    return 1;
}

/* Claims a NAT source port for a new flow among a few tried from a place
 * the flow's hash gives, in the configured range: a free one first; else
 * one whose flow is over. Those go last: the server may still hold the old
 * connection in TIME_WAIT, and takes the new SYN only because its TSval
 * reads newer (tcp_ts.h); a client without timestamps leaves that to its
 * sequence number, newer half the time. Fills in the reverse entry's key and
 * returns 0, or -1 when all were taken. */
static __always_inline int pyxlb_claim_nat_port(struct flow_key *reply_key, struct conn *reply,
                                                __u32 hash, struct flow_key *old_key)
{
    __u32 zero = 0;
    struct l4_params *l4 = l4_params.lookup(&zero);
    __u32 count, first, offset;

    if (!l4 || !l4->nat_port_count)
        return -1;
    count = l4->nat_port_count;
    first = offset = (hash >> 8) % count;
    for (int i = 0; i < PYXLB_NAT_PORT_TRIES; i++) {
        reply_key->dport = l4->nat_port_min + offset;
        /* A lookup first: a refused insert costs an LRU allocation. */
        if (!nat_reverse.lookup(reply_key) && !nat_reverse.insert(reply_key, reply))
            return 0;
        offset = offset + 1 < count ? offset + 1 : 0;
    }
    offset = first;
    for (int i = 0; i < PYXLB_NAT_PORT_TRIES; i++) {
        struct conn *held;

        reply_key->dport = l4->nat_port_min + offset;
        held = nat_reverse.lookup(reply_key);
        if (held && pyxlb_nat_port_free(held, reply_key->dport, reply_key->proto, old_key)) {
            nat_reverse.update(reply_key, reply);
            return 0;
        }
        offset = offset + 1 < count ? offset + 1 : 0;
    }
    return -1;
}

/* A new flow of a DSR service: remembered so that it stays on its backend
 * when the table changes, and sent on unchanged but for the MACs. Its
 * replies never come this way, so it has no reply entry and no NAT port. */
static __always_inline int pyxlb_l4_new_dsr_flow(PYXLB_CTX *ctx, struct pyxlb_pkt *pkt,
                                                 struct flow_key *key, struct conn *forward,
                                                 struct backend *backend,
                                                 struct dp_counters *counters)
{
    forward->state = PYXLB_CONN_DSR;
    __builtin_memcpy(forward->out_src_addr, key->src_addr, 16);
    __builtin_memcpy(forward->out_dst_addr, backend->addr, 16);
    forward->out_sport = key->sport;
    forward->out_dport = key->dport;
    conntrack.update(key, forward);
    counters->l4_new_flows++;
    pyxlb_l4_count_flow(forward->service, forward->backend, 0);
    pyxlb_l4_count(ctx, pkt, forward->service, forward->backend, 0);
    counters->l4_forwarded++;
    return pyxlb_send_on(ctx, pkt, backend->addr, counters);
}

/* A new full-NAT flow's timestamp shift (tcp_ts.h), from its SYN: the
 * backend sees TSvals on the balancer's clock. */
static __always_inline void pyxlb_new_flow_ts_shift(PYXLB_CTX *ctx, const struct pyxlb_pkt *pkt,
                                                    struct conn *forward, struct conn *reply)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct tcphdr *tcp = data + (pkt->l4_off & PYXLB_L4_OFF_MASK);
    __u32 tsval;

    if ((void *)(tcp + 1) > data_end)
        return;
    tsval = pyxlb_tcp_tsval(tcp, data_end);
    if (!tsval)
        return;
    forward->ts_shift = pyxlb_ts_clock() - tsval;
    reply->ts_shift = -forward->ts_shift;
}

/* A new flow to a service, if `key`'s destination is one: picks its backend,
 * claims its NAT port, records both directions, sends the packet on. */
static __always_inline int pyxlb_l4_new_flow(PYXLB_CTX *ctx, struct pyxlb_pkt *pkt,
                                             struct flow_key *key, struct dp_counters *counters)
{
    struct endpoint_key vip = {};
    struct l4_scratch *scratch;
    struct flow_key *reply_key;
    struct conn *forward, *reply;
    struct service *svc;
    __u32 zero = 0;
    struct backend *backend;
    __u32 number = 0;
    __u32 hash;

    __builtin_memcpy(vip.addr, pkt->dst, sizeof(vip.addr));
    vip.port = pkt->dport;
    vip.proto = pkt->l4_proto;
    svc = services.lookup(&vip);
    if (!svc)
        return PYXLB_NOT_L4;
    if (pkt->l4_proto == IPPROTO_TCP &&
        (pkt->tcp_flags & (PYXLB_TCP_SYN | PYXLB_TCP_ACK | PYXLB_TCP_RST)) != PYXLB_TCP_SYN) {
        /* Not the start of a connection, and no flow it belongs to: the
         * stack answers it (a RST, as nothing listens there). */
        counters->l4_no_conn++;
        return PYXLB_PASS;
    }

    hash = pyxlb_flow_hash(key);
    backend = pyxlb_pick_backend(svc, hash, &number);
    if (!backend) {
        counters->l4_no_backend++;
        pyxlb_l4_count_flow(svc->id, 0, 1);
        return PYXLB_PASS;
    }

    scratch = l4_scratch.lookup(&zero);
    if (!scratch)
        return PYXLB_PASS;
    __builtin_memset(scratch, 0, sizeof(*scratch));
    forward = &scratch->forward;
    reply = &scratch->reply;
    reply_key = &scratch->reply_key;
    forward->backend = reply->backend = number;
    forward->service = reply->service = svc->id;
    forward->last_seen_ns = reply->last_seen_ns = bpf_ktime_get_coarse_ns();
    if (svc->flags & PYXLB_SERVICE_DSR)
        return pyxlb_l4_new_dsr_flow(ctx, pkt, key, forward, backend, counters);
    __builtin_memcpy(forward->out_src_addr, svc->snat_addr, 16);
    __builtin_memcpy(forward->out_dst_addr, backend->addr, 16);
    forward->out_dport = backend->port;
    /* The reply comes from the backend to the NAT address and port and
     * leaves as if from the VIP to the client. */
    __builtin_memcpy(reply->out_src_addr, key->dst_addr, 16);
    __builtin_memcpy(reply->out_dst_addr, key->src_addr, 16);
    reply->out_sport = key->dport;
    reply->out_dport = key->sport;
    __builtin_memcpy(reply_key->src_addr, backend->addr, 16);
    __builtin_memcpy(reply_key->dst_addr, svc->snat_addr, 16);
    reply_key->sport = backend->port;
    reply_key->proto = key->proto;
    if (pkt->l4_proto == IPPROTO_TCP)
        pyxlb_new_flow_ts_shift(ctx, pkt, forward, reply);
    if (pyxlb_claim_nat_port(reply_key, reply, hash, &scratch->old_key)) {
        counters->l4_no_nat_port++;
        pyxlb_l4_count_flow(svc->id, number, 1);
        return PYXLB_PASS;
    }
    forward->out_sport = reply_key->dport;
    conntrack.update(key, forward);

    counters->l4_new_flows++;
    pyxlb_l4_count_flow(forward->service, number, 0);
    if (pyxlb_nat_rewrite(ctx, pkt, forward, 0))
        return PYXLB_PASS;
    pyxlb_l4_count(ctx, pkt, forward->service, number, 0);
    counters->l4_forwarded++;
    return pyxlb_send_on(ctx, pkt, NULL, counters);
}

/* An ICMP error about a layer-4 flow: from a backend (or a router on
 * its way) about a packet we sent it, translated for the client; or from a
 * client about a reply, translated for the backend. Returns the verdict, or
 * PYXLB_NOT_L4 when it is about no flow of ours. */
static __always_inline int pyxlb_l4_icmp(PYXLB_CTX *ctx, struct pyxlb_pkt *pkt,
                                         struct dp_counters *counters)
{
    struct pyxlb_quoted quoted = {};
    struct flow_key key = {};
    struct conn *e;

    if (pkt->fragment || pyxlb_icmp_quoted(ctx, pkt, &quoted, &key))
        return PYXLB_NOT_L4;
    e = nat_reverse.lookup(&key);
    if (!e) {
        e = conntrack.lookup(&key);
        if (!e || (e->state & PYXLB_CONN_DSR))
            return PYXLB_NOT_L4;
    }
    if (pyxlb_icmp_translate(ctx, pkt, &quoted, e))
        return PYXLB_NOT_L4;
    counters->l4_icmp++;
    return pyxlb_send_on(ctx, pkt, NULL, counters);
}

/* Layer-4 services, for a packet whose destination port is a service's or
 * a NAT port (`flags`): a backend's reply goes back to its client, a known
 * flow to its backend, a new one to the backend Maglev picks. Returns the
 * verdict, or PYXLB_NOT_L4 for a packet that is none of these. */
static __always_inline int pyxlb_l4(PYXLB_CTX *ctx, struct pyxlb_pkt *pkt, __u8 flags,
                                    struct dp_counters *counters)
{
    struct flow_key key = {};
    struct conn *conn;

    if (pkt->fragment) {
        counters->l4_fragments++;
        return PYXLB_NOT_L4;
    }
    if (pkt->v6_to_v4_mapped)
        return PYXLB_NOT_L4;
    pyxlb_flow_key(pkt, &key);
    if (flags & PYXLB_PORT_NAT) {
        conn = nat_reverse.lookup(&key);
        if (conn)
            return pyxlb_l4_send(ctx, pkt, conn, 1, counters);
    }
    if (!(flags & PYXLB_PORT_SERVICE))
        return PYXLB_NOT_L4;
    conn = conntrack.lookup(&key);
    if (conn && !pyxlb_conn_reopened(conn, pkt))
        return pyxlb_l4_send(ctx, pkt, conn, 0, counters);
    return pyxlb_l4_new_flow(ctx, pkt, &key, counters);
}

int PYXLB_ENTRY(PYXLB_CTX *ctx)
{
    __u32 zero = 0;
    struct dp_counters *counters = dp_counters.lookup(&zero);
    struct pyxlb_pkt pkt = {};
    struct port_info *port = NULL;
    __u64 now_ns = 0;
    __u32 dport;
    int parsed;

    if (!counters)
        return PYXLB_PASS;
    counters->packets++;
    pyxlb_hook_prepare(ctx);

    parsed = pyxlb_parse(ctx, &pkt);
    if (parsed == PYXLB_NOT_IP) {
        counters->not_ip++;
        return PYXLB_PASS;
    }
    if (parsed == PYXLB_MALFORMED) {
        counters->malformed++;
        return PYXLB_PASS;
    }
    if (pyxlb_block_listed(&pkt.src)) {
        if (!pyxlb_allowed(&pkt.src)) {
            counters->blocked++;
            return PYXLB_DROP;
        }
        counters->allowed++;
    }
    if (pkt.has_ports) {
        dport = pkt.dport;
        port = ports.lookup(&dport);
    }
    if ((pkt.tcp_flags & (PYXLB_TCP_SYN | PYXLB_TCP_ACK)) == PYXLB_TCP_SYN) {
        /* The clock is read for connection attempts only: it costs about as
         * much as the rest of a packet's path. */
        now_ns = bpf_ktime_get_ns();
        int rejected = pyxlb_connection_rejected(&pkt, port, now_ns, counters);

        if (rejected == PYXLB_REJECT_WITH_RST) {
            counters->rst_sent++;
            return pyxlb_answer_rst(ctx, &pkt);
        }
        if (rejected == PYXLB_REJECT_SILENTLY)
            return PYXLB_DROP;
    }
    if (port) {
        __u8 flags = pkt.l4_proto == IPPROTO_TCP ? port->tcp : port->udp;

        if (flags & (PYXLB_PORT_SERVICE | PYXLB_PORT_NAT)) {
            int verdict = pyxlb_l4(ctx, &pkt, flags, counters);

            if (verdict != PYXLB_NOT_L4)
                return verdict;
        }
    }
    if (pkt.l4_proto == (pkt.ipv6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP)) {
        int verdict = pyxlb_l4_icmp(ctx, &pkt, counters);

        if (verdict != PYXLB_NOT_L4)
            return verdict;
    }
    pyxlb_count_traffic(&pkt, PYXLB_PKT_LEN(ctx), now_ns, counters);
    return PYXLB_PASS;
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
