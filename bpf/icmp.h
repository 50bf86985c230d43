/* ICMP errors about layer-4 flows: a "destination unreachable", "time
 * exceeded", "parameter problem" or (ICMPv6) "packet too big" quotes the
 * start of the packet it is about, which went through NAT. For the error to reach the other end
 * and make sense there (path MTU discovery, a refused UDP port), both the
 * error's own addresses and the quoted packet are translated back, with
 * every checksum kept right: the quoted IP header's, the quoted TCP/UDP
 * one where it is quoted, the ICMP one over all of that (and, for ICMPv6,
 * over the outer addresses), and the outer IPv4 header's. Quoted packets
 * with IPv4 options or IPv6 extension headers are left alone. The lookups
 * are in pyxlb_xdp.c. */
#ifndef PYXLB_ICMP_H
#define PYXLB_ICMP_H

#include <linux/icmp.h>
#include <linux/icmpv6.h>

#include "csum.h"
#include "hook.h"
#include "parsing.h"
#include "structs.h"

/* The quoted packet of an ICMP error: where its headers are. */
struct pyxlb_quoted {
    __u16 ip_off;        /* from the packet's start */
    __u16 l4_off;
    __u8 proto;
};

static __always_inline int pyxlb_icmp_is_error(__u8 type, int ipv6)
{
    if (ipv6)
        return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
               type == ICMPV6_TIME_EXCEED || type == ICMPV6_PARAMPROB;
    return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
           type == ICMP_PARAMETERPROB;
}

/* The key of the flow a quoted packet belongs to, seen from its receiver:
 * its addresses (`addr_len` bytes each, at the end of the key's) and ports
 * swapped, which is how conntrack or nat_reverse know the flow that sent it. */
static __always_inline void pyxlb_icmp_key(struct flow_key *key, const void *saddr,
                                           const void *daddr, const __u16 *ports,
                                           __u8 proto, int ipv6)
{
    if (ipv6) {
        __builtin_memcpy(key->src_addr, daddr, 16);
        __builtin_memcpy(key->dst_addr, saddr, 16);
    } else {
        key->src_addr[10] = key->src_addr[11] = 0xff;
        key->dst_addr[10] = key->dst_addr[11] = 0xff;
        __builtin_memcpy(&key->src_addr[12], daddr, 4);
        __builtin_memcpy(&key->dst_addr[12], saddr, 4);
    }
    key->sport = bpf_ntohs(ports[1]);
    key->dport = bpf_ntohs(ports[0]);
    key->proto = proto;
}

/* Finds the quoted packet of an ICMP error and the key of the flow it
 * belongs to (pyxlb_icmp_key). Returns 0, or -1 when this is no such error. */
static __always_inline int pyxlb_icmp_quoted(PYXLB_CTX *ctx, const struct pyxlb_pkt *pkt,
                                             struct pyxlb_quoted *quoted,
                                             struct flow_key *key)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    __u32 icmp_off = pkt->l4_off & PYXLB_L4_OFF_MASK;
    struct icmphdr *icmp = data + icmp_off;  /* ICMPv6's first 8 bytes are alike */
    __u16 *ports;

    if ((void *)(icmp + 1) > data_end || !pyxlb_icmp_is_error(icmp->type, pkt->ipv6))
        return -1;
    quoted->ip_off = icmp_off + sizeof(*icmp);
    if (pkt->ipv6) {
        struct ipv6hdr *inner = (void *)(icmp + 1);

        ports = (void *)(inner + 1);
        if ((void *)(ports + 2) > data_end)
            return -1;
        quoted->proto = inner->nexthdr;
        quoted->l4_off = quoted->ip_off + sizeof(*inner);
        pyxlb_icmp_key(key, &inner->saddr, &inner->daddr, ports, inner->nexthdr, 1);
    } else {
        struct iphdr *inner = (void *)(icmp + 1);

        ports = (void *)(inner + 1);
        if ((void *)(ports + 2) > data_end || inner->ihl != 5)
            return -1;
        quoted->proto = inner->protocol;
        quoted->l4_off = quoted->ip_off + sizeof(*inner);
        pyxlb_icmp_key(key, &inner->saddr, &inner->daddr, ports, inner->protocol, 0);
    }
    return quoted->proto == IPPROTO_TCP || quoted->proto == IPPROTO_UDP ? 0 : -1;
}

/* The quoted TCP or UDP header's ports and checksum (where quoted; UDP's 0
 * means none), `l4_delta` being what its pseudo-header and ports changed by.
 * Returns what the ICMP checksum changes by. */
static __always_inline __u64 pyxlb_icmp_quoted_l4(__u16 *ports, void *data_end, __u8 proto,
                                                  __be16 sport, __be16 dport, __u64 l4_delta)
{
    __u16 *check_at = (void *)(ports + (proto == IPPROTO_UDP ? 3 : 8));
    __u64 icmp_delta = l4_delta;
    __u16 check;

    ports[0] = sport;
    ports[1] = dport;
    if ((void *)(check_at + 1) > data_end || (proto == IPPROTO_UDP && !*check_at))
        return icmp_delta;
    check = pyxlb_csum_update(*check_at, l4_delta);
    if (proto == IPPROTO_UDP && !check)
        check = 0xffff;
    icmp_delta += pyxlb_csum_delta16(*check_at, check);
    *check_at = check;
    return icmp_delta;
}

