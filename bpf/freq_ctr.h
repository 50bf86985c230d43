/* HAProxy 2.6's period frequency counter, exactly: update_freq_ctr_period()
 * (include/haproxy/freq_ctr.h) and freq_ctr_total() / read_freq_ctr_period()
 * (src/freq_ctr.c). pyxlb/rates/freq_ctr.py is the pure-Python twin that the
 * l7 tier and the tests use: keep the two in step line by line.
 *
 * Ticks are wrapping u32 milliseconds and every comparison is modular, as in
 * HAProxy. The caller passes the same period (1 <= period < 2^31) on every
 * call; 0 means the rate is not stored and must not reach these helpers.
 *
 * Concurrency. HAProxy adds to curr_ctr atomically and rotates periods under a
 * lock bit in curr_tick, spinning while another thread holds it. BPF cannot
 * spin, and BCC's compiler (no alu32) has 32-bit atomic add but neither 32-bit
 * compare-and-swap nor exchange; so a rotation here swaps {curr_tick,
 * curr_ctr} in one 64-bit compare-and-swap, which fails if an event was added
 * meanwhile, and retries a few times. The races left, all rare and none
 * losing more than the events of one concurrent moment:
 * - prev_ctr is stored just after the swap, so a reader in between sees the
 *   new period with the old prev_ctr (one read off, the next one right);
 * - an event that finds the period over but loses every retry is counted in
 *   whichever period is current then, not lost;
 * - a writer preempted (only BPF_PROG_TEST_RUN callers can be) for a whole
 *   period between its swap and its prev_ctr store would store a stale one.
 * Readers take {curr_tick, curr_ctr} in one 64-bit load, so the tick and
 * count they see belong together. */
#ifndef PYXLB_FREQ_CTR_H
#define PYXLB_FREQ_CTR_H

#include "structs.h"

#define PYXLB_ROTATE_TRIES 4

/* {curr_tick, curr_ctr} as the one word the compare-and-swap works on. */
union pyxlb_tick_ctr {
    __u64 word;
    struct {
        __u32 tick;
        __u32 ctr;
    };
};

/* update_freq_ctr_period(): counts `inc` events at `now`. */
static __always_inline void pyxlb_freq_ctr_update(struct freq_ctr *ctr, __u32 now,
                                                  __u32 period, __u32 inc)
{
    __u64 *pair = (__u64 *)&ctr->curr_tick;

#pragma unroll
    for (int i = 0; i < PYXLB_ROTATE_TRIES; i++) {
        union pyxlb_tick_ctr old, new;
        __u32 prev;

        old.word = *(volatile __u64 *)pair;
        if (now - old.tick < period) {
            __sync_fetch_and_add(&ctr->curr_ctr, inc);
            return;
        }
        /* Rotate: the current period becomes the previous one. */
        prev = old.ctr;
        new.ctr = inc;
        new.tick = old.tick + period;
        if (now - new.tick >= period) {
            /* At least two periods passed without an event. */
            prev = 0;
            new.tick = now;
        }
        /* HAProxy stores the tick with its lock bit cleared, so periods
         * start on even milliseconds there; reads stay equal to its own. */
        new.tick &= ~1U;
        if (__sync_val_compare_and_swap(pair, old.word, new.word) == old.word) {
            *(volatile __u32 *)&ctr->prev_ctr = prev;
            return;
        }
    }
    __sync_fetch_and_add(&ctr->curr_ctr, inc);
}

/* freq_ctr_total() without pending events (pend = -1): the events over the
 * sliding window ending at `now`, times the period. The types are HAProxy's:
 * curr and past are unsigned long long, remain an int, and `past * remain`
 * converts remain to unsigned (it is negative only when past is 0). */
static __always_inline __u64 pyxlb_freq_ctr_total(const struct freq_ctr *ctr, __u32 now,
                                                  __u32 period)
{
    union pyxlb_tick_ctr snap;
    __u64 curr, past;
    int remain;

    snap.word = *(volatile const __u64 *)&ctr->curr_tick;
    curr = snap.ctr;
    past = *(volatile const __u32 *)&ctr->prev_ctr;

    remain = snap.tick + period - now;
    if (remain < 0) {
        /* Past the current period: only the part of it still inside the
         * window counts, none if it is beyond. */
        remain += period;
        past = (remain >= 0) ? curr : 0;
        curr = 0;
    }
    /* Flapping correction below 2 events per period. */
    if (!curr && past <= 1)
        return past * period;
    return past * remain + curr * period;
}

/* read_freq_ctr_period(): the rate in events per period at `now`. */
static __always_inline __u32 pyxlb_freq_ctr_read(const struct freq_ctr *ctr, __u32 now,
                                                 __u32 period)
{
    return pyxlb_freq_ctr_total(ctr, now, period) / period;
}

#endif
