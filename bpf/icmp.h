/* ICMP errors about layer-4 flows (IPv4): a "destination unreachable",
 * "time exceeded" or "parameter problem" quotes the start of the packet it
 * is about, which went through NAT. For the error to reach the other end
 * and make sense there (path MTU discovery, a refused UDP port), both the
 * error's own addresses and the quoted packet are translated back, with
 * every checksum kept right: the quoted IP header's, the quoted TCP/UDP
 * one where it is quoted, the ICMP one over all of that, and the outer IP
 * header's. The lookups are in pyxlb_xdp.c. */
#ifndef PYXLB_ICMP_H
#define PYXLB_ICMP_H

#include <linux/icmp.h>

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

static __always_inline int pyxlb_icmp_is_error(__u8 type)
{
    return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
           type == ICMP_PARAMETERPROB;
}

/* Finds the quoted packet of an IPv4 ICMP error and the key of the flow it
 * belongs to, seen from the quoted packet's receiver: its addresses and
 * ports swapped, which is how conntrack or nat_reverse know the flow that
 * sent it. Returns 0, or -1 when this is no such error. */
static __always_inline int pyxlb_icmp_quoted(PYXLB_CTX *ctx, const struct pyxlb_pkt *pkt,
                                             struct pyxlb_quoted *quoted,
                                             struct flow_key *key)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    __u32 icmp_off = pkt->l4_off & PYXLB_L4_OFF_MASK;
    struct icmphdr *icmp = data + icmp_off;
    struct iphdr *inner = (void *)(icmp + 1);
    __u16 *ports;

    if ((void *)(inner + 1) > data_end || !pyxlb_icmp_is_error(icmp->type))
        return -1;
    if (inner->ihl != 5 || (inner->protocol != IPPROTO_TCP && inner->protocol != IPPROTO_UDP))
        return -1;
    ports = (void *)(inner + 1);
    if ((void *)(ports + 2) > data_end)
        return -1;
    quoted->ip_off = icmp_off + sizeof(*icmp);
    quoted->l4_off = quoted->ip_off + sizeof(*inner);
    quoted->proto = inner->protocol;
    key->src_addr[10] = key->src_addr[11] = 0xff;
    key->dst_addr[10] = key->dst_addr[11] = 0xff;
    __builtin_memcpy(&key->src_addr[12], &inner->daddr, 4);
    __builtin_memcpy(&key->dst_addr[12], &inner->saddr, 4);
    key->sport = bpf_ntohs(ports[1]);
    key->dport = bpf_ntohs(ports[0]);
    key->proto = inner->protocol;
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

    if ((void *)(outer + 1) > data_end || (void *)(icmp + 1) > data_end ||
        (void *)(inner + 1) > data_end || (void *)(ports + 2) > data_end)
        return -1;
    /* The quoted packet: from e's destination to e's source. */
    pseudo = pyxlb_csum_delta32(inner->saddr, dst) + pyxlb_csum_delta32(inner->daddr, src);
    l4_delta = pseudo + pyxlb_csum_delta16(ports[0], sport) + pyxlb_csum_delta16(ports[1], dport);
    /* The ICMP checksum covers all the quoted bytes that change. */
    icmp_delta = l4_delta;
    check = pyxlb_csum_update(inner->check, pseudo);
    icmp_delta += pyxlb_csum_delta16(inner->check, check);
    inner->check = check;
    inner->saddr = dst;
    inner->daddr = src;
    ports[0] = sport;
    ports[1] = dport;
    /* Its TCP or UDP checksum, where quoted (UDP's 0 means none). */
    if (quoted->proto == IPPROTO_UDP) {
        __u16 *udp_check = (void *)(ports + 3);

        if ((void *)(udp_check + 1) <= data_end && *udp_check) {
            check = pyxlb_csum_update(*udp_check, l4_delta);
            check = check ? check : 0xffff;
            icmp_delta += pyxlb_csum_delta16(*udp_check, check);
            *udp_check = check;
        }
    } else {
        __u16 *tcp_check = (void *)(ports + 8);

        if ((void *)(tcp_check + 1) <= data_end) {
            check = pyxlb_csum_update(*tcp_check, l4_delta);
            icmp_delta += pyxlb_csum_delta16(*tcp_check, check);
            *tcp_check = check;
        }
    }
    icmp->checksum = pyxlb_csum_update(icmp->checksum, icmp_delta);
    /* The error itself: from e's source to e's destination. */
    outer->check = pyxlb_csum_update(outer->check, pyxlb_csum_delta32(outer->saddr, src) +
                                                       pyxlb_csum_delta32(outer->daddr, dst));
    outer->saddr = src;
    outer->daddr = dst;
    return 0;
}

#endif