/* pyxlb_icmp_translate for an ICMPv6 error. */
static __always_inline int pyxlb_icmp6_translate(PYXLB_CTX *ctx, const struct pyxlb_pkt *pkt,
                                                 const struct pyxlb_quoted *quoted,
                                                 const struct conn *e)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ipv6hdr *outer = data + (pkt->l3_off & PYXLB_L3_OFF_MASK);
    struct icmp6hdr *icmp = data + (pkt->l4_off & PYXLB_L4_OFF_MASK);
    struct ipv6hdr *inner = data + (quoted->ip_off & PYXLB_L4_OFF_MASK);
    __u16 *ports = data + (quoted->l4_off & PYXLB_L4_OFF_MASK);
    __be16 sport = bpf_htons(e->out_dport), dport = bpf_htons(e->out_sport);
    __u64 l4_delta, icmp_delta;

    if ((void *)(outer + 1) > data_end || (void *)(icmp + 1) > data_end ||
        (void *)(inner + 1) > data_end || (void *)(ports + 2) > data_end)
        return -1;
    /* The quoted packet: from e's destination to e's source. */
    l4_delta = pyxlb_csum_delta128((__u32 *)&inner->saddr, (const __u32 *)e->out_dst_addr) +
               pyxlb_csum_delta128((__u32 *)&inner->daddr, (const __u32 *)e->out_src_addr) +
               pyxlb_csum_delta16(ports[0], sport) + pyxlb_csum_delta16(ports[1], dport);
    __builtin_memcpy(&inner->saddr, e->out_dst_addr, 16);
    __builtin_memcpy(&inner->daddr, e->out_src_addr, 16);
    icmp_delta = pyxlb_icmp_quoted_l4(ports, data_end, quoted->proto, sport, dport, l4_delta);
    /* The error itself, from e's source to e's destination: ICMPv6's
     * checksum covers those addresses too. */
    icmp_delta += pyxlb_csum_delta128((__u32 *)&outer->saddr, (const __u32 *)e->out_src_addr) +
                  pyxlb_csum_delta128((__u32 *)&outer->daddr, (const __u32 *)e->out_dst_addr);
    __builtin_memcpy(&outer->saddr, e->out_src_addr, 16);
    __builtin_memcpy(&outer->daddr, e->out_dst_addr, 16);
    icmp->icmp6_cksum = pyxlb_csum_update(icmp->icmp6_cksum, icmp_delta);
    return 0;
}

/* Rewrites the error for the other end of the flow whose entry `e` is (the
 * entry its receiver's packets are rewritten by): it comes from e's source
 * and goes to e's destination, and quotes the packet that end sent, i.e.
 * from e's destination to e's source. Returns 0, or -1 when the headers are
 * not all there (the packet is then unchanged). */
static __always_inline int pyxlb_icmp_translate(PYXLB_CTX *ctx, const struct pyxlb_pkt *pkt,
                                                const struct pyxlb_quoted *quoted,
                                                const struct conn *e)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct iphdr *outer = data + (pkt->l3_off & PYXLB_L3_OFF_MASK);
    struct icmphdr *icmp = data + (pkt->l4_off & PYXLB_L4_OFF_MASK);
    struct iphdr *inner = data + (quoted->ip_off & PYXLB_L4_OFF_MASK);
    __u16 *ports = data + (quoted->l4_off & PYXLB_L4_OFF_MASK);
    __u32 src = *(const __u32 *)&e->out_src_addr[12];
    __u32 dst = *(const __u32 *)&e->out_dst_addr[12];
    __be16 sport = bpf_htons(e->out_dport), dport = bpf_htons(e->out_sport);
    __u64 pseudo, l4_delta, icmp_delta;
    __u16 check;

    if (pkt->ipv6)
        return pyxlb_icmp6_translate(ctx, pkt, quoted, e);
    if ((void *)(outer + 1) > data_end || (void *)(icmp + 1) > data_end ||
        (void *)(inner + 1) > data_end || (void *)(ports + 2) > data_end)
        return -1;
    /* The quoted packet: from e's destination to e's source. */
    pseudo = pyxlb_csum_delta32(inner->saddr, dst) + pyxlb_csum_delta32(inner->daddr, src);
    l4_delta = pseudo + pyxlb_csum_delta16(ports[0], sport) + pyxlb_csum_delta16(ports[1], dport);
    /* The ICMP checksum covers all the quoted bytes that change. */
    check = pyxlb_csum_update(inner->check, pseudo);
    icmp_delta = pyxlb_csum_delta16(inner->check, check);
    inner->check = check;
    inner->saddr = dst;
    inner->daddr = src;
    icmp_delta += pyxlb_icmp_quoted_l4(ports, data_end, quoted->proto, sport, dport, l4_delta);
    icmp->checksum = pyxlb_csum_update(icmp->checksum, icmp_delta);
    /* The error itself: from e's source to e's destination. */
    outer->check = pyxlb_csum_update(outer->check, pyxlb_csum_delta32(outer->saddr, src) +
                                                       pyxlb_csum_delta32(outer->daddr, dst));
    outer->saddr = src;
    outer->daddr = dst;
    return 0;
}

#endif
