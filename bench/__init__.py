"""Benchmarks: saga throughput and latency on the real stack, against a minimal raw chain (see README)."""
