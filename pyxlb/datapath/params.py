"""The datapath's parameters: the one-entry `dp_params` map.

They say what XDP counts per source (SYNs, where the config tracks at
`tcp-request connection`), the stick-table's periods and expiry, and which
compiled `tcp-request connection reject` rules it enforces. The control plane
writes them at start and on reload, so a config change needs no recompile; the
table's size is the exception (a map's size is fixed when it is created) and
goes to the build as PYXLB_SRC_TRACK_MAX. Tests also set the clock here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyxlb.datapath import libbpf
from pyxlb.datapath.maps import BpfMap
from pyxlb.datapath.ports import TRACKED_FRONTENDS_MAX

if TYPE_CHECKING:
    from pyxlb.config.model import StickTable

MAP_NAME = "dp_params"
U32_MAX = 0xFFFF_FFFF
# A rate's period must keep HAProxy's modular tick comparisons meaningful.
MAX_PERIOD_MS = (1 << 31) - 1
RATE_PERIODS = {"conn_rate": "conn_rate_period", "http_req_rate": "http_req_rate_period",
                "http_err_rate": "http_err_rate_period", "gpc0_rate": "gpc0_rate_period"}
# Reject rules: the threshold field and the flag that turns it on.
REJECT_RULES = {"conn_rate_gt": "reject_conn_rate", "http_err_rate_gt": "reject_http_err_rate",
                "gpc0_gt": "reject_gpc0"}


@dataclass(frozen=True, kw_only=True)
class DpParams:
    """Periods and expiry in ms (0: the rate is not stored, entries never
    expire). A `*_gt` threshold N enforces `reject if { src_X gt N }`; None
    enforces nothing. With `tracked_ports_only`, counting and rules apply to
    SYNs for the tracked frontends' binds (pyxlb.datapath.ports) only; without,
    to SYNs for any port. `src_rules`: the config's src rules are in the
    src_rules map (pyxlb.datapath.src_rules), for the tracked frontends'
    SYNs. `track_frontend`: the number of the tracked frontend whose SYNs are
    counted and checked against the thresholds (None: every one's).
    `now_ms_override`, when non-zero, is the clock (tests)."""

    expire_ms: int = 0
    conn_rate_period: int = 0
    http_req_rate_period: int = 0
    http_err_rate_period: int = 0
    gpc0_rate_period: int = 0
    count_syns: bool = False
    conn_rate_gt: int | None = None
    http_err_rate_gt: int | None = None
    gpc0_gt: int | None = None
    tracked_ports_only: bool = False
    reject_with_rst: bool = False
    src_rules: bool = False
    track_frontend: int | None = None
    now_ms_override: int = 0

    def __post_init__(self) -> None:
        for name in RATE_PERIODS.values():
            if not 0 <= getattr(self, name) <= MAX_PERIOD_MS:
                raise ValueError(f"dp_params {name}={getattr(self, name)}: a period is "
                                 f"0 (not stored) to {MAX_PERIOD_MS} ms")
        for name in ("expire_ms", "now_ms_override", *REJECT_RULES):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= U32_MAX:
                raise ValueError(f"dp_params {name}={value}: out of range (0 to {U32_MAX})")
        if self.track_frontend is not None and not (
                0 <= self.track_frontend < TRACKED_FRONTENDS_MAX):
            raise ValueError(f"dp_params track_frontend={self.track_frontend}: a tracked "
                             f"frontend's number is 0 to {TRACKED_FRONTENDS_MAX - 1}")
        if self.conn_rate_gt is not None and not self.conn_rate_period:
            raise ValueError("dp_params conn_rate_gt: the table does not store conn_rate")
        if self.http_err_rate_gt is not None and not self.http_err_rate_period:
            raise ValueError("dp_params http_err_rate_gt: the table does not store http_err_rate")

    @classmethod
    def for_stick_table(cls, table: StickTable, **fields: object) -> DpParams:
        """The periods and expiry of `table`, with `fields` (count_syns, the
        thresholds) as the frontend's rules ask."""
        periods = {RATE_PERIODS[item.name]: item.period_ms for item in table.store
                   if item.name in RATE_PERIODS}
        return cls(expire_ms=table.expire_ms or 0, **periods, **fields)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> DpParams:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def period(self, rate: str) -> int:
        """The period of `conn_rate`, `http_req_rate`, ...; 0 when not stored."""
        return getattr(self, RATE_PERIODS[rate])


def write(params_map: BpfMap, params: DpParams) -> None:
    value = params_map.layout.value_type()
    for field in dataclasses.fields(params):
        name = field.name
        setting = getattr(params, name)
        if name in REJECT_RULES:
            setattr(value, REJECT_RULES[name], setting is not None)
            setting = setting or 0
        elif name == "track_frontend":
            setting = 0 if setting is None else setting + 1
        setattr(value, name, int(setting))
    libbpf.map_update(params_map.fd, params_map.layout.key_type(0), value)


def read(params_map: BpfMap) -> DpParams:
    value = params_map.lookup(params_map.layout.key_type(0))
    fields = {}
    for field in dataclasses.fields(DpParams):
        name = field.name
        setting = getattr(value, name)
        if name in REJECT_RULES:
            setting = setting if getattr(value, REJECT_RULES[name]) else None
        elif name == "track_frontend":
            setting = setting - 1 if setting else None
        elif name in ("count_syns", "tracked_ports_only", "reject_with_rst", "src_rules"):
            setting = bool(setting)
        fields[name] = setting
    return DpParams(**fields)
