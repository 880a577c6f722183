"""An independent oracle for Kiln's text embeddings.

Runs the same all-MiniLM-L6-v2 ONNX file that Kiln runs, but without ONNX Runtime and without the NuGet package's
tokenizer: python3-onnx only reads the graph and its weights, numpy (float64) evaluates each node, and the text is
tokenized by the BERT uncased WordPiece algorithm written out below from its published description (clean, split on
whitespace and punctuation, lower-case, strip accents, greedy longest-match word pieces with "##"). The embedding is
cut at 256 tokens, mean-pooled over the tokens and normalized to unit length, as sentence-transformers does for this model.

usage: minilm.py MODEL.onnx VOCAB.txt < texts.json   (a JSON list of strings) -> a JSON list of 384-float lists
"""
import json
import sys
import unicodedata

import numpy as np
import onnx
from onnx import numpy_helper
from scipy.special import erf


def load_vocab(path):
    with open(path, encoding="utf-8") as f:
        return {line.rstrip("\n"): i for i, line in enumerate(f)}


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_tokens(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\t\n\r"):
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif is_cjk(cp):
            out.append(" " + ch + " ")
        else:
            out.append(ch)
    tokens = []
    for word in "".join(out).split():
        word = unicodedata.normalize("NFD", word.lower())
        word = "".join(c for c in word if unicodedata.category(c) != "Mn")
        current = ""
        for ch in word:
            if is_punct(ch):
                if current:
                    tokens.append(current)
                tokens.append(ch)
                current = ""
            else:
                current += ch
        if current:
            tokens.append(current)
    return tokens


def wordpiece(word, vocab):
    if len(word) > 100:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                found = piece
                break
            end -= 1
        if found is None:
            return ["[UNK]"]
        pieces.append(found)
        start = end
    return pieces


def token_ids(text, vocab, max_len=256):
    pieces = [p for w in basic_tokens(text) for p in wordpiece(w, vocab)][: max_len - 2]
    return [vocab["[CLS]"]] + [vocab[p] for p in pieces] + [vocab["[SEP]"]]


def run_graph(model, feeds):
    env = {}
    for t in model.graph.initializer:
        a = numpy_helper.to_array(t)
        env[t.name] = a.astype(np.float64) if a.dtype == np.float32 else a
    env.update(feeds)
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        x = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Constant":
            a = numpy_helper.to_array(attrs["value"])
            y = a.astype(np.float64) if a.dtype == np.float32 else a
        elif op == "Shape":
            y = np.array(x[0].shape, dtype=np.int64)
        elif op == "Gather":
            y = np.take(x[0], x[1], axis=attrs.get("axis", 0))
        elif op == "Unsqueeze":
            y = x[0]
            rank = y.ndim + len(x[1])
            for ax in sorted(int(a) % rank for a in x[1]):
                y = np.expand_dims(y, ax)
        elif op == "Concat":
            y = np.concatenate(x, axis=attrs["axis"])
        elif op == "Reshape":
            shape = [x[0].shape[i] if s == 0 else int(s) for i, s in enumerate(x[1])]
            y = x[0].reshape(shape)
        elif op == "Transpose":
            y = np.transpose(x[0], attrs.get("perm"))
        elif op == "MatMul":
            y = np.matmul(x[0], x[1])
        elif op == "Gemm":
            a = x[0].T if attrs.get("transA", 0) else x[0]
            b = x[1].T if attrs.get("transB", 0) else x[1]
            y = attrs.get("alpha", 1.0) * (a @ b) + (attrs.get("beta", 1.0) * x[2] if len(x) > 2 else 0)
        elif op in ("Add", "Sub", "Mul", "Pow"):
            y = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Pow": np.power}[op](x[0], x[1])
        elif op == "Div":
            y = x[0] // x[1] if np.issubdtype(x[0].dtype, np.integer) else x[0] / x[1]
        elif op == "Sqrt":
            y = np.sqrt(x[0])
        elif op == "Erf":
            y = erf(x[0])
        elif op == "Tanh":
            y = np.tanh(x[0])
        elif op == "ReduceMean":
            y = np.mean(x[0], axis=tuple(attrs["axes"]), keepdims=bool(attrs.get("keepdims", 1)))
        elif op == "Softmax":
            axis = attrs.get("axis", -1)
            e = np.exp(x[0] - np.max(x[0], axis=axis, keepdims=True))
            y = e / np.sum(e, axis=axis, keepdims=True)
        elif op == "Cast":
            to = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[attrs["to"]]
            y = x[0].astype(np.float64 if to == np.float32 else to)
        elif op == "Slice":
            y = x[0]
            axes = x[3] if len(x) > 3 and x[3] is not None else range(len(x[1]))
            steps = x[4] if len(x) > 4 and x[4] is not None else [1] * len(x[1])
            index = [slice(None)] * y.ndim
            for s, e, a, st in zip(x[1], x[2], axes, steps):
                index[int(a)] = slice(int(s), int(e), int(st))
            y = y[tuple(index)]
        else:
            raise SystemExit(f"oracle: operator {op} is not implemented")
        env[node.output[0]] = y
    return env


def main():
    model = onnx.load(sys.argv[1])
    vocab = load_vocab(sys.argv[2])
    texts = json.load(sys.stdin)
    result = []
    for text in texts:
        ids = np.array([token_ids(text, vocab)], dtype=np.int64)
        env = run_graph(model, {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})
        hidden = env[model.graph.output[0].name][0]
        pooled = hidden.mean(axis=0)
        result.append((pooled / np.linalg.norm(pooled)).tolist())
    json.dump({"tokens": [token_ids(t, vocab) for t in texts], "embeddings": result}, sys.stdout)


if __name__ == "__main__":
    main()
