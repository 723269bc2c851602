"""`python -m bench` (or `make bench`): every benchmark, one after the other."""

import sys

from bench import catalogue, serving, tonemap, transcode, uploads

if __name__ == "__main__":
    failures = 0
    for benchmark in (transcode, tonemap, serving, catalogue, uploads):
        failures += benchmark.main([]) != 0
        print()
    sys.exit(1 if failures else 0)
