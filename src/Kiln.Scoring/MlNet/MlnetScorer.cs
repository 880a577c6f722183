using System.Collections.Concurrent;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring.Trees;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace Kiln.Scoring.MlNet;

/// <summary>
/// Scores an ML.NET package without compile-time types: the saved pipeline is bound once to a
/// row mapper, and each engine feeds one mutable input row through it, as PredictionEngine does,
/// so a prediction costs no reflection and no per-row allocation beyond the outputs. When the predictor is a tree
/// ensemble Kiln can evaluate (<see cref="MlnetTreeModel"/>), only the transforms before the trees run through ML.NET;
/// the trees run in Kiln's <see cref="PackedForest"/> over blocks of rows, with the same results to the bit
/// (docs/serving.md#tree-ensembles). <c>KILN_TREE_EVALUATOR=mlnet</c> turns that off.
/// </summary>
public sealed class MlnetScorer : IScorer
{
    /// <summary>The environment variable that picks the tree evaluator: <c>kiln</c> (the default) or <c>mlnet</c>.</summary>
    public const string TreeEvaluatorVariable = "KILN_TREE_EVALUATOR";

    private readonly ITransformer _model;
    private readonly DataViewSchema _inputSchema;
    private readonly ConcurrentBag<Engine> _engines = [];
    private readonly ConcurrentBag<TreeEngine> _treeEngines = [];
    private readonly MlnetTreeModel? _trees;
    private readonly string[] _classLabels;

    /// <summary>The tree engines' direct read of their features (TreeEngine.DirectFeatures), worked out once by the first.</summary>
    private (int[] Inputs, float[] Fill)? _directPlan;
    private bool _directPlanned;

    /// <param name="treeEvaluator"><c>kiln</c> or <c>mlnet</c>; null reads <see cref="TreeEvaluatorVariable"/>.</param>
    public MlnetScorer(ModelPackage package, string? treeEvaluator = null)
    {
        Package = package;
        var ml = new MLContext(seed: 0);
        ml.ComponentCatalog.RegisterAssembly(typeof(Microsoft.ML.Trainers.FastTree.FastTreeBinaryTrainer).Assembly);
        ml.ComponentCatalog.RegisterAssembly(typeof(Microsoft.ML.Trainers.LightGbm.LightGbmBinaryTrainer).Assembly);
        try
        {
            using var stream = File.OpenRead(package.ModelPath);
            _model = ml.Model.Load(stream, out _inputSchema);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or InvalidDataException or ArgumentException)
        {
            throw new KilnException($"{package.ModelPath}: cannot load the ML.NET model ({e.Message})", e);
        }
        _classLabels = [.. package.Signature.ClassLabels ?? []];
        foreach (var input in package.Signature.Inputs)
        {
            if (_inputSchema.GetColumnOrNull(input.Name) is null)
                throw new KilnException($"{package.ModelPath}: the model has no input column '{input.Name}' that the signature names");
        }
        _engines.Add(new Engine(this)); // bind once now, so a broken model fails at load, not at the first request

        if (ChooseTreeEvaluator(treeEvaluator) == "mlnet")
        {
            TreeEvaluator = "mlnet";
            TreeEvaluatorReason = $"{TreeEvaluatorVariable}=mlnet";
        }
        else
        {
            MlnetTreeModel? trees;
            string reason;
            string? mismatch;
            try
            {
                trees = MlnetTreeModel.TryCreate(_model, _inputSchema, package.Signature.Task, out reason);
                mismatch = trees?.Verify(ml, classLabels: _classLabels);
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or NotSupportedException)
            {
                // ML.NET refusing to split or re-run the model is a reason to leave it whole, not to fail the load.
                (trees, reason, mismatch) = (null, $"ML.NET could not split the model ({e.Message})", null);
            }
            if (trees is not null && mismatch is null)
            {
                _trees = trees;
                TreeEvaluator = "kiln";
                TreeEvaluatorReason = trees.Describe();
                _treeEngines.Add(new TreeEngine(this, trees));
            }
            else
            {
                TreeEvaluator = "mlnet";
                TreeEvaluatorReason = mismatch is null ? reason : $"Kiln's evaluator disagrees with ML.NET on this model ({mismatch})";
            }
        }
    }

    public ModelPackage Package { get; }

    /// <summary>Whether Kiln's evaluator reads the trees' features straight from numeric input columns, without ML.NET's
    /// per-row prefix (a missing-value replacement and a concatenation only: TreeEngine.DirectFeatures).</summary>
    internal bool ReadsFeaturesDirectly => _directPlan is not null;

