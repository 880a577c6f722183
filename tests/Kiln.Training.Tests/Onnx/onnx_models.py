"""ONNX models shaped the way skl2onnx writes them, built with onnx.helper from scikit-learn models fitted here.

Debian has no skl2onnx package, so the graphs are assembled by hand from the fitted estimators' coefficients with
the same operators skl2onnx emits (ai.onnx.ml LinearClassifier / LinearRegressor, OneHotEncoder, ZipMap, Cast,
Concat). The expected outputs are scikit-learn's own predict_proba / predict on the reference rows, computed
independently of ONNX Runtime and of Kiln.

usage: onnx_models.py OUTPUT_DIR   (writes NAME.onnx, NAME.csv (reference rows, with label) and NAME.expected.csv)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.linear_model import LinearRegression, LogisticRegression

out = sys.argv[1]
rng = np.random.default_rng(19)
ML = helper.make_opsetid('ai.onnx.ml', 1)


def save(name, graph, frame, expected, header):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13), ML])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, name + '.onnx'))
    with open(os.path.join(out, name + '.csv'), 'w') as f:
        f.write(','.join(frame.keys()) + '\n')
        for row in zip(*frame.values()):
            f.write(','.join(str(v) for v in row) + '\n')
    with open(os.path.join(out, name + '.expected.csv'), 'w') as f:
        f.write(header + '\n')
        for row in expected:
            f.write(','.join(repr(float(v)) for v in np.atleast_1d(row)) + '\n')


def zipmap_type(key_type):
    # seq(map(key_type, float)); onnx 1.12 (Debian's) has no make_map_type_proto.
    t = onnx.TypeProto()
    t.sequence_type.elem_type.map_type.key_type = key_type
    t.sequence_type.elem_type.map_type.value_type.tensor_type.elem_type = TensorProto.FLOAT
    return t


def binary_coefficients(lr):
    # LinearClassifier with two rows (-w, w) and LOGISTIC gives [1 - p, p] exactly as predict_proba does.
    w = lr.coef_[0]
    b = lr.intercept_[0]
    return np.r_[-w, w].astype(np.float32), np.array([-b, b], dtype=np.float32)


# 1. One packed [N, 3] float64 input (skl2onnx with a DoubleTensorType), a plain [N, 2] probability tensor.
n = 300
X = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, 1.0]
y = (X @ [1.5, -0.08, 4.0] + rng.normal(scale=0.5, size=n) > 0.0).astype(int)
lr = LogisticRegression(max_iter=1000).fit(X, y)
coef, intercepts = binary_coefficients(lr)
graph = helper.make_graph(
    [helper.make_node('LinearClassifier', ['input'], ['label', 'probabilities'], domain='ai.onnx.ml',
                      coefficients=coef, intercepts=intercepts, classlabels_ints=[0, 1], post_transform='LOGISTIC')],
    'double_packed',
    [helper.make_tensor_value_info('input', TensorProto.DOUBLE, [None, 3])],
    [helper.make_tensor_value_info('label', TensorProto.INT64, [None]),
     helper.make_tensor_value_info('probabilities', TensorProto.FLOAT, [None, 2])])
save('double_packed', graph, {'x1': X[:, 0], 'x2': X[:, 1], 'x3': X[:, 2], 'label': y},
     lr.predict_proba(X)[:, 1], 'p1')

# 2. Several named [N, 1] inputs of every kind (int64, float64, int32, bool, string) through a one-hot encoder,
#    a three-class multinomial model and skl2onnx's default ZipMap output (a sequence of string -> float maps).
n = 400
age = rng.integers(18, 80, size=n)
income = np.round(rng.gamma(4.0, 12.5, size=n), 3)
visits = rng.integers(0, 30, size=n).astype(np.int32)
member = rng.random(n) < 0.4
cities = np.array(['lyon', 'oslo', 'porto', 'turin'])
city = cities[rng.integers(0, 4, size=n)]
onehot = (city[:, None] == cities[None, :]).astype(float)
features = np.c_[age, income, visits, member.astype(float), onehot]
score = features @ [0.03, -0.02, 0.1, 1.0, 0.5, -0.5, 1.0, 0.0]
plan = np.where(score < np.quantile(score, 0.33), 'basic', np.where(score < np.quantile(score, 0.66), 'plus', 'pro'))
plan = np.where(rng.random(n) < 0.1, rng.choice(['basic', 'plus', 'pro'], size=n), plan)
lr = LogisticRegression(max_iter=5000).fit(features, plan)
nodes = [
    helper.make_node('Cast', ['age'], ['age_f'], to=TensorProto.FLOAT),
    helper.make_node('Cast', ['income'], ['income_f'], to=TensorProto.FLOAT),
    helper.make_node('Cast', ['visits'], ['visits_f'], to=TensorProto.FLOAT),
    helper.make_node('Cast', ['member'], ['member_f'], to=TensorProto.FLOAT),
    helper.make_node('OneHotEncoder', ['city'], ['city_3d'], domain='ai.onnx.ml', cats_strings=list(cities), zeros=1),
    helper.make_node('Reshape', ['city_3d', 'city_shape'], ['city_f']),
    helper.make_node('Concat', ['age_f', 'income_f', 'visits_f', 'member_f', 'city_f'], ['features'], axis=1),
    helper.make_node('LinearClassifier', ['features'], ['output_label', 'scores'], domain='ai.onnx.ml',
                     coefficients=lr.coef_.astype(np.float32).ravel(), intercepts=lr.intercept_.astype(np.float32),
                     classlabels_strings=list(lr.classes_), multi_class=1, post_transform='SOFTMAX'),
    helper.make_node('ZipMap', ['scores'], ['output_probability'], domain='ai.onnx.ml', classlabels_strings=list(lr.classes_)),
]
graph = helper.make_graph(
    nodes, 'named_zipmap',
    [helper.make_tensor_value_info('age', TensorProto.INT64, [None, 1]),
     helper.make_tensor_value_info('income', TensorProto.DOUBLE, [None, 1]),
     helper.make_tensor_value_info('visits', TensorProto.INT32, [None, 1]),
     helper.make_tensor_value_info('member', TensorProto.BOOL, [None, 1]),
     helper.make_tensor_value_info('city', TensorProto.STRING, [None, 1])],
    [helper.make_tensor_value_info('output_label', TensorProto.STRING, [None]),
     helper.make_value_info('output_probability', zipmap_type(TensorProto.STRING))],
    [numpy_helper.from_array(np.array([-1, len(cities)], dtype=np.int64), 'city_shape')])
save('named_zipmap', graph,
     {'age': age, 'income': income, 'visits': visits, 'member': member.astype(int), 'city': city, 'plan': plan},
     lr.predict_proba(features), ','.join(lr.classes_))

# 3. One packed [N, 3] int64 input and a ZipMap with int64 keys (classes 0 and 1), binary.
n = 250
X = rng.integers(0, 100, size=(n, 3))
y = (X @ [0.05, -0.03, 0.01] + rng.normal(scale=0.8, size=n) > 1.0).astype(int)
lr = LogisticRegression(max_iter=5000).fit(X, y)
coef, intercepts = binary_coefficients(lr)
graph = helper.make_graph(
    [helper.make_node('Cast', ['counts'], ['counts_f'], to=TensorProto.FLOAT),
     helper.make_node('LinearClassifier', ['counts_f'], ['output_label', 'scores'], domain='ai.onnx.ml',
                      coefficients=coef, intercepts=intercepts, classlabels_ints=[0, 1], post_transform='LOGISTIC'),
     helper.make_node('ZipMap', ['scores'], ['output_probability'], domain='ai.onnx.ml', classlabels_int64s=[0, 1])],
    'int_zipmap',
    [helper.make_tensor_value_info('counts', TensorProto.INT64, [None, 3])],
    [helper.make_tensor_value_info('output_label', TensorProto.INT64, [None]),
     helper.make_value_info('output_probability', zipmap_type(TensorProto.INT64))])
save('int_zipmap', graph, {'c1': X[:, 0], 'c2': X[:, 1], 'c3': X[:, 2], 'label': y}, lr.predict_proba(X)[:, 1], 'p1')

# 4. Regression: two named rank-1 float64 inputs, a float64 [N, 1] output (skl2onnx with double tensors).
n = 200
a = rng.normal(size=n)
b = rng.uniform(0, 5, size=n)
t = 3.0 * a - 1.25 * b + 0.5 + rng.normal(scale=0.1, size=n)
reg = LinearRegression().fit(np.c_[a, b], t)
graph = helper.make_graph(
    [helper.make_node('Unsqueeze', ['a', 'axis'], ['a2']), helper.make_node('Unsqueeze', ['b', 'axis'], ['b2']),
     helper.make_node('Concat', ['a2', 'b2'], ['ab'], axis=1), helper.make_node('MatMul', ['ab', 'W'], ['z']),
     helper.make_node('Add', ['z', 'B'], ['variable'])],
    'double_regression',
    [helper.make_tensor_value_info('a', TensorProto.DOUBLE, [None]), helper.make_tensor_value_info('b', TensorProto.DOUBLE, [None])],
    [helper.make_tensor_value_info('variable', TensorProto.DOUBLE, [None, 1])],
    [numpy_helper.from_array(reg.coef_.reshape(2, 1).astype(np.float64), 'W'),
     numpy_helper.from_array(np.array([reg.intercept_], dtype=np.float64), 'B'),
     numpy_helper.from_array(np.array([1], dtype=np.int64), 'axis')])
save('double_regression', graph, {'a': a, 'b': b, 'target': t}, reg.predict(np.c_[a, b]), 'prediction')

# 5. An input Kiln cannot feed: a float16 tensor.
graph = helper.make_graph(
    [helper.make_node('Cast', ['half'], ['h'], to=TensorProto.FLOAT),
     helper.make_node('Concat', ['h', 'h'], ['probabilities'], axis=1)],
    'float16_input',
    [helper.make_tensor_value_info('half', TensorProto.FLOAT16, [None, 1])],
    [helper.make_tensor_value_info('probabilities', TensorProto.FLOAT, [None, 2])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
model.ir_version = 8
onnx.save(model, os.path.join(out, 'float16_input.onnx'))
