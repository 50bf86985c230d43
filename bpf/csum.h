/* Incremental Internet checksum updates (RFC 1624, eqn. 3: HC' = ~(~HC +
 * ~m + m')), for rewriting addresses and ports: XDP has no csum-replace
 * helper. Words are taken from packet memory as they lie, never byte-swapped:
 * the one's complement sum does not depend on byte order (RFC 1071), so the
 * checksum field and the words it covers only have to be read the same way.
 *
 * A delta is a sum of ~old + new terms, kept in 64 bits so that a dozen
 * terms cannot overflow; pyxlb_csum_update folds it into a checksum. */
#ifndef PYXLB_CSUM_H
#define PYXLB_CSUM_H

static __always_inline __u64 pyxlb_csum_delta32(__u32 old, __u32 new)
{
    return (__u64)(__u32)~old + new;
}

static __always_inline __u64 pyxlb_csum_delta16(__u16 old, __u16 new)
{
    return (__u64)(__u16)~old + new;
}

/* The delta of replacing a 16-byte address, word by word. */
static __always_inline __u64 pyxlb_csum_delta128(const __u32 *old, const __u32 *new)
{
    return pyxlb_csum_delta32(old[0], new[0]) + pyxlb_csum_delta32(old[1], new[1]) +
           pyxlb_csum_delta32(old[2], new[2]) + pyxlb_csum_delta32(old[3], new[3]);
}

/* The one's complement sum of `sum`, folded to 16 bits. */
static __always_inline __u16 pyxlb_csum_fold(__u64 sum)
{
    sum = (sum & 0xffffffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return sum;
}

static __always_inline __u16 pyxlb_csum_update(__u16 check, __u64 delta)
{
    return ~pyxlb_csum_fold((__u16)~check + delta);
}

#endif
