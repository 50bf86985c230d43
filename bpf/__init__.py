"""Marks bpf/ as the pyxlb.bpf package so its C sources install with pyxlb."""
