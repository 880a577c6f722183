#!/usr/bin/env python3
"""Writes churn.csv and churn.onnx: a small churn classifier trained outside Kiln, to wrap as a package.

The data is synthetic and deterministic (fixed seed). The model is scikit-learn's LogisticRegression,
written as a plain ONNX graph (MatMul, Add, Sigmoid) with python3-onnx, so nothing beyond Debian's
python3-sklearn and python3-onnx is needed:

    python3 generate.py            # rewrites churn.csv and churn.onnx beside this file

The graph takes one float input X [N, 3] (tenure_months, monthly_charges, support_calls, in that
order) and returns probabilities [N, 2] (stay, churn). Wrap it with:

    ./kiln package onnx examples/onnx/churn.onnx --name churn --reference examples/onnx/churn.csv \
        --label churned --features tenure_months,monthly_charges,support_calls --classes stay,churn
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.linear_model import LogisticRegression

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261206)
n = 2000
tenure = rng.integers(1, 73, n).astype(np.float32)
charges = np.round(rng.uniform(20, 120, n), 2).astype(np.float32)
calls = rng.poisson(1.5, n).astype(np.float32)
z = -1.0 - 0.06 * tenure + 0.02 * charges + 0.45 * calls
churned = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
X = np.c_[tenure, charges, calls]

with open(os.path.join(here, "churn.csv"), "w", encoding="utf-8") as f:
    f.write("tenure_months,monthly_charges,support_calls,churned\n")
    for row, y in zip(X, churned):
        f.write(f"{int(row[0])},{row[1]:.2f},{int(row[2])},{y}\n")

clf = LogisticRegression(max_iter=1000).fit(X, churned)
w = clf.coef_.astype(np.float32).reshape(3, 1)
b = clf.intercept_.astype(np.float32)
nodes = [
    helper.make_node("MatMul", ["X", "W"], ["z0"]),
    helper.make_node("Add", ["z0", "B"], ["z"]),
    helper.make_node("Sigmoid", ["z"], ["p"]),
    helper.make_node("Sub", ["one", "p"], ["q"]),
    helper.make_node("Concat", ["q", "p"], ["probabilities"], axis=1),
]
graph = helper.make_graph(
    nodes, "churn_logistic",
    [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
    [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
    [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B"),
     numpy_helper.from_array(np.array([1], dtype=np.float32), "one")])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="scikit-learn via examples/onnx/generate.py")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, os.path.join(here, "churn.onnx"))
print(f"churn.onnx: train accuracy {clf.score(X, churned):.3f}; churn rate {churned.mean():.3f}")
