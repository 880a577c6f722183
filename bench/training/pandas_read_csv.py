"""Times pandas.read_csv on a CSV file; prints JSON {rows, columns, seconds: [...], cpu_seconds: [...]} on stdout.

Usage: /usr/bin/python3 pandas_read_csv.py FILE.csv RUNS
Run by Kiln.Bench.Training in the same run as Kiln's reader (see docs/benchmarks.md, Training).
"""
import json
import sys
import time

import pandas as pd

path, runs = sys.argv[1], int(sys.argv[2])
seconds = []
cpu_seconds = []
rows = columns = 0
for _ in range(runs):
    start, start_cpu = time.perf_counter(), time.process_time()
    frame = pd.read_csv(path)
    seconds.append(time.perf_counter() - start)
    cpu_seconds.append(time.process_time() - start_cpu)
    rows, columns = frame.shape
    del frame
print(json.dumps({"rows": int(rows), "columns": int(columns), "seconds": seconds, "cpu_seconds": cpu_seconds, "pandas": pd.__version__}))
