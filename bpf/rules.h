/* Kernel-enforced `tcp-request connection` rules. The control plane compiles
 * conditions on what XDP can read (src_conn_rate, src_http_err_rate,
 * src_get_gpc0, each `gt N`) into dp_params; a SYN whose source matches one is
 * rejected, unless the source is allowed. Checked after the SYN is counted, as
 * HAProxy tracks a connection before its reject rule reads the counters.
 * `accept|reject|silent-drop if { src NETS }` are compiled into src_rules
 * (struct src_rule), per frontend. */
#ifndef PYXLB_RULES_H
#define PYXLB_RULES_H

#include "src_track.h"

enum pyxlb_reject_reason {
    PYXLB_ACCEPT,
    PYXLB_REJECT_GPC0,
    PYXLB_REJECT_CONN_RATE,
    PYXLB_REJECT_HTTP_ERR_RATE,
};

/* `entry` is NULL for a source without a live entry: all its counters read 0. */
static __always_inline int pyxlb_reject_reason(const struct src_track *entry,
                                               const struct dp_params *params, __u32 now)
{
    if (!entry)
        return PYXLB_ACCEPT;
    /* Cheapest first: the abuser flag needs no division. */
    if (params->reject_gpc0 && entry->gpc0 > params->gpc0_gt)
        return PYXLB_REJECT_GPC0;
    if (params->reject_conn_rate && params->conn_rate_period &&
        pyxlb_freq_ctr_read(&entry->conn_rate, now, params->conn_rate_period) >
            params->conn_rate_gt)
        return PYXLB_REJECT_CONN_RATE;
    if (params->reject_http_err_rate && params->http_err_rate_period &&
        pyxlb_freq_ctr_read(&entry->http_err_rate, now, params->http_err_rate_period) >
            params->http_err_rate_gt)
        return PYXLB_REJECT_HTTP_ERR_RATE;
    return PYXLB_ACCEPT;
}

/* What a src_rules entry (NULL: no match) says for a frontend's SYN:
 * PYXLB_SRC_NONE (no src rule of the frontend matches: the others run), or
 * the first matching rule's action, with PYXLB_SRC_AFTER_TRACK when that rule
 * follows the frontend's track-sc0. */
#define PYXLB_SRC_NONE 0
#define PYXLB_SRC_ACCEPT 1
#define PYXLB_SRC_REJECT 2
#define PYXLB_SRC_SILENT_DROP 3
#define PYXLB_SRC_AFTER_TRACK 4

static __always_inline int pyxlb_src_rule_verdict(const struct src_rule *rule, int frontend)
{
    __u64 bit = 1ULL << (frontend & (PYXLB_TRACKED_FRONTENDS_MAX - 1));
    int verdict;

    if (!rule)
        return PYXLB_SRC_NONE;
    if (rule->accept & bit)
        verdict = PYXLB_SRC_ACCEPT;
    else if (rule->reject & bit)
        verdict = PYXLB_SRC_REJECT;
    else if (rule->silent_drop & bit)
        verdict = PYXLB_SRC_SILENT_DROP;
    else
        return PYXLB_SRC_NONE;
    return rule->after_track & bit ? verdict | PYXLB_SRC_AFTER_TRACK : verdict;
}

static __always_inline int pyxlb_rejects_enabled(const struct dp_params *params)
{
    return params->reject_gpc0 || params->reject_conn_rate || params->reject_http_err_rate;
}

#endif
