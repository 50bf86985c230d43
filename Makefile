# The two entry points the README promises; both set the machine up first.
.PHONY: setup demo test

setup:
	@tools/setup.sh

demo: setup
	@.venv/bin/pyxlb lab demo

test: setup
	@.venv/bin/python -m pytest
