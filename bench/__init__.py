"""Benchmarks of the service on this machine: `python -m bench` (see docs/benchmarks.md)."""
