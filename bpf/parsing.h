/* Header parsing: Ethernet (with up to two VLAN tags), IPv4, IPv6 and the
 * first bytes of TCP, into one small summary the rest of the program uses. */
#ifndef PYXLB_PARSING_H
#define PYXLB_PARSING_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/in.h>

#include "structs.h"

#define PYXLB_MAX_VLAN_TAGS 2
#define PYXLB_IP_MF 0x2000
#define PYXLB_IP_OFFSET 0x1fff

enum pyxlb_parse_result {
    PYXLB_PARSED,
    PYXLB_NOT_IP,
    PYXLB_MALFORMED,
};

struct pyxlb_pkt {
    struct src_key src;
    __u8 l4_proto;
    __u8 tcp_flags;      /* byte 13 of the TCP header; 0 when not TCP or not seen */
};

struct pyxlb_vlan_hdr {
    __be16 tci;
    __be16 encap_proto;
};

#define PYXLB_TCP_SYN 0x02
#define PYXLB_TCP_ACK 0x10

/* Reads TCP flags when the TCP header is whole; a truncated one leaves 0. */
static __always_inline void pyxlb_read_tcp_flags(void *l4, void *data_end,
                                                 struct pyxlb_pkt *pkt)
{
    struct tcphdr *tcp = l4;

    if ((void *)(tcp + 1) <= data_end)
        pkt->tcp_flags = ((__u8 *)tcp)[13];
}

static __always_inline int pyxlb_parse_ipv4(void *l3, void *data_end,
                                            struct pyxlb_pkt *pkt)
{
    struct iphdr *ip = l3;
    __u32 hdr_len;

    if ((void *)(ip + 1) > data_end)
        return PYXLB_MALFORMED;
    hdr_len = ip->ihl * 4;
    if (ip->version != 4 || hdr_len < sizeof(*ip))
        return PYXLB_MALFORMED;
    if (l3 + hdr_len > data_end)
        return PYXLB_MALFORMED;

    pkt->src.addr[10] = 0xff;
    pkt->src.addr[11] = 0xff;
    __builtin_memcpy(&pkt->src.addr[12], &ip->saddr, 4);
    pkt->l4_proto = ip->protocol;
    /* Only a first fragment carries the TCP header. */
    if (ip->protocol == IPPROTO_TCP && !(ip->frag_off & bpf_htons(PYXLB_IP_OFFSET)))
        pyxlb_read_tcp_flags(l3 + hdr_len, data_end, pkt);
    return PYXLB_PARSED;
}

static __always_inline int pyxlb_parse_ipv6(void *l3, void *data_end,
                                            struct pyxlb_pkt *pkt)
{
    struct ipv6hdr *ip6 = l3;

    if ((void *)(ip6 + 1) > data_end)
        return PYXLB_MALFORMED;
    if (ip6->version != 6)
        return PYXLB_MALFORMED;

    __builtin_memcpy(pkt->src.addr, &ip6->saddr, 16);
    pkt->l4_proto = ip6->nexthdr;
    if (ip6->nexthdr == IPPROTO_TCP)
        pyxlb_read_tcp_flags(ip6 + 1, data_end, pkt);
    return PYXLB_PARSED;
}

static __always_inline int pyxlb_parse(struct xdp_md *ctx, struct pyxlb_pkt *pkt)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    void *l3 = eth + 1;
    __be16 proto;

    if (l3 > data_end)
        return PYXLB_MALFORMED;
    proto = eth->h_proto;

#pragma unroll
    for (int i = 0; i < PYXLB_MAX_VLAN_TAGS; i++) {
        struct pyxlb_vlan_hdr *vlan = l3;

        if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
            break;
        if ((void *)(vlan + 1) > data_end)
            return PYXLB_MALFORMED;
        proto = vlan->encap_proto;
        l3 = vlan + 1;
    }

    if (proto == bpf_htons(ETH_P_IP))
        return pyxlb_parse_ipv4(l3, data_end, pkt);
    if (proto == bpf_htons(ETH_P_IPV6))
        return pyxlb_parse_ipv6(l3, data_end, pkt);
    return PYXLB_NOT_IP;
}

#endif
