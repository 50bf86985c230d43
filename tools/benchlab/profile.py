"""py-spy's collapsed stacks ("--format raw") summed per function: the share of
samples spent in a function itself (self) and under it (inclusive)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

# "name (path/file.py:123)"; native frames have no line, idle ones no file.
_FRAME_RE = re.compile(r"^(?P<name>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")
# A leading label that --threads or a multi-process record adds: not a frame.
_LABEL_RE = re.compile(r'^(process \d+|thread \(0x[0-9a-f]+\))')


def function_of(frame: str) -> str:
    """A frame without its line number, the path cut to its last two parts."""
    m = _FRAME_RE.match(frame.strip())
    if not m:
        return frame.strip()
    path = "/".join(m["file"].split("/")[-2:])
    return f"{m['name']} ({path})" if path else m["name"]


@dataclass
class Profile:
    samples: int
    self_: Counter[str]
    inclusive: Counter[str]

    def top(self, which: str, n: int, within: str = "") -> list[tuple[str, float]]:
        """The `n` functions with the most samples, self or inclusive, as % of all
        samples; `within`: only functions whose file path contains it."""
        counts = self.self_ if which == "self" else self.inclusive
        ranked = [(f, c) for f, c in counts.most_common() if within in f]
        return [(f, 100.0 * c / self.samples) for f, c in ranked[:n]]


def summarise(collapsed: str) -> Profile:
    total = 0
    self_: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        parts = stack.split(";")
        if _LABEL_RE.match(parts[0]):
            parts = parts[1:]
        frames = [function_of(f) for f in parts]  # root first
        total += n
        if frames:
            self_[frames[-1]] += n
            for f in set(frames):
                inclusive[f] += n
    return Profile(total, self_, inclusive)
