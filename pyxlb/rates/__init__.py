"""Rate counters: HAProxy's window (freq_ctr) arithmetic as a pure core shared by
the l7 tier, the tests and, as the reference twin, the kernel's C code."""
