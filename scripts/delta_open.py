# Opens a Delta table with the `deltalake` package (delta-rs) five times and prints the best
# time: what an analyst waits for before a query (docs/BENCHMARKS.md, "Checkpoints").
# Usage: target/test-venv/bin/python scripts/delta_open.py <table directory>
import sys, time
from deltalake import DeltaTable
best = None
for _ in range(5):
    t = time.perf_counter()
    dt = DeltaTable(sys.argv[1])
    n = len(dt.file_uris())
    e = time.perf_counter() - t
    best = e if best is None else min(best, e)
print(f"{sys.argv[1]}: version {dt.version()}, {n} files, best of 5 open {best*1000:.0f} ms")
