"""Layer-7 worker processes: `nbthread N` runs the layer-7 tier in N
processes sharing the listening ports (SO_REUSEPORT) and the kernel maps.
The daemon is the first of them and keeps what is one per instance (health
checks, the runtime API, the layer-4 sweep); the others serve requests,
take server states from it and send it what they observe."""
