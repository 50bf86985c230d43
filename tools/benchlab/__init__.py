"""Pieces of tools/bench_lab.py: configs, nginx backends, HAProxy, wrk, CPU
meters, a connection flooder and a py-spy summary, each small and reusable."""
