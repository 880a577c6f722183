using System.Collections.Concurrent;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Kiln.Scoring.MlNet;

/// <summary>
/// Scores an ML.NET package without compile-time types: the saved pipeline is bound once to a
/// row mapper, and each engine feeds one mutable input row through it, as PredictionEngine does,
/// so a prediction costs no reflection and no per-row allocation beyond the outputs.
/// </summary>
public sealed class MlnetScorer : IScorer
{
    private readonly ITransformer _model;
    private readonly DataViewSchema _inputSchema;
    private readonly ConcurrentBag<Engine> _engines = [];
    private readonly string[] _classLabels;

    public MlnetScorer(ModelPackage package)
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
    }

    public ModelPackage Package { get; }

    public void Score(DataTable input, int start, Span<Prediction> results)
    {
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
