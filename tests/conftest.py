"""Fixtures shared by all tests: `lab`, one network-namespace lab for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pyxlb.lab.lab import Lab, lab_unavailable, reap_stale_labs, unique_prefix

# Prefix bases of labs made by tests ("pt" + pid): the session lab and tests' own labs.
TEST_LAB_BASES = ("pt", "pc")


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The lab, up, under a prefix unique to this run; torn down whatever happens."""
    if reason := lab_unavailable():
        pytest.skip(reason)
    reap_stale_labs(*TEST_LAB_BASES)
    the_lab = Lab(unique_prefix("pt"))
    try:
        the_lab.up()
        yield the_lab
    finally:
        the_lab.down()
