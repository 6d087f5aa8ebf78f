"""Benchmarks: saga throughput and latency on the real stack, against a raw chain (bench/README.md)."""
