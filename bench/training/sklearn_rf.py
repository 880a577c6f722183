"""The seed article's model in scikit-learn, timed: prints JSON on stdout.

Usage: /usr/bin/python3 sklearn_rf.py TRAIN.csv TEST.csv RUNS
Fits make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=100, max_depth=10,
random_state=42)) on TRAIN (label column 'target'), RUNS times, and scores TEST: the same rows
Kiln's holdout uses (Kiln.Bench.Training writes both files).
"""
import json
import sys
import time

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

train_path, test_path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
train = pd.read_csv(train_path)
test = pd.read_csv(test_path)
X_train, y_train = train.drop("target", axis=1), train["target"]
X_test, y_test = test.drop("target", axis=1), test["target"]

fit_seconds = []
fit_cpu_seconds = []
pipeline = None
for _ in range(runs):
    pipeline = make_pipeline(
        StandardScaler(),
        RandomForestClassifier(n_estimators=100, max_depth=10, random_state=42),
    )
    start, start_cpu = time.perf_counter(), time.process_time()
    pipeline.fit(X_train, y_train)
    fit_seconds.append(time.perf_counter() - start)
    fit_cpu_seconds.append(time.process_time() - start_cpu)

start = time.perf_counter()
predicted = pipeline.predict(X_test)
probability = pipeline.predict_proba(X_test)[:, 1]
predict_seconds = time.perf_counter() - start
forest = pipeline[-1]
leaves = [t.get_n_leaves() for t in forest.estimators_]
depths = [t.get_depth() for t in forest.estimators_]
print(json.dumps({
    "sklearn": sklearn.__version__,
    "train_rows": int(len(train)),
    "test_rows": int(len(test)),
    "fit_seconds": fit_seconds,
    "fit_cpu_seconds": fit_cpu_seconds,
    "predict_seconds": predict_seconds,
    "accuracy": float(accuracy_score(y_test, predicted)),
    "auc": float(roc_auc_score(y_test, probability)),
    "log_loss": float(log_loss(y_test, probability)),
    "positive_rate_test": float(np.mean(y_test)),
    "leaves_mean": float(np.mean(leaves)),
    "leaves_max": int(np.max(leaves)),
    "depth_max": int(np.max(depths)),
}))
