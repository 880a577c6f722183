"""Trains a scikit-learn tree ensemble and writes it as an ONNX TreeEnsemble graph with python3-onnx's helper
(skl2onnx is not installed here, so the conversion is spelled out below, in skl2onnx's conventions).

Usage: sklearn_trees_to_onnx.py KIND OUT_DIR [TRAIN_ROWS] [TREES] [MAX_DEPTH]
KIND: rf-binary, rf-multiclass, rf-regression, gb-binary, gb-multiclass, gb-regression.
Writes OUT_DIR/model.onnx and OUT_DIR/test.csv (f0..f3 and scikit-learn's own answers: p0..pK-1 from
predict_proba for classifiers, y from predict for regressors), 2,000 fresh rows without missing values.

To exercise every comparison mode on a real model, each split "x <= t" is written in one of four equivalent forms
for a number x (the children swapped where the test is negated): BRANCH_LEQ t, BRANCH_LT next_up(t),
BRANCH_GT t, BRANCH_GTE next_up(t). Each split also gets a random nodes_missing_value_tracks_true, as a model trained
with missing values carries; scikit-learn 1.2's forests take no NaN, so rows with NaN are compared with ONNX Runtime only.
Graph shapes: rf-binary and gb-multiclass end in a ZipMap (skl2onnx's default), gb-binary takes float64 input
through a Cast, rf-regression averages (aggregate_function AVERAGE).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier,
                              RandomForestRegressor)

kind, out = sys.argv[1], sys.argv[2]
train_rows = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
n_trees = int(sys.argv[4]) if len(sys.argv) > 4 else 30
max_depth = int(sys.argv[5]) if len(sys.argv) > 5 else 8
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(17)
F = 4


def make(n):
    X = rng.normal(size=(n, F)).astype(np.float32)
    X[:, 3] = rng.integers(0, 5, size=n)  # a small integer feature: many rows sit exactly on thresholds' neighbours
    z = 1.2 * X[:, 0] - 0.8 * X[:, 1] * X[:, 2] + 0.3 * X[:, 3]
    return X, z


X, z = make(train_rows)
family, task = kind.split("-")
if task == "binary":
    y = (z + rng.normal(scale=0.5, size=len(z)) > 0.4).astype(int)
elif task == "multiclass":
    y = np.digitize(z + rng.normal(scale=0.5, size=len(z)), [-0.5, 0.5, 1.5])
else:
    y = z + rng.normal(scale=0.3, size=len(z))
classifier = task != "regression"
if family == "rf":
    model = (RandomForestClassifier if classifier else RandomForestRegressor)(n_estimators=n_trees, max_depth=max_depth, random_state=0)
else:
    model = (GradientBoostingClassifier if classifier else GradientBoostingRegressor)(n_estimators=n_trees, max_depth=max_depth, learning_rate=0.2, random_state=0)
model.fit(X, y)
classes = list(model.classes_) if classifier else []
K = len(classes)

nodes = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
                         "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true"]}
prefix = "class_" if classifier else "target_"
weights = {prefix + k: [] for k in ["treeids", "nodeids", "ids", "weights"]}


def add_tree(t, tree, leaf_weights):
    """leaf_weights(node) -> [(target, weight)] for a leaf."""
    for i in range(tree.node_count):
        nodes["nodes_treeids"].append(t)
        nodes["nodes_nodeids"].append(i)
        left, right = int(tree.children_left[i]), int(tree.children_right[i])
        if left < 0:
            for name, v in [("featureids", 0), ("values", 0.0), ("modes", "LEAF"), ("truenodeids", 0), ("falsenodeids", 0), ("missing_value_tracks_true", 0)]:
                nodes["nodes_" + name].append(v)
            for target, w in leaf_weights(i):
                weights[prefix + "treeids"].append(t)
                weights[prefix + "nodeids"].append(i)
                weights[prefix + "ids"].append(target)
                weights[prefix + "weights"].append(w)
            continue
        thr = np.float32(tree.threshold[i])
        up = np.nextafter(thr, np.float32(np.inf), dtype=np.float32)
        form = rng.integers(0, 4)
        mode, value, yes, no = [("BRANCH_LEQ", thr, left, right), ("BRANCH_LT", up, left, right),
                                ("BRANCH_GT", thr, right, left), ("BRANCH_GTE", up, right, left)][form]
        nodes["nodes_featureids"].append(int(tree.feature[i]))
        nodes["nodes_values"].append(float(value))
        nodes["nodes_modes"].append(mode)
        nodes["nodes_truenodeids"].append(int(yes))
        nodes["nodes_falsenodeids"].append(int(no))
        nodes["nodes_missing_value_tracks_true"].append(int(rng.integers(0, 2)))


base_values = None
post = "NONE"
if family == "rf":
    for t, est in enumerate(model.estimators_):
        v = est.tree_.value
        if classifier:
            add_tree(t, est.tree_, lambda i: [(k, float(v[i][0][k] / v[i][0].sum() / n_trees)) for k in range(K)])
        else:
            add_tree(t, est.tree_, lambda i: [(0, float(v[i][0][0]))])
else:
    lr = model.learning_rate
    init = model._raw_predict_init(X[:1])[0]
    columns = model.estimators_.shape[1]
    for t in range(model.estimators_.shape[0]):
        for k in range(columns):
            tree = model.estimators_[t, k].tree_
            v = tree.value
            add_tree(t * columns + k, tree, lambda i, k=k: [(k, float(v[i][0][0] * lr))])
    base_values = [float(b) for b in init]
    if classifier:
        post = "LOGISTIC" if K == 2 else "SOFTMAX"

double_input = kind == "gb-binary"
graph_nodes = []
source = "X"
if double_input:
    graph_nodes.append(helper.make_node("Cast", ["X"], ["Xf"], to=TensorProto.FLOAT))
    source = "Xf"
attrs = dict(nodes)
attrs.update(weights)
attrs["post_transform"] = post
if base_values is not None:
    attrs["base_values"] = base_values
zipmap = kind in ("rf-binary", "gb-multiclass")
if classifier:
    graph_nodes.append(helper.make_node("TreeEnsembleClassifier", [source], ["label", "probabilities"], domain="ai.onnx.ml",
                                        classlabels_int64s=[int(c) for c in classes], **attrs))
    if zipmap:
        graph_nodes.append(helper.make_node("ZipMap", ["probabilities"], ["output_probability"], domain="ai.onnx.ml",
                                            classlabels_int64s=[int(c) for c in classes]))
        map_type = onnx.TypeProto()  # seq(map(int64, float)); onnx 1.12's helper has no make_map_type_proto
        map_type.map_type.key_type = TensorProto.INT64
        map_type.map_type.value_type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT, []))
        outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                   helper.make_value_info("output_probability", helper.make_sequence_type_proto(map_type))]
    else:
        outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                   helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, K])]
else:
    attrs["aggregate_function"] = "AVERAGE" if family == "rf" else "SUM"
    graph_nodes.append(helper.make_node("TreeEnsembleRegressor", [source], ["variable"], domain="ai.onnx.ml", n_targets=1, **attrs))
    outputs = [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])]
graph = helper.make_graph(graph_nodes, kind, [helper.make_tensor_value_info("X", TensorProto.DOUBLE if double_input else TensorProto.FLOAT, [None, F])], outputs)
m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)])
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, os.path.join(out, "model.onnx"))

Xt, _ = make(2000)
if classifier:
    answers = model.predict_proba(Xt)
    header = ",".join([f"f{i}" for i in range(F)] + [f"p{k}" for k in range(K)])
else:
    answers = model.predict(Xt).reshape(-1, 1)
    header = ",".join([f"f{i}" for i in range(F)] + ["y"])
np.savetxt(os.path.join(out, "test.csv"), np.c_[Xt.astype(np.float64), answers], delimiter=",", header=header, comments="", fmt="%.9g")
print(f"{kind}: {K or 1} outputs, {len(nodes['nodes_treeids'])} nodes")