    /// <summary>
    /// <c>kiln</c> or <c>mlnet</c>: <paramref name="treeEvaluator"/>, else <see cref="TreeEvaluatorVariable"/>, else <c>kiln</c>;
    /// a KilnException for any other value. <c>mlnet</c> also sends ONNX tree ensembles back to ONNX Runtime.
    /// </summary>
    public static string ChooseTreeEvaluator(string? treeEvaluator)
    {
        var choice = (treeEvaluator ?? Environment.GetEnvironmentVariable(TreeEvaluatorVariable))?.Trim().ToLowerInvariant();
        if (choice is not (null or "" or "kiln" or "mlnet"))
            throw new KilnException($"{TreeEvaluatorVariable}='{choice}': expected 'kiln' (the default) or 'mlnet'");
        return choice == "mlnet" ? "mlnet" : "kiln";
    }

    /// <summary>Who evaluates the model's trees: <c>kiln</c> (Kiln's packed forest) or <c>mlnet</c> (the whole pipeline in ML.NET).</summary>
    public string TreeEvaluator { get; }

    /// <summary>Why <see cref="TreeEvaluator"/> is what it is, in a few words.</summary>
    public string TreeEvaluatorReason { get; }

    public void Score(DataTable input, int start, Span<Prediction> results)
    {
        if (_trees is not null)
        {
            if (!_treeEngines.TryTake(out var treeEngine)) treeEngine = new TreeEngine(this, _trees);
            try
            {
                treeEngine.Score(input, start, results);
            }
            finally
            {
                treeEngine.Unbind();
                _treeEngines.Add(treeEngine);
            }
            return;
        }
        if (!_engines.TryTake(out var engine)) engine = new Engine(this);
        try
        {
            engine.Bind(input);
            for (var i = 0; i < results.Length; i++) results[i] = engine.Predict(start + i);
        }
        finally
        {
            engine.Unbind();
            _engines.Add(engine);
        }
    }

    public void Dispose() => (_model as IDisposable)?.Dispose();

    /// <summary>One input row bound to the model's outputs; used by one thread at a time.</summary>
    private sealed class Engine
    {
        private readonly MlnetScorer _owner;
        private readonly InputRow _row;
        private readonly ValueGetter<bool>? _predictedBool;
        private readonly ValueGetter<ReadOnlyMemory<char>>? _predictedText;
        private readonly ValueGetter<float>? _probability;
        private readonly ValueGetter<float>? _score;
        private readonly ValueGetter<VBuffer<float>>? _scores;
        private VBuffer<float> _scoreBuffer;

        public Engine(MlnetScorer owner)
        {
            _owner = owner;
            _row = new InputRow(owner._inputSchema);
            var mapper = owner._model.GetRowToRowMapper(owner._inputSchema);
            var output = mapper.GetRow(_row, mapper.OutputSchema);
            var schema = output.Schema;
            var task = owner.Package.Signature.Task;
            if (schema.GetColumnOrNull("PredictedLabel") is { } pl)
            {
                if (pl.Type is BooleanDataViewType) _predictedBool = output.GetGetter<bool>(pl);
                else if (pl.Type is TextDataViewType) _predictedText = output.GetGetter<ReadOnlyMemory<char>>(pl);
            }
            if (schema.GetColumnOrNull("Probability") is { } p && p.Type is NumberDataViewType) _probability = output.GetGetter<float>(p);
            if (schema.GetColumnOrNull("Score") is { } s)
            {
                if (s.Type is VectorDataViewType) _scores = output.GetGetter<VBuffer<float>>(s);
                else _score = output.GetGetter<float>(s);
            }
            if (task == ModelTask.Regression && _score is null) throw new KilnException($"{owner.Package.ModelPath}: the model has no Score output");
            if (task == ModelTask.Binary && _predictedBool is null) throw new KilnException($"{owner.Package.ModelPath}: the binary model has no boolean PredictedLabel output");
            if (task == ModelTask.Multiclass && (_predictedText is null || _scores is null)) throw new KilnException($"{owner.Package.ModelPath}: the multiclass model lacks PredictedLabel or Score outputs");
        }

        public void Bind(DataTable table) => _row.Bind(table, _owner.Package.Signature);

        public void Unbind() => _row.Unbind();

