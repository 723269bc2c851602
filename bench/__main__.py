"""`python -m bench` (or `make bench`): every benchmark, one after the other."""

import sys

from bench import catalogue, serving, transcode, uploads

if __name__ == "__main__":
    failures = 0
    for benchmark in (transcode, serving, catalogue, uploads):
        failures += benchmark.main([]) != 0
        print()
    sys.exit(1 if failures else 0)
