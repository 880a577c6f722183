namespace Kiln.Testing;

/// <summary>ONNX models written by python3-onnx (not by Kiln), for tests that package and score them.</summary>
public static class OnnxFixtures
{
    /// <summary>
    /// Python that writes a logistic model p = sigmoid(X·w + b) with output "probabilities" [N, 2] (w = [0.8, −1.2, 0.3],
    /// b = 0.1) to <paramref name="modelPath"/>, and 50 reference rows a,b,c,label to <paramref name="referencePath"/>.
    /// It leaves <c>np</c>, <c>w</c> and <c>b</c> defined: append lines that compute the expected values.
    /// </summary>
    public static string LogisticModelPython(string modelPath, string referencePath) => $$"""
        import numpy as np, onnx
        from onnx import helper, TensorProto, numpy_helper
        w = np.array([[0.8], [-1.2], [0.3]], dtype=np.float32); b = np.array([0.1], dtype=np.float32)
        nodes = [helper.make_node('MatMul', ['X', 'W'], ['z0']), helper.make_node('Add', ['z0', 'B'], ['z']),
                 helper.make_node('Sigmoid', ['z'], ['p']), helper.make_node('Sub', ['one', 'p'], ['q']),
                 helper.make_node('Concat', ['q', 'p'], ['probabilities'], axis=1)]
        g = helper.make_graph(nodes, 'logit', [helper.make_tensor_value_info('X', TensorProto.FLOAT, [None, 3])],
            [helper.make_tensor_value_info('probabilities', TensorProto.FLOAT, [None, 2])],
            [numpy_helper.from_array(w, 'W'), numpy_helper.from_array(b, 'B'), numpy_helper.from_array(np.array([1], dtype=np.float32), 'one')])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 8
        onnx.checker.check_model(m); onnx.save(m, '{{modelPath}}')
        rng = np.random.default_rng(0); X = rng.normal(size=(50, 3)).astype(np.float32)
        np.savetxt('{{referencePath}}', np.c_[X, (X @ w + b > 0).astype(int)], delimiter=',', header='a,b,c,label', comments='', fmt='%.7g')

        """;
}
