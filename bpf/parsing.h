/* Header parsing: Ethernet (with up to two VLAN tags), IPv4, IPv6 and the
 * first bytes of TCP or UDP, into one small summary the rest of the program
 * uses. Addresses are kept IPv4-mapped for IPv4, like every address in the
 * maps; ports in host order, as the maps keep them. */
#ifndef PYXLB_PARSING_H
#define PYXLB_PARSING_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/in.h>

#include "hook.h"
#include "structs.h"

#define PYXLB_MAX_VLAN_TAGS 2
/* IPv6 extension headers walked before giving up on finding the L4 header. */
#define PYXLB_MAX_EXT_HEADERS 4
/* Bounds the parser's L3 offset for the verifier: at most two VLAN tags. */
#define PYXLB_L3_OFF_MASK 0x1f
/* Bounds L4 offsets for the verifier: deeper headers are not looked at. */
#define PYXLB_L4_OFF_MASK 0x1ff
#define PYXLB_IP_MF 0x2000
#define PYXLB_IP_OFFSET 0x1fff

enum pyxlb_parse_result {
    PYXLB_PARSED,
    PYXLB_NOT_IP,
    PYXLB_MALFORMED,
};

struct pyxlb_pkt {
    struct src_key src;
    __u8 dst[16];
    __u16 sport;         /* host order; 0 unless has_ports */
    __u16 dport;
    __u16 l3_off;        /* where the IP header starts */
    __u16 l4_off;        /* where the TCP or UDP header starts, past IP options and
                          * IPv6 extension headers; valid when has_ports */
    __u8 l4_proto;
    __u8 tcp_flags;      /* byte 13 of the TCP header; 0 when not TCP or not seen */
    __u8 ipv6;
    __u8 fragment;       /* any fragment, first or not: never balanced */
    __u8 has_ports;      /* a whole TCP or UDP header follows the IP header */
    __u8 v6_to_v4_mapped;/* IPv6 to an IPv4-mapped address: never balanced */
};

struct pyxlb_vlan_hdr {
    __be16 tci;
    __be16 encap_proto;
};

#define PYXLB_TCP_FIN 0x01
#define PYXLB_TCP_SYN 0x02
#define PYXLB_TCP_RST 0x04
#define PYXLB_TCP_ACK 0x10

/* Reads ports (and TCP flags) when the TCP or UDP header is whole; a
 * truncated one leaves them 0. */
static __always_inline void pyxlb_read_l4(void *l4, void *data_end, struct pyxlb_pkt *pkt)
{
    if (pkt->l4_proto == IPPROTO_TCP) {
        struct tcphdr *tcp = l4;

        if ((void *)(tcp + 1) > data_end)
            return;
        pkt->tcp_flags = ((__u8 *)tcp)[13];
        pkt->sport = bpf_ntohs(tcp->source);
        pkt->dport = bpf_ntohs(tcp->dest);
        pkt->has_ports = 1;
    } else if (pkt->l4_proto == IPPROTO_UDP) {
        struct udphdr *udp = l4;

        if ((void *)(udp + 1) > data_end)
            return;
        pkt->sport = bpf_ntohs(udp->source);
        pkt->dport = bpf_ntohs(udp->dest);
        pkt->has_ports = 1;
    }
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
    pkt->dst[10] = 0xff;
    pkt->dst[11] = 0xff;
    __builtin_memcpy(&pkt->dst[12], &ip->daddr, 4);
    pkt->l4_proto = ip->protocol;
    pkt->fragment = !!(ip->frag_off & bpf_htons(PYXLB_IP_MF | PYXLB_IP_OFFSET));
    /* Only a first fragment carries the TCP or UDP header. */
    if (!(ip->frag_off & bpf_htons(PYXLB_IP_OFFSET))) {
        pkt->l4_off = pkt->l3_off + hdr_len;
        pyxlb_read_l4(l3 + hdr_len, data_end, pkt);
    }
    return PYXLB_PARSED;
}

/* ::ffff:a.b.c.d, the form IPv4 addresses take in the maps. */
static __always_inline int pyxlb_v4_mapped(const __u8 *addr)
{
    __u8 bits = 0;

#pragma unroll
    for (int i = 0; i < 10; i++)
        bits |= addr[i];
    return !bits && addr[10] == 0xff && addr[11] == 0xff;
}

