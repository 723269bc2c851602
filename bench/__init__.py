"""Benchmarks: side-by-side measurements printed as tables (`make bench`, or `python -m bench.NAME`)."""
