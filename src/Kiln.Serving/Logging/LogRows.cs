using Kiln.Core.Data;
using Kiln.Core.PredictionLog;
using Kiln.Scoring;
using Kiln.Serving.Models;
using Kiln.Scoring.Validation;

namespace Kiln.Serving.Logging;

/// <summary>
/// Logged rows of one model version in column buffers: index r is the r-th row appended. Requests
/// append to them directly (under <see cref="ModelLog"/>'s lock); the writer writes them as Parquet
/// row groups straight from the buffers. The storage is reused from one row group to the next, and
/// rows hold no object of their own (request ids wait as characters, labels are the model's own
/// strings), so a logged request leaves nothing behind for the GC to promote.
/// </summary>
internal sealed class LogRows
{
    private readonly string[] _labels;
    private readonly int _rowGroupSize;
    private readonly int _classes;
    private int _capacity;
    // The request ids, a row's copy each, as a PackedText's characters and ends (written without a string a row).
    private char[] _idChars = new char[1024];
    private int _idLength;
    private int[] _idEnds = [];
    private DateTime[] _timestamps = [];
    private string[] _protocols = [];
    private int[] _rowIndex = [];
    private readonly Array[] _inputs; // double[] (NaN = missing) or string?[] by input field
    private string?[] _prediction = [];
    private double[] _value = [];
    private readonly double[][] _probabilities;
    private string?[] _flags = [];
    private string[] _constant = [];

    /// <param name="model">The model version whose rows these are.</param>
    /// <param name="rowGroupSize">The rows the writer takes at a time: the buffers grow to it, not past it, unless the writer falls behind.</param>
    public LogRows(ServedModel model, int rowGroupSize)
    {
        _rowGroupSize = rowGroupSize;
        _labels = [.. model.ClassLabels];
        _classes = LogColumns.ProbabilityColumns(model);
        _inputs = new Array[model.Schema.Fields.Count];
        for (var i = 0; i < _inputs.Length; i++) _inputs[i] = model.Schema.Fields[i].IsNumeric ? Array.Empty<double>() : Array.Empty<string?>();
        _probabilities = new double[_classes][];
        for (var c = 0; c < _classes; c++) _probabilities[c] = [];
    }

    public int Count { get; private set; }

    public DateTime Timestamp(int row) => _timestamps[row];

    /// <summary>Appends one request's rows (all of the batch, in order).</summary>
    public void Append(DateTime timestamp, string requestId, string protocol, InputBatch batch, ReadOnlySpan<Prediction> predictions)
    {
        var rows = batch.Rows;
        var start = Count;
        var end = start + rows;
        if (end > _capacity)
        {
            var want = Math.Max(256, _capacity * 2);
            if (want > _rowGroupSize && end <= _rowGroupSize) want = _rowGroupSize;
            Grow(Math.Max(end, want));
        }
        var id = requestId.AsSpan();
        if (_idLength + id.Length * rows > _idChars.Length) Array.Resize(ref _idChars, Math.Max(_idChars.Length * 2, _idLength + id.Length * rows));
        for (var r = start; r < end; r++)
        {
            id.CopyTo(_idChars.AsSpan(_idLength));
            _idLength += id.Length;
            _idEnds[r] = _idLength;
            _timestamps[r] = timestamp;
            _protocols[r] = protocol;
            _rowIndex[r] = r - start;
        }
        for (var i = 0; i < _inputs.Length; i++)
        {
            if (_inputs[i] is double[] d) batch.NumericValues(i).AsSpan(0, rows).CopyTo(d.AsSpan(start));
            else batch.TextValues(i).AsSpan(0, rows).CopyTo(((string?[])_inputs[i]).AsSpan(start));
        }
        for (var k = 0; k < rows; k++)
        {
            var p = predictions[k];
            _prediction[start + k] = SharedLabel(p.Label);
            _value[start + k] = p.Value;
            for (var c = 0; c < _classes; c++) _probabilities[c][start + k] = p.Probabilities is { } probs && c < probs.Length ? probs[c] : double.NaN;
            _flags[start + k] = null;
        }
        if (batch.Flags is { Count: > 0 } flags)
        {
            foreach (var (row, message) in flags)
            {
                var at = start + row;
                _flags[at] = _flags[at] is null ? message : _flags[at] + "; " + message;
            }
        }
        Count = end;
    }

    /// <summary>The class label instance the model keeps, so buffered rows do not hold a string of their own.</summary>
    private string? SharedLabel(string? label)
    {
        if (label is null) return null;
        foreach (var l in _labels) if (ReferenceEquals(l, label) || string.Equals(l, label, StringComparison.Ordinal)) return l;
        return label;
    }

