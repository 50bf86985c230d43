/* The hook the program runs at: XDP (the default), or TC ingress when built
 * with -DPYXLB_HOOK_TC, for interfaces where XDP cannot attach. The packet
 * logic is the same; only the context, the verdicts and "send back out of
 * the interface it came in on" differ. */
#ifndef PYXLB_HOOK_H
#define PYXLB_HOOK_H

#include <uapi/linux/bpf.h>
#include <uapi/linux/pkt_cls.h>

#ifdef PYXLB_HOOK_TC
#define PYXLB_CTX struct __sk_buff
#define PYXLB_PASS TC_ACT_OK
#define PYXLB_DROP TC_ACT_SHOT
/* Out of the device it came in on: a redirect to its egress. */
#define PYXLB_TX(ctx) bpf_redirect((ctx)->ifindex, 0)
/* The whole packet, not only the linear part direct access sees. */
#define PYXLB_PKT_LEN(ctx) ((ctx)->len)
/* Cuts the packet from `cur` to `len` bytes; 0 on success. */
#define PYXLB_TRIM(ctx, len, cur) bpf_skb_change_tail((ctx), (len), 0)
/* Headers we read or write must be in the linear part. */
#define PYXLB_LINEAR_WANTED 256

static __always_inline void pyxlb_hook_prepare(struct __sk_buff *ctx)
{
    __u32 want = ctx->len < PYXLB_LINEAR_WANTED ? ctx->len : PYXLB_LINEAR_WANTED;

    if (ctx->data_end - ctx->data < want)
        bpf_skb_pull_data(ctx, want);
}
#else
#define PYXLB_CTX struct xdp_md
#define PYXLB_PASS XDP_PASS
#define PYXLB_DROP XDP_DROP
#define PYXLB_TX(ctx) XDP_TX
#define PYXLB_PKT_LEN(ctx) ((ctx)->data_end - (ctx)->data)
#define PYXLB_TRIM(ctx, len, cur) bpf_xdp_adjust_tail((ctx), (int)(len) - (int)(cur))

static __always_inline void pyxlb_hook_prepare(struct xdp_md *ctx)
{
}
#endif

#endif