        public Prediction Predict(int row)
        {
            _row.MoveTo(row);
            var labels = _owner._classLabels;
            switch (_owner.Package.Signature.Task)
            {
                case ModelTask.Regression:
                {
                    var v = 0f;
                    _score!(ref v);
                    return new Prediction(null, v);
                }
                case ModelTask.Binary:
                {
                    var positive = false;
                    _predictedBool!(ref positive);
                    var p = 0f;
                    if (_probability is not null) _probability(ref p);
                    else if (_score is not null) { _score(ref p); p = 1f / (1f + MathF.Exp(-p)); }
                    return new Prediction(labels.Length == 2 ? labels[positive ? 1 : 0] : (positive ? "true" : "false"), p);
                }
                default:
                {
                    var text = default(ReadOnlyMemory<char>);
                    _predictedText!(ref text);
                    _scores!(ref _scoreBuffer);
                    var probabilities = new float[_scoreBuffer.Length];
                    _scoreBuffer.CopyTo(probabilities);
                    var max = 0f;
                    foreach (var q in probabilities) max = Math.Max(max, q);
                    return new Prediction(text.ToString(), max, probabilities);
                }
            }
        }
    }

    /// <summary>
    /// The transforms before the trees, row by row through ML.NET, into a block of feature rows; then the block
    /// through Kiln's forest; then ML.NET's score, label and probability formulas. Used by one thread at a time.
    /// </summary>
    private sealed class TreeEngine
    {
        private readonly int _blockRows;
        private readonly MlnetScorer _owner;
        private readonly MlnetTreeModel _trees;
        private readonly InputRow _row;
        private readonly ValueGetter<VBuffer<float>> _features;
        private readonly RowBlock _block;
        private readonly double[] _sums;
        private readonly double[][] _classSums;
        private readonly double[] _rowSums;
        private VBuffer<float> _buffer;

        public TreeEngine(MlnetScorer owner, MlnetTreeModel trees)
        {
            _owner = owner;
            _trees = trees;
            _row = new InputRow(owner._inputSchema);
            var mapper = trees.Prefix.GetRowToRowMapper(owner._inputSchema);
            var column = mapper.OutputSchema[trees.FeaturesColumn];
            var output = mapper.GetRow(_row, [column]);
            _features = output.GetGetter<VBuffer<float>>(column);
            // Tree by tree over as many rows as fit in about 256 KB: each tree is read from memory once per block, so a
            // large block matters more than anything else for a big forest (4,096 rows of 3 features measured 2x 256).
            _blockRows = Math.Clamp(256 * 1024 / (4 * (trees.Ensemble.FeatureCount + 1)), 64, 4096);
            _block = new RowBlock(trees.Ensemble.FeatureCount, _blockRows);
            _sums = new double[_blockRows];
            _classSums = [.. trees.Classes.Select(_ => new double[_blockRows])];
            _rowSums = new double[trees.Classes.Count];
            // The first engine (made by the scorer's constructor) works the plan out; the others take it.
            if (!owner._directPlanned)
            {
                owner._directPlan = DirectFeatures();
                owner._directPlanned = true;
            }
            _direct = owner._directPlan;
        }

        /// <summary>
        /// For each slot of the trees' feature vector, the input it is read from and the value that replaces a missing
        /// one, when ML.NET's prefix does no more than that (<see cref="DirectFeatures"/>); null: the prefix runs per row.
        /// </summary>
        private readonly (int[] Inputs, float[] Fill)? _direct;

