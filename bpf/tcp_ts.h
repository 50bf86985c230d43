/* TCP timestamps (RFC 7323) of full-NAT flows, moved onto the balancer's own
 * clock.
 *
 * Why: a backend that closes first keeps (NAT address, NAT port) in
 * TIME_WAIT, and takes a new SYN on those ports only when its TSval is newer
 * than the last one it saw there (Linux's tcp_timewait_state_process; PAWS
 * otherwise). Clients start each connection's timestamps at a random offset
 * (Linux since 4.10), so a NAT port that comes round again carries, half the
 * time, an older-looking TSval and the SYN is answered with a stale ACK: one
 * second lost to the client's SYN retransmit. So a new flow's TSval is
 * shifted to read the balancer's clock, for every packet of the flow; the
 * backend's TSecr (its echo) is shifted back on the way to the client.
 *
 * The clock ticks every 65.5 us (ns >> 16), faster than any client's
 * (1 ms on Linux), so that a flow reopened on a port right after another
 * still reads newer: the backend sees the old flow's last TSval grow at the
 * client's rate and the new one's start at the clock's. It wraps in 3.3 days;
 * a flow that lasted over 41 hours, reused within its TIME_WAIT, could read
 * older: the seq check of TIME_WAIT then decides, as without the shift. */
#ifndef PYXLB_TCP_TS_H
#define PYXLB_TCP_TS_H

#include "csum.h"

#define PYXLB_TCPOPT_EOL 0
#define PYXLB_TCPOPT_NOP 1
#define PYXLB_TCPOPT_TS 8
#define PYXLB_TCPOLEN_TS 10
/* Options walked before giving up: Linux's SYN has five (MSS, SACK-permitted,
 * timestamps, NOP, window scale), its other segments NOP NOP timestamps. */
#define PYXLB_TCPOPT_WALK 12
#define PYXLB_TCP_OFF_MASK 63 /* offsets into a TCP header (60 bytes at most) */

/* The flow's new TSval origin: the balancer's clock now. */
static __always_inline __u32 pyxlb_ts_clock(void)
{
    return (__u32)(bpf_ktime_get_ns() >> 16);
}

/* Where the timestamp option's kind byte lies from the TCP header's start,
 * or 0 when the segment has none (or its options are malformed). The common
 * layout (NOP NOP TS first, nothing else) is recognised without a walk. */
static __always_inline __u32 pyxlb_tcp_ts_find(struct tcphdr *tcp, void *data_end)
{
    __u8 *opts = (__u8 *)(tcp + 1);
    __u32 hdr_len = tcp->doff * 4;
    __u32 off = sizeof(*tcp);

    if (hdr_len < sizeof(*tcp) + PYXLB_TCPOLEN_TS)
        return 0;
    if (hdr_len == sizeof(*tcp) + 12 && (void *)(opts + 12) <= data_end &&
        *(__u32 *)opts == bpf_htonl(0x0101080a))
        return sizeof(*tcp) + 2;
#pragma unroll
    for (int i = 0; i < PYXLB_TCPOPT_WALK; i++) {
        __u8 *opt = (__u8 *)tcp + (off & PYXLB_TCP_OFF_MASK);
        __u8 kind, len;

        if (off + 2 > hdr_len || (void *)(opt + 2) > data_end)
            return 0;
        kind = opt[0];
        if (kind == PYXLB_TCPOPT_EOL)
            return 0;
        if (kind == PYXLB_TCPOPT_NOP) {
            off++;
            continue;
        }
        len = opt[1];
        if (kind == PYXLB_TCPOPT_TS)
            return len == PYXLB_TCPOLEN_TS && off + PYXLB_TCPOLEN_TS <= hdr_len &&
                   (void *)(opt + PYXLB_TCPOLEN_TS) <= data_end ? off : 0;
        if (len < 2)
            return 0;
        off += len;
    }
    return 0;
}

/* The segment's TSval, or 0 when it has none. */
static __always_inline __u32 pyxlb_tcp_tsval(struct tcphdr *tcp, void *data_end)
{
    __u32 at = pyxlb_tcp_ts_find(tcp, data_end);
    __u8 *field = (__u8 *)tcp + (at & PYXLB_TCP_OFF_MASK) + 2;
    __u32 value;

    if (!at || (void *)(field + 4) > data_end)
        return 0;
    __builtin_memcpy(&value, field, 4);
    return bpf_ntohl(value);
}

/* Adds `shift` to the segment's TSval (`echo` 0: client to backend) or to
 * its TSecr (`echo` 1: backend to client); returns the checksum delta, 0 when
 * the segment has no timestamps. A field at an odd offset from the header's
 * start straddles the 16-bit words the checksum adds, so its delta is
 * byte-swapped (RFC 1071's byte-order independence, shifted by one). */
static __always_inline __u64 pyxlb_tcp_ts_shift(struct tcphdr *tcp, void *data_end,
                                                __u32 shift, int echo)
{
    __u32 at = pyxlb_tcp_ts_find(tcp, data_end);
    __u32 field_off = at + (echo ? 6 : 2);
    __u8 *field = (__u8 *)tcp + (field_off & PYXLB_TCP_OFF_MASK);
    __u32 old, new;
    __u16 delta;

    if (!at || (void *)(field + 4) > data_end)
        return 0;
    __builtin_memcpy(&old, field, 4);
    new = bpf_htonl(bpf_ntohl(old) + shift);
    __builtin_memcpy(field, &new, 4);
    delta = pyxlb_csum_fold(pyxlb_csum_delta32(old, new));
    if (field_off & 1)
        delta = (__u16)(delta << 8 | delta >> 8);
    return delta;
}

#endif
