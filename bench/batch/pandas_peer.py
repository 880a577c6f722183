"""The pandas + scikit-learn peer: RandomForest (100 trees) on the same training rows, predict_proba in 100k-row chunks.

Reads the same rows from CSV (Debian has no pyarrow and fastparquet is not installed), writes id and
probability to CSV. Prints the scoring time (read + predict + write), training excluded.
"""
import sys, time
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

data_dir = sys.argv[1]
train = pd.read_csv(f"{data_dir}/train.csv")
clf = RandomForestClassifier(n_estimators=100, max_leaf_nodes=32, random_state=42, n_jobs=-1)
clf.fit(train[["f0", "f1", "f2"]], train["label"])

start = time.perf_counter()
rows = 0
with open(f"{data_dir}/pandas_out.csv", "w") as out:
    out.write("id,probability\n")
    for chunk in pd.read_csv(f"{data_dir}/data.csv", chunksize=100_000, dtype={"f0": "float32", "f1": "float32", "f2": "float32"}):
        p = clf.predict_proba(chunk[["f0", "f1", "f2"]])[:, 1]
        pd.DataFrame({"id": chunk["id"], "probability": p}).to_csv(out, header=False, index=False)
        rows += len(chunk)
seconds = time.perf_counter() - start
print(f"pandas: {rows} rows in {seconds:.2f} s = {rows / seconds:.0f} rows/s")