        /// <summary>
        /// Kiln's trainer puts a missing-value replacement (a constant per column) and a concatenation of the numeric
        /// inputs before the trees (and, for multiclass, the label's mapping to keys, which scoring does not read). When
        /// the prefix is made of those transforms only and every input is numeric, the
        /// feature vector is read straight from the input columns: slot k is input Inputs[k] as a float, NaN replaced
        /// by Fill[k]. Which input goes to which slot, and the fills, are read from the prefix itself on probe rows (input
        /// j = j + 1; all missing), and the plan is then checked against the prefix on 256 rows of awkward values (NaN,
        /// ±0, ±∞, subnormal, huge, negative): any difference in any bit and the prefix keeps running per row.
        /// </summary>
        private (int[] Inputs, float[] Fill)? DirectFeatures()
        {
            var inputs = _owner.Package.Signature.Inputs;
            if (_trees.Prefix is not IEnumerable<ITransformer> chain
                || !chain.All(t => t is MissingValueReplacingTransformer or ColumnConcatenatingTransformer or ValueToKeyMappingTransformer)
                || inputs.Count == 0 || inputs.Any(i => i.Type != Kiln.Core.Profiling.ColumnKind.Numeric))
            {
                return null;
            }
            var width = _trees.Ensemble.FeatureCount;
            var rng = new Random(17);
            float[] awkward = [float.NaN, 0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, -1e-40f, 3.4e38f, -7.25f, 1f];
            const int Probes = 2 + 256;
            var columns = inputs.Select((input, j) =>
            {
                var values = new double[Probes];
                values[0] = j + 1;
                values[1] = double.NaN;
                for (var r = 2; r < Probes; r++) values[r] = rng.Next(3) == 0 ? awkward[rng.Next(awkward.Length)] : (rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-3, 6));
                return new NumericColumn(input.Name, values);
            }).ToArray();
            var probe = new DataTable(Probes);
            foreach (var c in columns) probe.Add(c);
            var expected = new float[Probes][];
            _row.Bind(probe, _owner.Package.Signature);
            try
            {
                for (var r = 0; r < Probes; r++)
                {
                    _row.MoveTo(r);
                    _features(ref _buffer);
                    if (_buffer.Length != width) return null;
                    expected[r] = new float[width];
                    _buffer.CopyTo(expected[r]);
                }
            }
            finally
            {
                _row.Unbind();
            }
            var map = new int[width];
            var fill = new float[width];
            for (var k = 0; k < width; k++)
            {
                map[k] = Array.FindIndex(columns, c => expected[0][k] == (float)c.Values[0]);
                if (map[k] < 0) return null;
                fill[k] = expected[1][k];
            }
            for (var r = 0; r < Probes; r++)
            {
                for (var k = 0; k < width; k++)
                {
                    var v = (float)columns[map[k]].Values[r];
                    if (float.IsNaN(v)) v = fill[k];
                    if (BitConverter.SingleToInt32Bits(v) != BitConverter.SingleToInt32Bits(expected[r][k]) && !(float.IsNaN(v) && float.IsNaN(expected[r][k]))) return null;
                }
            }
            return (map, fill);
        }

        /// <summary>The input columns of each feature slot when the plan applies and all of them are numeric in this
        /// table (the engine's own array, one call at a time); otherwise null, and the prefix runs per row.</summary>
        private double[][]? DirectColumns(DataTable input)
        {
            if (_direct is not { } plan) return null;
            var inputs = _owner.Package.Signature.Inputs;
            _directColumns ??= new double[plan.Inputs.Length][];
            for (var k = 0; k < _directColumns.Length; k++)
            {
                if (input.Find(inputs[plan.Inputs[k]].Name) is not NumericColumn n) return null;
                _directColumns[k] = n.Values;
            }
            return _directColumns;
        }

        private double[][]? _directColumns;

        public void Unbind()
        {
            _row.Unbind();
            if (_directColumns is not null) Array.Clear(_directColumns);
        }

        public void Score(DataTable input, int start, Span<Prediction> results)
        {
            var direct = DirectColumns(input);
            if (direct is null) _row.Bind(input, _owner.Package.Signature);
            var forest = _trees.Forest;
            var labels = _owner._classLabels;
            for (var b = 0; b < results.Length; b += _blockRows)
            {
                var count = Math.Min(_blockRows, results.Length - b);
                if (direct is not null) ReadDirectly(direct, start + b, count);
                else ReadThroughPrefix(start + b, count);
                if (_trees.Task == ModelTask.Multiclass)
                {
                    ScoreClasses(count, results[b..]);
                    continue;
                }
                forest.Sum(_block.Data, count, _sums);
                for (var i = 0; i < count; i++)
                {
                    var score = _trees.Score(_sums[i]);
                    if (_trees.Task == ModelTask.Regression)
                    {
                        results[b + i] = new Prediction(null, score);
                        continue;
                    }
                    var positive = _trees.Label(score);
                    results[b + i] = new Prediction(labels.Length == 2 ? labels[positive ? 1 : 0] : (positive ? "true" : "false"), _trees.Probability(score));
                }
            }
        }

        /// <summary>Fills the block's first <paramref name="count"/> rows from input rows <paramref name="first"/>… with the plan (<see cref="DirectFeatures"/>).</summary>
        private void ReadDirectly(double[][] columns, int first, int count)
        {
            var fill = _direct!.Value.Fill;
            for (var i = 0; i < count; i++)
            {
                var row = _block.Row(i);
                for (var k = 0; k < row.Length; k++)
                {
                    var v = (float)columns[k][first + i];
                    row[k] = float.IsNaN(v) ? fill[k] : v;
                }
            }
        }

