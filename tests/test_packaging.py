"""Every Python package in the tree is listed for installation: an editable
install finds unlisted ones anyway, a real install would silently miss them."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed_in_pyproject():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    folders = {"pyxlb.l7": ROOT / "l7", "pyxlb.bpf": ROOT / "bpf", "pyxlb": ROOT / "pyxlb"}
    found = set()
    for name, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            parts = init.parent.relative_to(folder).parts
            found.add(".".join((name, *parts)))
    assert found == listed
