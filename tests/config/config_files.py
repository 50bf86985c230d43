"""The configuration files under data/ and the expectations their comments state.

data/good/ holds valid configurations (the tutorial's, completed, and feature tours);
data/bad/ invalid ones, each stating its errors in `# expect: LINE:COL: message` lines;
data/warnings/ valid ones stating their warnings in `# warning: LINE:COL: message`
lines. In those messages `{file}` stands for the file's path. Where HAProxy deliberately
disagrees, the file says so and why: `# haproxy: valid (reason)` in a bad file,
`# haproxy: invalid (reason)` in a good one.
Relative paths in good files (certificates, pattern files) are relative to data/good/.
"""

from __future__ import annotations

from pathlib import Path

from pyxlb.config import ConfigError, ConfigErrors

DATA = Path(__file__).parent / "data"
GOOD_DIR = DATA / "good"
GOOD = sorted(GOOD_DIR.glob("*.cfg"))
BAD = sorted((DATA / "bad").glob("*.cfg"))
WARNINGS = sorted((DATA / "warnings").glob("*.cfg"))


def messages(err: ConfigError) -> list[str]:
    """Every error an exception carries, as the user reads them."""
    return [str(e) for e in err.errors] if isinstance(err, ConfigErrors) else [str(err)]


def stated(path: Path, kind: str) -> list[str]:
    """The messages a data file's `# KIND: ...` comments state, with its path filled in."""
    prefix = f"# {kind}: "
    return [f"{path}:{line[len(prefix):].rstrip()}".replace("{file}", str(path))
            for line in path.read_text().splitlines() if line.startswith(prefix)]


def haproxy_note(path: Path) -> tuple[bool, str] | None:
    """Where HAProxy deliberately disagrees: whether it finds the file valid, and why."""
    for line in path.read_text().splitlines():
        for verdict in ("valid", "invalid"):
            if line.startswith(f"# haproxy: {verdict} ("):
                return verdict == "valid", line.removeprefix(f"# haproxy: {verdict}").strip(" ()")
    return None
