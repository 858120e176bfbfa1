"""One contract suite per storage port (chalicelib/service/ports.py), run against every adapter."""
