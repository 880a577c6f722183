using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring;
using Kiln.Scoring.Validation;

namespace Kiln.Serving.Models;

/// <summary>
/// One loaded, verified and warmed version of a model: its package, scorer and compiled schema.
/// Requests lease it (<see cref="TryAcquire"/> / <see cref="Release"/>) so that a version swapped
/// out is disposed only after the last request using it has finished.
/// </summary>
public sealed class ServedModel
{
    private readonly IScorer _scorer;
    private int _leases = 1; // the slot's own reference
    private Features.FeatureBinding? _featureBinding;

    public ServedModel(string name, string version, IScorer scorer, ModelSchema schema)
    {
        Name = name;
        Version = version;
        _scorer = scorer;
        Schema = schema;
        LoadedAt = DateTimeOffset.UtcNow;
        EncodedName = System.Text.Json.JsonEncodedText.Encode(name);
        EncodedVersion = System.Text.Json.JsonEncodedText.Encode(version);
    }

    /// <summary>The name as JSON string text, escaped once at load instead of in every answer.</summary>
    internal System.Text.Json.JsonEncodedText EncodedName { get; }

    /// <summary>The version as JSON string text, escaped once at load.</summary>
    internal System.Text.Json.JsonEncodedText EncodedVersion { get; }

    private System.Text.Json.JsonEncodedText[]? _encodedClassLabels;

    /// <summary>The class labels as JSON text (property names of "probabilities"), escaped once per version.</summary>
    internal System.Text.Json.JsonEncodedText[] EncodedClassLabels =>
        _encodedClassLabels ??= [.. ClassLabels.Select(l => System.Text.Json.JsonEncodedText.Encode(l))];

    private static readonly System.Text.Json.JsonEncodedText True = System.Text.Json.JsonEncodedText.Encode("true");
    private static readonly System.Text.Json.JsonEncodedText False = System.Text.Json.JsonEncodedText.Encode("false");

    /// <summary>
    /// A predicted label as JSON string text: a class label (found among the first 16 by reference, then by value) or
    /// "true"/"false" is escaped once per version, any other label now. The same bytes as writing the string.
    /// </summary>
    internal System.Text.Json.JsonEncodedText EncodedLabel(string label)
    {
        var labels = ClassLabels;
        var encoded = EncodedClassLabels;
        var n = Math.Min(16, labels.Count);
        for (var i = 0; i < n; i++) if (ReferenceEquals(labels[i], label)) return encoded[i];
        for (var i = 0; i < n; i++) if (string.Equals(labels[i], label, StringComparison.Ordinal)) return encoded[i];
        if (label == "true") return True;
        if (label == "false") return False;
        return System.Text.Json.JsonEncodedText.Encode(label);
    }

    public string Name { get; }

    public string Version { get; }

    public ModelPackage Package => _scorer.Package;

    public ModelSignature Signature => _scorer.Package.Signature;

    public ModelSchema Schema { get; }

    public DateTimeOffset LoadedAt { get; }

    /// <summary>The prediction log's buffers for this version (made by the log on the first logged request).</summary>
    internal Logging.ModelLog? Log { get; set; }

    /// <summary>How this version reads the feature store (made when it loads by <see cref="Features.OnlineFeatures"/>; null when it reads nothing, or until the store can be used).</summary>
    internal Features.FeatureBinding? FeatureBinding
    {
        get => Volatile.Read(ref _featureBinding);
        set => Volatile.Write(ref _featureBinding, value);
    }

    /// <summary>True once the version has been retired and every request using it has finished.</summary>
    internal bool IsReleased => Volatile.Read(ref _leases) == 0;

    /// <summary>Class labels in score order (classification), empty for regression.</summary>
    public IReadOnlyList<string> ClassLabels => Signature.ClassLabels ?? [];

    /// <summary>Loads, verifies and warms a package; throws a KilnException when any step fails.</summary>
    public static ServedModel Load(string packageDirectory, string? name, string version, UnseenCategoryPolicy policy, int maxRows)
    {
        var package = ModelPackage.Load(packageDirectory, verify: true);
        var scorer = Scorers.Open(package);
        try
        {
            var model = new ServedModel(name ?? package.Name, version, scorer, new ModelSchema(package.Signature, policy, maxRows));
            model.Warm();
            return model;
        }
        catch
        {
            scorer.Dispose();
            throw;
        }
    }

    /// <summary>Scores the input example (or a synthetic row at the training domain's edge) so the first request is not slow.</summary>
    private void Warm()
    {
        var batch = Schema.Rent(1);
        try
        {
            var example = Package.ReadInputExample();
            if (example.Count > 0)
            {
                foreach (var row in example)
                {
                    if (batch.Rows >= 16) break;
                    var element = System.Text.Json.JsonSerializer.SerializeToElement(row, WarmJson.Default.DictionaryStringJsonElement);
                    // An example that no longer fits the signature is not fatal; the synthetic row still warms.
                    if (JsonRowsDecoder.DecodeRow(element, batch) is not null) break;
                }
            }
            if (batch.Rows == 0) AddSyntheticRow(batch);
            var results = new Prediction[batch.Rows];
            for (var i = 0; i < 3; i++) _scorer.Score(batch.Table, 0, results);
        }
        finally
        {
            Schema.Return(batch);
        }
    }

    private void AddSyntheticRow(InputBatch batch)
    {
        batch.BeginRow();
        foreach (var f in Signature.Inputs)
        {
            var i = Schema.IndexOf(f.Name);
            batch.Mark(i);
            if (Schema.Fields[i].IsNumeric) batch.SetNumber(i, f.Min ?? 0);
            else if (f.Categories is { Count: > 0 } c) batch.SetString(i, c[0], c[0]);
            else batch.SetNull(i);
        }
        batch.EndRow();
    }

    public void Score(DataTable table, int rows, Span<Prediction> results) => _scorer.Score(table, 0, results[..rows]);

    /// <summary>Takes a lease; false when this version has been retired and released by everyone.</summary>
    public bool TryAcquire()
    {
        while (true)
        {
            var n = Volatile.Read(ref _leases);
            if (n == 0) return false;
            if (Interlocked.CompareExchange(ref _leases, n + 1, n) == n) return true;
        }
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _leases) == 0) _scorer.Dispose();
    }

    /// <summary>Drops the slot's own reference (after a swap): disposal waits for in-flight requests.</summary>
    public void Retire() => Release();
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, System.Text.Json.JsonElement>))]
internal sealed partial class WarmJson : System.Text.Json.Serialization.JsonSerializerContext;