struct pyxlb_ipv6_ext {
    __u8 nexthdr;
    __u8 hdrlen;
    __be16 frag_off;     /* the fragment header's; other headers' data */
};

#define PYXLB_IP6_OFFSET 0xfff8

/* Walks IPv6 extension headers (hop-by-hop, routing, destination options,
 * fragment, AH) to the upper-layer header: sets l4_proto, l4_off and
 * fragment. Returns 0, or -1 when a header is cut short. A chain longer
 * than we walk leaves l4_proto at the header we stopped at, so the packet
 * is only counted, never balanced. */
static __always_inline int pyxlb_walk_ipv6_ext(void *data, void *data_end, struct pyxlb_pkt *pkt,
                                               __u8 nexthdr)
{
    __u32 off = pkt->l4_off;
    int first_fragment = 1;

#pragma unroll
    for (int i = 0; i < PYXLB_MAX_EXT_HEADERS; i++) {
        struct pyxlb_ipv6_ext *ext = data + (off & PYXLB_L4_OFF_MASK);
        __u32 len;

        if (nexthdr != IPPROTO_HOPOPTS && nexthdr != IPPROTO_ROUTING &&
            nexthdr != IPPROTO_DSTOPTS && nexthdr != IPPROTO_FRAGMENT && nexthdr != IPPROTO_AH)
            break;
        if ((void *)(ext + 1) > data_end)
            return -1;
        if (nexthdr == IPPROTO_FRAGMENT) {
            pkt->fragment = 1;
            first_fragment = !(ext->frag_off & bpf_htons(PYXLB_IP6_OFFSET));
            len = 8;
        } else if (nexthdr == IPPROTO_ROUTING && ((__u8 *)ext)[3]) {
            /* Segments left: this is not the final destination, and the
             * L4 checksum is over the one that is. Counted, not balanced. */
            return 0;
        } else if (nexthdr == IPPROTO_AH) {
            len = (ext->hdrlen + 2) * 4;
        } else {
            len = (ext->hdrlen + 1) * 8;
        }
        nexthdr = ext->nexthdr;
        off += len;
        if (off > PYXLB_L4_OFF_MASK)
            return 0;  /* too deep to look at: neither ports nor balancing */
    }
    pkt->l4_proto = nexthdr;
    pkt->l4_off = off;
    if (first_fragment)
        pyxlb_read_l4(data + (off & PYXLB_L4_OFF_MASK), data_end, pkt);
    return 0;
}

static __always_inline int pyxlb_parse_ipv6(void *data, void *l3, void *data_end,
                                            struct pyxlb_pkt *pkt)
{
    struct ipv6hdr *ip6 = l3;

    if ((void *)(ip6 + 1) > data_end)
        return PYXLB_MALFORMED;
    if (ip6->version != 6)
        return PYXLB_MALFORMED;

    __builtin_memcpy(pkt->src.addr, &ip6->saddr, 16);
    __builtin_memcpy(pkt->dst, &ip6->daddr, 16);
    pkt->ipv6 = 1;
    pkt->l4_proto = ip6->nexthdr;
    /* Such a destination would match IPv4 entries of the maps; it has no
     * business on the wire (RFC 4291 2.5.5.2). */
    pkt->v6_to_v4_mapped = pyxlb_v4_mapped(pkt->dst);
    pkt->l4_off = pkt->l3_off + sizeof(*ip6);
    if (pyxlb_walk_ipv6_ext(data, data_end, pkt, ip6->nexthdr))
        return PYXLB_MALFORMED;
    return PYXLB_PARSED;
}

static __always_inline int pyxlb_parse(PYXLB_CTX *ctx, struct pyxlb_pkt *pkt)
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

    pkt->l3_off = l3 - data;
    if (proto == bpf_htons(ETH_P_IP))
        return pyxlb_parse_ipv4(l3, data_end, pkt);
    if (proto == bpf_htons(ETH_P_IPV6))
        return pyxlb_parse_ipv6(data, l3, data_end, pkt);
    return PYXLB_NOT_IP;
}

#endif
