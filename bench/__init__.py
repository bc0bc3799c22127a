"""Benchmarks at real size (see docs/benchmarks.md)."""
