"""The runtime API as operators' scripts use it: socat on the stats socket."""

from __future__ import annotations

import subprocess
from pathlib import Path


def cli(path: Path, line: str) -> str:
    """One command line through socat; its output."""
    return subprocess.run(["socat", "-", f"UNIX-CONNECT:{path}"], input=line + "\n",
                          capture_output=True, text=True, check=True, timeout=10).stdout
