"""py-spy's collapsed stacks summed per function."""

from __future__ import annotations

import pytest
from benchlab.profile import function_of, summarise

COLLAPSED = """\
0x7f (libc.so.6);run (a/loop.c:10);data_received (l7/proxy.py:295);write (libc.so.6) 6
0x7f (libc.so.6);run (a/loop.c:11);data_received (l7/proxy.py:300);parse (l7/http1.py:40) 3
0x7f (libc.so.6);run (a/loop.c:10);epoll_pwait (libc.so.6) 1
not a stack line
"""


def test_a_frame_loses_its_line_and_keeps_two_path_parts():
    assert function_of("ClientConnection._write (/x/y/l7/proxy.py:909)") == \
        "ClientConnection._write (l7/proxy.py)"
    assert function_of("write (libc.so.6)") == "write (libc.so.6)"
    assert function_of("<module> (<frozen runpy>:88)") == "<module> (<frozen runpy>)"


def test_self_time_is_the_leaf_and_inclusive_counts_a_function_once_per_stack():
    prof = summarise(COLLAPSED)
    assert prof.samples == 10
    assert prof.top("self", 2) == [("write (libc.so.6)", 60.0), ("parse (l7/http1.py)", 30.0)]
    inclusive = dict(prof.top("inclusive", 10))
    assert inclusive["run (a/loop.c)"] == pytest.approx(100.0)
    assert inclusive["data_received (l7/proxy.py)"] == pytest.approx(90.0)


def test_top_can_keep_to_one_part_of_the_tree():
    assert [f for f, _ in summarise(COLLAPSED).top("inclusive", 5, "l7/")] == [
        "data_received (l7/proxy.py)", "parse (l7/http1.py)"]


def test_a_thread_label_is_not_a_frame():
    prof = summarise('process 7:"python -m pyxlb";run (a/loop.c:1);idle (x/y.py:2) 4\n')
    assert dict(prof.top("inclusive", 5)) == {"run (a/loop.c)": 100.0, "idle (x/y.py)": 100.0}