    private void Grow(int capacity)
    {
        Array.Resize(ref _idEnds, capacity);
        Array.Resize(ref _timestamps, capacity);
        Array.Resize(ref _protocols, capacity);
        Array.Resize(ref _rowIndex, capacity);
        for (var i = 0; i < _inputs.Length; i++)
        {
            if (_inputs[i] is double[] d) { Array.Resize(ref d, capacity); _inputs[i] = d; }
            else { var t = (string?[])_inputs[i]; Array.Resize(ref t, capacity); _inputs[i] = t; }
        }
        Array.Resize(ref _prediction, capacity);
        Array.Resize(ref _value, capacity);
        for (var c = 0; c < _classes; c++) Array.Resize(ref _probabilities[c], capacity);
        Array.Resize(ref _flags, capacity);
        _capacity = capacity;
    }

    /// <summary>Where the run of rows dated as row <paramref name="from"/>'s UTC day ends (a log partition holds one day).</summary>
    public int DayRunEnd(int from)
    {
        var day = _timestamps[from].Ticks / TimeSpan.TicksPerDay;
        var r = from + 1;
        while (r < Count && _timestamps[r].Ticks / TimeSpan.TicksPerDay == day) r++;
        return r;
    }

    /// <summary>Writes rows [from, to) as one row group, in the column order of <see cref="LogColumns.For"/>.</summary>
    public void WriteRowGroup(ParquetTableWriter w, int from, int to, string model, string version)
    {
        var n = to - from;
        w.BeginRowGroup(n);
        w.WriteText(new PackedText(_idChars, _idEnds, Count), from, n);
        w.WriteTimestamp(_timestamps.AsSpan(from, n));
        if (_constant.Length < n) _constant = new string[_capacity];
        _constant.AsSpan(0, n).Fill(model);
        w.WriteText(_constant.AsSpan(0, n)!);
        _constant.AsSpan(0, n).Fill(version);
        w.WriteText(_constant.AsSpan(0, n)!);
        w.WriteText(_protocols.AsSpan(from, n)!);
        w.WriteInt32(_rowIndex.AsSpan(from, n));
        foreach (var input in _inputs)
        {
            if (input is double[] d) w.WriteDouble(d.AsSpan(from, n));
            else w.WriteText(((string?[])input).AsSpan(from, n));
        }
        w.WriteText(_prediction.AsSpan(from, n));
        w.WriteDouble(_value.AsSpan(from, n));
        foreach (var c in _probabilities) w.WriteDouble(c.AsSpan(from, n));
        w.WriteText(_flags.AsSpan(from, n));
        w.EndRowGroup();
    }

    /// <summary>Empties the buffers (keeping their storage) and lets go of the strings they referenced.</summary>
    public void Clear()
    {
        var n = Count;
        foreach (var input in _inputs) if (input is string?[] t) Array.Clear(t, 0, n);
        Array.Clear(_prediction, 0, n);
        Array.Clear(_flags, 0, n);
        Array.Clear(_protocols, 0, n);
        _idLength = 0;
        Count = 0;
    }
}

/// <summary>The log's columns for a model (see docs/serving.md, "Prediction log").</summary>
internal static class LogColumns
{
    public static ParquetColumn[] For(ServedModel model)
    {
        var columns = new List<ParquetColumn>
        {
            new(PredictionLogLayout.RequestId, ParquetColumnKind.Text, true),
            new(PredictionLogLayout.Timestamp, ParquetColumnKind.Timestamp, false),
            new(PredictionLogLayout.Model, ParquetColumnKind.Text, true),
            new(PredictionLogLayout.Version, ParquetColumnKind.Text, true),
            new(PredictionLogLayout.Protocol, ParquetColumnKind.Text, true),
            new(PredictionLogLayout.Row, ParquetColumnKind.Int32, false),
        };
        foreach (var f in model.Schema.Fields)
            columns.Add(new(PredictionLogLayout.InputPrefix + f.Name, f.IsNumeric ? ParquetColumnKind.Double : ParquetColumnKind.Text, true));
        columns.Add(new(PredictionLogLayout.Prediction, ParquetColumnKind.Text, true));
        columns.Add(new(PredictionLogLayout.Value, ParquetColumnKind.Double, false));
        for (var c = 0; c < ProbabilityColumns(model); c++) columns.Add(new(PredictionLogLayout.ProbabilityPrefix + model.ClassLabels[c], ParquetColumnKind.Double, true));
        columns.Add(new(PredictionLogLayout.Flags, ParquetColumnKind.Text, true));
        return [.. columns];
    }

    /// <summary>Multiclass models log one probability per class; binary ones log the positive class's as the value.</summary>
    public static int ProbabilityColumns(ServedModel model) => model.ClassLabels.Count > 2 ? model.ClassLabels.Count : 0;
}
