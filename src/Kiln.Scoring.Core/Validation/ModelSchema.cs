using Kiln.Core.Packaging;
using Kiln.Core.Profiling;

namespace Kiln.Scoring.Validation;

/// <summary>One input of the signature as validation needs it.</summary>
public sealed class SchemaField
{
    public required string Name { get; init; }

    public required int Index { get; init; }

    public required bool IsNumeric { get; init; }

    public required bool Nullable { get; init; }

    /// <summary>The ONNX tensor type of a numeric input (int64, int32, bool take whole numbers only); null for ML.NET inputs.</summary>
    public string? TensorType { get; init; }

    /// <summary>Is the input fed to an integer or boolean tensor, so that only whole numbers (0 or 1, true or false) fit?</summary>
    public bool WholeNumber => TensorType is "int64" or "int32" or "bool";

    /// <summary>Is the input fed to a boolean tensor (JSON true/false, text "true"/"false", or 0/1)?</summary>
    public bool IsBoolean => TensorType == "bool";

    /// <summary>Categories seen in training (categorical inputs); null = any value is accepted.</summary>
    public HashSet<string>? Categories { get; init; }

    /// <summary>Finds a known category by its characters and returns the stored instance (no allocation).</summary>
    public HashSet<string>.AlternateLookup<ReadOnlySpan<char>> CategoryLookup { get; init; }
}

/// <summary>A model signature compiled for request validation: field lookup by name (also by span), kinds, domains, policy.</summary>
public sealed class ModelSchema
{
    private readonly Dictionary<string, int> _byName;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _bySpan;
    private readonly byte[][] _utf8Names;
    private readonly System.Collections.Concurrent.ConcurrentBag<InputBatch> _pool = [];

    public ModelSchema(ModelSignature signature, UnseenCategoryPolicy policy, int maxRows)
    {
        Policy = policy;
        MaxRows = maxRows;
        var fields = new SchemaField[signature.Inputs.Count];
        _byName = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < fields.Length; i++)
        {
            var input = signature.Inputs[i];
            HashSet<string>? categories = null;
            if (input.Type == ColumnKind.Categorical && input.Categories is { Count: > 0 })
                categories = new HashSet<string>(input.Categories, StringComparer.Ordinal);
            fields[i] = new SchemaField
            {
                Name = input.Name,
                Index = i,
                IsNumeric = input.Type == ColumnKind.Numeric,
                Nullable = input.Nullable,
                TensorType = input.Type == ColumnKind.Numeric ? input.TensorType : null,
                Categories = categories,
                CategoryLookup = categories?.GetAlternateLookup<ReadOnlySpan<char>>() ?? default,
            };
            _byName[input.Name] = i;
        }
        Fields = fields;
        _bySpan = _byName.GetAlternateLookup<ReadOnlySpan<char>>();
        _utf8Names = [.. fields.Select(f => System.Text.Encoding.UTF8.GetBytes(f.Name))];
    }

    public IReadOnlyList<SchemaField> Fields { get; }

    public UnseenCategoryPolicy Policy { get; }

    public int MaxRows { get; }

    public int IndexOf(ReadOnlySpan<char> name) => _bySpan.TryGetValue(name, out var i) ? i : -1;

    public int IndexOf(string name) => _byName.TryGetValue(name, out var i) ? i : -1;

    /// <summary>
    /// Whether the UTF-8 bytes of a (not escaped) JSON property name are the name of field <paramref name="field"/>: rows
    /// usually list the inputs in the signature's order, so the decoder tries the field after the last one this way before
    /// it looks the name up (<see cref="IndexOf(ReadOnlySpan{char})"/>).
    /// </summary>
    public bool IsNameOf(int field, ReadOnlySpan<byte> utf8) => (uint)field < (uint)_utf8Names.Length && utf8.SequenceEqual(_utf8Names[field]);

    /// <summary>A cleared batch for this schema, from a pool; give it back with <see cref="Return"/>.</summary>
    public InputBatch Rent(int rowsHint)
    {
        if (!_pool.TryTake(out var batch)) batch = new InputBatch(this, Math.Max(rowsHint, 1));
        batch.Clear(rowsHint);
        return batch;
    }

    public void Return(InputBatch batch)
    {
        // Keep pooled batches small: a huge batch is left to the GC.
        if (batch.Capacity <= 1024) _pool.Add(batch);
    }
}
