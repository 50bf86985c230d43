/* Full NAT of a layer-4 flow's packets: addresses and ports rewritten to a
 * conntrack or nat_reverse entry's, with the IPv4 header and TCP/UDP
 * checksums updated incrementally; and what a packet tells its entry (last
 * seen, FIN, RST). Works on an entry already found: the lookups are in
 * pyxlb_xdp.c. */
#ifndef PYXLB_NAT_H
#define PYXLB_NAT_H

#include "csum.h"
#include "hook.h"
#include "parsing.h"
#include "structs.h"
#include "tcp_ts.h"

static __always_inline int pyxlb_nat_rewrite_l4(void *l4, void *data_end, __u8 proto,
                                                const struct conn *out, int reply, __u64 delta)
{
    __be16 sport = bpf_htons(out->out_sport);
    __be16 dport = bpf_htons(out->out_dport);

    if (proto == IPPROTO_TCP) {
        struct tcphdr *tcp = l4;

        if ((void *)(tcp + 1) > data_end)
            return -1;
        delta += pyxlb_csum_delta16(tcp->source, sport) + pyxlb_csum_delta16(tcp->dest, dport);
        if (out->ts_shift)
            delta += pyxlb_tcp_ts_shift(tcp, data_end, out->ts_shift, reply);
        tcp->check = pyxlb_csum_update(tcp->check, delta);
        tcp->source = sport;
        tcp->dest = dport;
        return 0;
    }
    if (proto == IPPROTO_UDP) {
        struct udphdr *udp = l4;

        if ((void *)(udp + 1) > data_end)
            return -1;
        /* 0 is "no checksum" (IPv4), so a computed 0 is sent as its other
         * one's complement form. */
        if (udp->check) {
            __u16 check;

            delta += pyxlb_csum_delta16(udp->source, sport) +
                     pyxlb_csum_delta16(udp->dest, dport);
            check = pyxlb_csum_update(udp->check, delta);
            udp->check = check ? check : 0xffff;
        }
        udp->source = sport;
        udp->dest = dport;
        return 0;
    }
    return -1;
}

/* Rewrites the packet's addresses and ports to `out`'s, and its TCP
 * timestamps by `out`'s shift (`reply`: the backend's answer, whose TSecr
 * is shifted back). Returns 0, or -1 when its headers are not all there
 * (the packet is then unchanged). */
static __always_inline int pyxlb_nat_rewrite(PYXLB_CTX *ctx, const struct pyxlb_pkt *pkt,
                                             const struct conn *out, int reply)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    void *l3 = data + (pkt->l3_off & PYXLB_L3_OFF_MASK);
    void *l4 = data + (pkt->l4_off & PYXLB_L4_OFF_MASK);
    __u64 delta;

    if (pkt->ipv6) {
        struct ipv6hdr *ip6 = l3;

        if ((void *)(ip6 + 1) > data_end)
            return -1;
        /* Checked before anything is written, so a failure leaves the
         * packet as it came. */
        if (l4 + (pkt->l4_proto == IPPROTO_TCP ? sizeof(struct tcphdr)
                                               : sizeof(struct udphdr)) > data_end)
            return -1;
        delta = pyxlb_csum_delta128((__u32 *)&ip6->saddr, (const __u32 *)out->out_src_addr) +
                pyxlb_csum_delta128((__u32 *)&ip6->daddr, (const __u32 *)out->out_dst_addr);
        __builtin_memcpy(&ip6->saddr, out->out_src_addr, 16);
        __builtin_memcpy(&ip6->daddr, out->out_dst_addr, 16);
    } else {
        struct iphdr *ip = l3;
        __u32 src = *(const __u32 *)&out->out_src_addr[12];
        __u32 dst = *(const __u32 *)&out->out_dst_addr[12];

        if ((void *)(ip + 1) > data_end)
            return -1;
        if (l4 + (pkt->l4_proto == IPPROTO_TCP ? sizeof(struct tcphdr)
                                               : sizeof(struct udphdr)) > data_end)
            return -1;
        delta = pyxlb_csum_delta32(ip->saddr, src) + pyxlb_csum_delta32(ip->daddr, dst);
        ip->check = pyxlb_csum_update(ip->check, delta);
        ip->saddr = src;
        ip->daddr = dst;
    }
    return pyxlb_nat_rewrite_l4(l4, data_end, pkt->l4_proto, out, reply, delta);
}

/* Notes a packet of the flow in its entry: when (written only when the
 * coarse clock moved, so that a busy flow does not write its entry on every
 * packet) and whether it closes the flow. */
static __always_inline void pyxlb_conn_touch(struct conn *conn, const struct pyxlb_pkt *pkt)
{
    __u64 now = bpf_ktime_get_coarse_ns();

    if (conn->last_seen_ns != now)
        conn->last_seen_ns = now;
    if (pkt->tcp_flags & (PYXLB_TCP_FIN | PYXLB_TCP_RST)) {
        __u8 state = conn->state;

        if (pkt->tcp_flags & PYXLB_TCP_FIN)
            state |= PYXLB_CONN_FIN;
        if (pkt->tcp_flags & PYXLB_TCP_RST)
            state |= PYXLB_CONN_RST;
        conn->state = state;
    }
}

/* A SYN for a flow that was closing is a new connection reusing its ports. */
static __always_inline int pyxlb_conn_reopened(const struct conn *conn, const struct pyxlb_pkt *pkt)
{
    return (pkt->tcp_flags & (PYXLB_TCP_SYN | PYXLB_TCP_ACK)) == PYXLB_TCP_SYN &&
           (conn->state & (PYXLB_CONN_FIN | PYXLB_CONN_RST));
}

#endif
