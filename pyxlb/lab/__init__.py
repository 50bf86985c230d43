"""The test lab: network namespaces on a bridge with clients, the balancer's namespace
and backend servers (`topology` names them, `lab` builds them, `servers` runs in the
backends, `probes` in the clients, `cli` is `pyxlb lab`)."""
