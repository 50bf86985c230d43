/* Sending a rewritten packet on: the next hop's MACs from the kernel's FIB
 * and neighbour tables (bpf_fib_lookup), out of the interface the route
 * says. When the kernel cannot say (no neighbour entry yet, no route,
 * forwarding off on the ingress device), the rewritten packet goes to the
 * stack, which forwards it and resolves the neighbour for the next ones. */
#ifndef PYXLB_NEXTHOP_H
#define PYXLB_NEXTHOP_H

#include "hook.h"
#include "nat.h"
#include "parsing.h"
#include "structs.h"

#define PYXLB_AF_INET 2
#define PYXLB_AF_INET6 10

/* `via`, when not NULL, is the next hop to look up (a DSR backend: the
 * packet keeps the VIP as its destination); else the packet's destination. */
static __always_inline int pyxlb_send_on(PYXLB_CTX *ctx, const struct pyxlb_pkt *pkt,
                                         const __u8 *via, struct dp_counters *counters)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    void *l3 = data + (pkt->l3_off & PYXLB_L3_OFF_MASK);
    struct ethhdr *eth = data;
    struct bpf_fib_lookup fib = {};
    int rc;

    if (pkt->ipv6) {
        struct ipv6hdr *ip6 = l3;

        if ((void *)(ip6 + 1) > data_end)
            return PYXLB_PASS;
        fib.family = PYXLB_AF_INET6;
        fib.tot_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
        __builtin_memcpy(fib.ipv6_src, &ip6->saddr, 16);
        __builtin_memcpy(fib.ipv6_dst, via ? via : (const __u8 *)&ip6->daddr, 16);
    } else {
        struct iphdr *ip = l3;

        if ((void *)(ip + 1) > data_end)
            return PYXLB_PASS;
        fib.family = PYXLB_AF_INET;
        fib.tos = ip->tos;
        fib.tot_len = bpf_ntohs(ip->tot_len);
        fib.ipv4_src = ip->saddr;
        if (via)
            __builtin_memcpy(&fib.ipv4_dst, via + 12, 4);
        else
            fib.ipv4_dst = ip->daddr;
    }
    fib.l4_protocol = pkt->l4_proto;
    fib.ifindex = ctx->ingress_ifindex;

    rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
    if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
        if ((void *)(eth + 1) > data_end)
            return PYXLB_PASS;
        __builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
        __builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
        if (fib.ifindex == ctx->ingress_ifindex) {
            counters->l4_tx++;
            return PYXLB_TX(ctx);
        }
        counters->l4_redirected++;
        return bpf_redirect(fib.ifindex, 0);
    }
    if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
        counters->fib_no_neigh++;
    else
        counters->fib_failed++;
    return PYXLB_PASS;
}

#endif
