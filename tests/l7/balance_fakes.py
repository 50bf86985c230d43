"""What the balancing tests balance: a server as l7.balance sees one
(Balanceable), and nothing more."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(eq=False)
class Srv:
    name: str
    weight: int = 1
    backup: bool = False
    maxconn: int = 0
