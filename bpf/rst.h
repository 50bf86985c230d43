/* Answering a rejected SYN with a RST, as HAProxy's `tcp-request connection
 * reject` ends up doing (it closes the accepted socket without lingering:
 * one RST); `silent-drop` drops instead. The SYN is turned into the RST in
 * place: MACs, addresses and ports swapped, RST|ACK acknowledging the SYN,
 * no options, no payload, fresh checksums, and sent back where it came from.
 * SYNs with IPv4 options or IPv6 extension headers are dropped instead. */
#ifndef PYXLB_RST_H
#define PYXLB_RST_H

#include "csum.h"
#include "hook.h"
#include "parsing.h"

#define PYXLB_RST_TTL 64

/* The one's complement sum of `len` bytes (even) at `p`, unfolded. Only
 * ever given copies on the stack: summing packet memory in a loop loses the
 * verifier the bounds it was shown. */
static __always_inline __u64 pyxlb_csum_words(const void *p, int len)
{
    const __u16 *words = p;
    __u64 sum = 0;

#pragma unroll
    for (int i = 0; i < len / 2; i++)
        sum += words[i];
    return sum;
}

/* Makes `tcp` (a copy of the SYN's header) the RST answering it: ports
 * swapped, RST|ACK, ack = the SYN's seq + 1 + its payload, checksummed over
 * `pseudo` (the pseudo-header's sum). */
static __always_inline void pyxlb_rst_tcp(struct tcphdr *tcp, __u32 syn_payload, __u64 pseudo)
{
    __be16 port = tcp->source;
    __u32 ack = bpf_ntohl(tcp->seq) + 1 + syn_payload;

    tcp->source = tcp->dest;
    tcp->dest = port;
    tcp->ack_seq = bpf_htonl(ack);
    tcp->seq = 0;
    /* doff 5, then RST|ACK; window, checksum and urgent pointer zero. */
    ((__u8 *)tcp)[12] = 5 << 4;
    ((__u8 *)tcp)[13] = PYXLB_TCP_RST | PYXLB_TCP_ACK;
    tcp->window = 0;
    tcp->check = 0;
    tcp->urg_ptr = 0;
    tcp->check = ~pyxlb_csum_fold(pseudo + pyxlb_csum_words(tcp, sizeof(*tcp)));
}

/* Turns the SYN into its RST and returns the verdict that sends it back;
 * PYXLB_DROP when it cannot (options, extension headers, odd lengths). */
static __always_inline int pyxlb_answer_rst(PYXLB_CTX *ctx, const struct pyxlb_pkt *pkt)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    __u32 l3_off = pkt->l3_off & PYXLB_L3_OFF_MASK;
    struct ethhdr *eth = data;
    struct ethhdr eth_out;
    struct tcphdr tcp_out;
    __u32 cur_len = data_end - data;
    __u32 new_len, syn_payload;
    __u64 pseudo;

    /* Kept a number: the verifier refuses arithmetic mixing it back into
     * packet pointers. */
    asm volatile("" : "+r"(cur_len));
    if ((void *)(eth + 1) > data_end)
        return PYXLB_DROP;
    if (pkt->ipv6) {
        struct ipv6hdr *ip6 = data + l3_off;
        struct tcphdr *tcp = (void *)(ip6 + 1);
        struct ipv6hdr ip6_out;

        if ((void *)(tcp + 1) > data_end || ip6->nexthdr != IPPROTO_TCP)
            return PYXLB_DROP;
        ip6_out = *ip6;
        tcp_out = *tcp;
        syn_payload = bpf_ntohs(ip6_out.payload_len);
        if (syn_payload < tcp_out.doff * 4)
            return PYXLB_DROP;
        syn_payload -= tcp_out.doff * 4;
        ip6_out.saddr = ip6->daddr;
        ip6_out.daddr = ip6->saddr;
        ip6_out.payload_len = bpf_htons(sizeof(tcp_out));
        ip6_out.hop_limit = PYXLB_RST_TTL;
        pseudo = pyxlb_csum_words(&ip6_out.saddr, 32) + bpf_htons(sizeof(tcp_out)) +
                 bpf_htons(IPPROTO_TCP);
        pyxlb_rst_tcp(&tcp_out, syn_payload, pseudo);
        *ip6 = ip6_out;
        *tcp = tcp_out;
        new_len = l3_off + sizeof(ip6_out) + sizeof(tcp_out);
    } else {
        struct iphdr *ip = data + l3_off;
        struct tcphdr *tcp = (void *)(ip + 1);
        struct iphdr ip_out;

        if ((void *)(tcp + 1) > data_end)
            return PYXLB_DROP;
        ip_out = *ip;
        tcp_out = *tcp;
        syn_payload = bpf_ntohs(ip_out.tot_len);
        if (ip_out.ihl != 5 || syn_payload < sizeof(ip_out) + tcp_out.doff * 4)
            return PYXLB_DROP;
        syn_payload -= sizeof(ip_out) + tcp_out.doff * 4;
        ip_out.saddr = ip->daddr;
        ip_out.daddr = ip->saddr;
        ip_out.tot_len = bpf_htons(sizeof(ip_out) + sizeof(tcp_out));
        ip_out.ttl = PYXLB_RST_TTL;
        ip_out.id = 0;
        ip_out.frag_off = bpf_htons(0x4000);  /* DF */
        ip_out.check = 0;
        ip_out.check = ~pyxlb_csum_fold(pyxlb_csum_words(&ip_out, sizeof(ip_out)));
        pseudo = pyxlb_csum_words(&ip_out.saddr, 8) + bpf_htons(sizeof(tcp_out)) +
                 bpf_htons(IPPROTO_TCP);
        pyxlb_rst_tcp(&tcp_out, syn_payload, pseudo);
        *ip = ip_out;
        *tcp = tcp_out;
        new_len = l3_off + sizeof(ip_out) + sizeof(tcp_out);
    }
    __builtin_memcpy(eth_out.h_dest, eth->h_source, ETH_ALEN);
    __builtin_memcpy(eth_out.h_source, eth->h_dest, ETH_ALEN);
    __builtin_memcpy(eth->h_dest, eth_out.h_dest, ETH_ALEN);
    __builtin_memcpy(eth->h_source, eth_out.h_source, ETH_ALEN);
    if (PYXLB_TRIM(ctx, new_len, cur_len))
        return PYXLB_DROP;
    return PYXLB_TX(ctx);
}

#endif
