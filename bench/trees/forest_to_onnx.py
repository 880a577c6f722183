"""Writes the trees Kiln extracted from an ML.NET forest (JSON) as an ONNX TreeEnsembleRegressor graph.

Usage: forest_to_onnx.py FOREST.json OUT.onnx
Input X: float [N, F]; output Y: float [N, 1], the sum of the trees' leaf values (ML.NET's raw score before the
cast to float and the calibrator). Splits are BRANCH_LEQ (x <= threshold goes to the true branch, ML.NET's left).
"""
import json
import sys

import onnx
from onnx import TensorProto, helper

forest = json.load(open(sys.argv[1]))
attrs = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
                         "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
                         "target_treeids", "target_nodeids", "target_ids", "target_weights"]}
for t, tree in enumerate(forest["trees"]):
    n = len(tree["feature"])
    node_id = lambda c: c if c >= 0 else n + ~c  # internal nodes 0..n-1, leaf l is node n + l
    for i in range(n):
        attrs["nodes_treeids"].append(t); attrs["nodes_nodeids"].append(i)
        attrs["nodes_featureids"].append(tree["feature"][i]); attrs["nodes_values"].append(tree["threshold"][i])
        attrs["nodes_modes"].append("BRANCH_LEQ")
        attrs["nodes_truenodeids"].append(node_id(tree["left"][i])); attrs["nodes_falsenodeids"].append(node_id(tree["right"][i]))
        attrs["nodes_missing_value_tracks_true"].append(0)
    for l, v in enumerate(tree["leaves"]):
        attrs["nodes_treeids"].append(t); attrs["nodes_nodeids"].append(n + l)
        attrs["nodes_featureids"].append(0); attrs["nodes_values"].append(0.0); attrs["nodes_modes"].append("LEAF")
        attrs["nodes_truenodeids"].append(0); attrs["nodes_falsenodeids"].append(0); attrs["nodes_missing_value_tracks_true"].append(0)
        attrs["target_treeids"].append(t); attrs["target_nodeids"].append(n + l); attrs["target_ids"].append(0); attrs["target_weights"].append(v)

node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=1, aggregate_function="SUM", **attrs)
graph = helper.make_graph([node], "forest",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, forest["features"]])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, sys.argv[2])