        /// <summary>Fills the block's first <paramref name="count"/> rows from input rows <paramref name="first"/>… through ML.NET's prefix, row by row.</summary>
        private void ReadThroughPrefix(int first, int count)
        {
            for (var i = 0; i < count; i++)
            {
                _row.MoveTo(first + i);
                _features(ref _buffer);
                var row = _block.Row(i);
                if (_buffer.IsDense) _buffer.GetValues().CopyTo(row);
                else
                {
                    row.Clear();
                    var indices = _buffer.GetIndices();
                    var values = _buffer.GetValues();
                    for (var k = 0; k < indices.Length; k++) row[indices[k]] = values[k];
                }
            }
        }

        /// <summary>Multiclass: each class's forest over the block, then ML.NET's formula, label and value per row.</summary>
        private void ScoreClasses(int count, Span<Prediction> results)
        {
            var classes = _trees.Classes;
            for (var c = 0; c < classes.Count; c++) classes[c].Forest.Sum(_block.Data, count, _classSums[c]);
            var labels = _owner._classLabels;
            for (var i = 0; i < count; i++)
            {
                for (var c = 0; c < classes.Count; c++) _rowSums[c] = _classSums[c][i];
                var probabilities = new float[classes.Count];
                _trees.ClassScores(_rowSums, probabilities);
                // As the ML.NET path reports it: the class's label, and the largest score (at least 0).
                var max = 0f;
                foreach (var q in probabilities) max = Math.Max(max, q);
                results[i] = new Prediction(labels[MlnetTreeModel.ArgMax(probabilities)], max, probabilities);
            }
        }
    }

    /// <summary>A mutable row over one row of a bound table; the label column (if the schema has one) reads as its default.</summary>
    private sealed class InputRow : DataViewRow
    {
        private readonly DataViewSchema _schema;
        private readonly double[]?[] _numeric;
        private readonly string?[]?[] _text;
        private long _position = -1;
        private int _row;

        public InputRow(DataViewSchema schema)
        {
            _schema = schema;
            _numeric = new double[schema.Count][];
            _text = new string?[schema.Count][];
        }

        public override long Position => _position;

        public override long Batch => 0;

        public override DataViewSchema Schema => _schema;

        public void Bind(DataTable table, ModelSignature signature)
        {
            foreach (var input in signature.Inputs)
            {
                var index = _schema[input.Name].Index;
                switch (table.Find(input.Name))
                {
                    case NumericColumn n: _numeric[index] = n.Values; break;
                    case TextColumn t: _text[index] = t.Values; break;
                    case TimestampColumn s: _text[index] = s.ToText().Values; break; // the ISO 8601 text Kiln trains on
                    default: throw new KilnException($"input '{input.Name}' is missing");
                }
            }
        }

        public void Unbind()
        {
            Array.Clear(_numeric);
            Array.Clear(_text);
        }

        public void MoveTo(int row)
        {
            _row = row;
            _position++; // a new position tells ML.NET's cached getters to recompute
        }

        public override bool IsColumnActive(DataViewSchema.Column column) => true;

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            var i = column.Index;
            Delegate getter = column.Type switch
            {
                NumberDataViewType when typeof(TValue) == typeof(float) => (ValueGetter<float>)((ref float v) =>
                {
                    if (_numeric[i] is { } n) v = (float)n[_row];
                    else if (_text[i] is { } t) v = (float)NumericColumn.ParseOrNaN(t[_row]);
                    else v = 0f;
                }),
                TextDataViewType => (ValueGetter<ReadOnlyMemory<char>>)((ref ReadOnlyMemory<char> v) =>
                {
                    if (_text[i] is { } t) v = (t[_row] ?? string.Empty).AsMemory();
                    else if (_numeric[i] is { } n) v = double.IsNaN(n[_row]) ? ReadOnlyMemory<char>.Empty : n[_row].ToString("R", System.Globalization.CultureInfo.InvariantCulture).AsMemory();
                    else v = ReadOnlyMemory<char>.Empty;
                }),
                BooleanDataViewType => (ValueGetter<bool>)((ref bool v) => v = false),
                _ => throw new KilnException($"model input column '{column.Name}' has type {column.Type}, which Kiln cannot feed"),
            };
            return (ValueGetter<TValue>)getter;
        }
    }
}
