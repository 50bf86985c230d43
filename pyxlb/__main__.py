"""`python -m pyxlb` is the `pyxlb` command."""

from pyxlb.cli import main

main()
