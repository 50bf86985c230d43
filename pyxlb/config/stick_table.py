"""`stick-table type T [len N] size N [expire T] [nopurge] [store D,...]`: per-key
counters (per source address, usually) that rules track and read.

A proxy has at most one table, named after the proxy; `track-sc0 src table NAME` and
`src_conn_rate(NAME)` refer to another proxy's.
"""

from __future__ import annotations

import re

from pyxlb.config.fetches import STORE_TYPES, UNSUPPORTED_STORE_TYPES
from pyxlb.config.keywords import UNSUPPORTED, Cap, Statement, did_you_mean
from pyxlb.config.lexer import Word
from pyxlb.config.model import StickTable, StoreItem
from pyxlb.config.proxy_draft import PROXY, ProxyDraft
from pyxlb.config.values import INT_MAX, BadValue, parse_int, parse_positive_time_ms

KEY_TYPES = ("ip", "ipv6", "integer", "string", "binary")
DEFAULT_KEY_LEN = 32
_SIZE = re.compile(r"([0-9]{1,12})([kmg]?)", re.ASCII)
_STORE = re.compile(r"([a-z0-9_]+)(?:\((.*)\))?", re.ASCII)


def parse_size(text: str) -> int:
    """A table size: a count with an optional k, m or g suffix (powers of 1024)."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise BadValue(f"'{text}' is not a size (a number, optionally followed by k, m or g)")
    size = int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2)]
    if not 1 <= size <= INT_MAX:
        raise BadValue(f"size '{text}' is out of range (1 to {INT_MAX} entries)")
    return size


@PROXY.keyword("stick-table", "type <type> size <size> [expire <time>] [store <data>,...]",
               args=(1, None), caps=Cap.FE | Cap.BE, in_defaults=False)
def _stick_table(st: Statement, p: ProxyDraft) -> None:
    if p.stick_table is not None:
        raise st.error(f"{p.label} already has a stick-table (at {p.stick_table.where}); "
                       "a proxy has at most one")
    words = list(st.args)
    fields: dict[str, object] = {}
    store: list[StoreItem] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word.text == "nopurge":
            fields["nopurge"] = True
            i += 1
            continue
        if word.text in ("peers", "srvkey", "write-to", "recv-only"):
            raise st.error(f"stick-table '{word.text}' {UNSUPPORTED}", word)
        if word.text not in ("type", "len", "size", "expire", "store"):
            hint = did_you_mean(word.text, ("type", "len", "size", "expire", "store", "nopurge"))
            raise st.error(f"unknown stick-table argument '{word.text}'{hint}", word)
        if i + 1 == len(words):
            raise st.error(f"stick-table '{word.text}' expects a value", word)
        value = words[i + 1]
        if word.text == "type":
            if value.text not in KEY_TYPES:
                raise st.error(f"unknown stick-table type '{value.text}' (expected "
                               f"{', '.join(KEY_TYPES)})", value)
            fields["type"] = value.text
        elif word.text == "len":
            if fields.get("type") not in ("string", "binary"):
                raise st.error("stick-table 'len' applies to 'type string' and 'type binary' "
                               "only, and must follow the type", word)
            fields["key_len"] = st.parse(value, parse_int, 1, name="stick-table len")
        elif word.text == "size":
            fields["size"] = st.parse(value, parse_size, name="stick-table size")
        elif word.text == "expire":
            fields["expire_ms"] = st.parse(value, parse_positive_time_ms,
                                           name="stick-table expire")
        else:
            store += _store(st, value)
        i += 2
    if "type" not in fields:
        raise st.error("stick-table expects 'type' followed by one of " + ", ".join(KEY_TYPES))
    if "size" not in fields:
        raise st.error("stick-table expects 'size' followed by a number of entries")
    if fields["type"] in ("string", "binary"):
        fields.setdefault("key_len", DEFAULT_KEY_LEN)
    names = [item.name for item in store]
    for name in names:
        if names.count(name) > 1:
            raise st.error(f"stick-table stores '{name}' twice")
    p.stick_table = StickTable(store=tuple(store), where=st.where, **fields)  # type: ignore[arg-type]


def _store(st: Statement, word: Word) -> list[StoreItem]:
    items = []
    for text in word.text.split(","):
        match = _STORE.fullmatch(text)
        name = match.group(1) if match else text
        if name in UNSUPPORTED_STORE_TYPES:
            raise st.error(f"stick-table data type '{name}' {UNSUPPORTED}", word)
        if match is None or name not in STORE_TYPES:
            hint = did_you_mean(name, STORE_TYPES)
            raise st.error(f"unknown stick-table data type '{text}'{hint}", word)
        period = match.group(2)
        if STORE_TYPES[name]:
            if not period:
                raise st.error(f"stick-table data type '{name}' expects a period, as in "
                               f"'{name}(10s)'", word)
            items.append(StoreItem(name=name, period_ms=st.parse(
                Word(period, word.col), parse_positive_time_ms, name=f"{name} period")))
        elif period is not None:
            raise st.error(f"stick-table data type '{name}' takes no period", word)
        else:
            items.append(StoreItem(name=name))
    return items
