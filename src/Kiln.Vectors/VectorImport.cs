using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Vectors.Embeddings;

namespace Kiln.Vectors;

/// <summary>What to read from a file: the id and vector columns; every other column (or the listed ones) becomes payload.</summary>
public sealed record ImportOptions
{
    public string IdColumn { get; init; } = "id";
    public string VectorColumn { get; init; } = "vector";
    public IReadOnlyList<string>? PayloadColumns { get; init; }
    public int BatchSize { get; init; } = 1000;

    /// <summary>A text column to embed (with <see cref="Embedder"/>) instead of reading a vector column; the text stays in the payload.</summary>
    public string? EmbedColumn { get; init; }

    /// <summary>The embedder for <see cref="EmbedColumn"/>; <see cref="TextEmbedder.Shared"/> when not set.</summary>
    public TextEmbedder? Embedder { get; init; }
}

/// <summary>
/// Loads points from JSONL (one object per line), CSV or Parquet (through Kiln.Core's table reader; the vector is a
/// JSON list in a text column there, or a Parquet list of floats or doubles), or embeds a text column instead of reading
/// vectors. A bad row stops the import with its file and row named; rows before it stay.
/// </summary>
public static class VectorImport
{
    public static async Task<long> ImportAsync(VectorCollection collection, string path, ImportOptions options,
        IProgress<long>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(collection);
        ArgumentNullException.ThrowIfNull(options);
        if (!File.Exists(path)) throw new KilnException($"{path}: file not found");
        var embed = options.EmbedColumn;
        if (embed is not null && collection.Config.Dimension != TextEmbedder.Dimension)
        {
            throw new KilnException($"{collection.Name}: vectors of size {collection.Config.Dimension}, but {TextEmbedder.ModelName} embeds text in {TextEmbedder.Dimension} dimensions");
        }
        var vectorColumn = embed ?? options.VectorColumn;
        long rows = 0;
        var batch = new List<(PointId Id, float[]? Vector, string? Text, JsonObject Payload)>(options.BatchSize);
        void Flush()
        {
            if (batch.Count == 0) return;
            try
            {
                float[][]? embedded = null;
                if (embed is not null) embedded = (options.Embedder ?? TextEmbedder.Shared).Embed(batch.ConvertAll(b => b.Text!), ct);
                collection.Upsert(batch.Select((b, i) => new PointInput(b.Id, embedded?[i] ?? b.Vector!, b.Payload)).ToList());
            }
            catch (VectorInputException e)
            {
                // "points[3].vector: ..." → the row of the file.
                var index = e.Message.StartsWith("points[", StringComparison.Ordinal)
                    ? int.Parse(e.Message.AsSpan(7, e.Message.IndexOf(']', StringComparison.Ordinal) - 7), CultureInfo.InvariantCulture) : 0;
                var after = e.Message.IndexOf('.', StringComparison.Ordinal);
                throw new KilnException($"{path}: row {rows - batch.Count + index + 1}: {(after > 0 ? e.Message[(after + 1)..] : e.Message)}");
            }
            batch.Clear();
            progress?.Report(rows);
        }

        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".ndjson", StringComparison.OrdinalIgnoreCase))
        {
            using var reader = new StreamReader(path);
            string? line;
            while ((line = await reader.ReadLineAsync(ct).ConfigureAwait(false)) is not null)
            {
                if (line.Length == 0) continue;
                rows++;
                JsonObject o;
                try
                {
                    o = JsonNode.Parse(line) as JsonObject ?? throw new KilnException($"{path}: row {rows}: not a JSON object");
                }
                catch (JsonException e)
                {
                    throw new KilnException($"{path}: row {rows}: {e.Message}");
                }
                var payload = new JsonObject();
                foreach (var (k, v) in o)
                {
                    if (k == options.IdColumn || (embed is null && k == options.VectorColumn)) continue;
                    if (options.PayloadColumns is null || options.PayloadColumns.Contains(k)) payload[k] = v?.DeepClone();
                }
                var id = Id(o[options.IdColumn], path, rows, options.IdColumn);
                if (embed is not null)
                {
                    var text = o[embed] is JsonValue t && t.GetValueKind() == JsonValueKind.String ? t.GetValue<string>() : null;
                    batch.Add((id, null, Text(text, path, rows, embed), payload));
                }
                else
                {
                    batch.Add((id, Vector(o[options.VectorColumn], path, rows, options.VectorColumn), null, payload));
                }
                if (batch.Count >= options.BatchSize) Flush();
            }
            Flush();
            return rows;
        }

        var names = await TableReader.ReadColumnNamesAsync(path, ct).ConfigureAwait(false);
        foreach (var required in new[] { options.IdColumn, vectorColumn })
        {
            if (!names.Contains(required)) throw new KilnException($"{path}: no column '{required}' (columns: {string.Join(", ", names)})");
        }
        var payloadColumns = (options.PayloadColumns ?? names.Where(n => n != options.IdColumn && (embed is not null || n != options.VectorColumn)).ToList()).ToList();
        foreach (var c in payloadColumns)
        {
            if (!names.Contains(c)) throw new KilnException($"{path}: no payload column '{c}' (columns: {string.Join(", ", names)})");
        }
        var requests = new[] { options.IdColumn, vectorColumn }.Concat(payloadColumns).Distinct(StringComparer.Ordinal).Select(n => new ColumnRequest(n, ColumnType.Text)).ToList();
        await foreach (var table in TableReader.ReadBatchesAsync(path, requests, 8192, ct).ConfigureAwait(false))
        {
            var ids = table.Text(options.IdColumn).Values;
            var vectors = table.Text(vectorColumn).Values;
            var payload = payloadColumns.Select(c => table.Text(c).Values).ToArray();
            for (var r = 0; r < table.RowCount; r++)
            {
                rows++;
                var idText = ids[r] ?? throw new KilnException($"{path}: row {rows}: {options.IdColumn} is empty");
                PointId id;
                try
                {
                    id = PointId.ParseText(idText.Trim(), options.IdColumn);
                }
                catch (VectorInputException e)
                {
                    throw new KilnException($"{path}: row {rows}: {e.Message}");
                }
                var p = new JsonObject();
                for (var c = 0; c < payloadColumns.Count; c++) p[payloadColumns[c]] = payloadColumns[c] == embed ? vectors[r] : Cell(payload[c][r]);
                if (embed is not null)
                {
                    batch.Add((id, null, Text(vectors[r], path, rows, embed), p));
                    if (batch.Count >= options.BatchSize) Flush();
                    continue;
                }
                JsonNode? vectorNode;
                try
                {
                    vectorNode = vectors[r] is { } v ? JsonNode.Parse(v) : null;
                }
                catch (JsonException)
                {
                    throw new KilnException($"{path}: row {rows}: {options.VectorColumn} is not a JSON list of numbers");
                }
                batch.Add((id, Vector(vectorNode, path, rows, options.VectorColumn), null, p));
                if (batch.Count >= options.BatchSize) Flush();
            }
        }
        Flush();
        return rows;
    }

    /// <summary>A text cell typed as JSON would type it: integer, number, true/false, or string.</summary>
    private static JsonNode? Cell(string? text)
    {
        if (text is null || text.Length == 0) return null;
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)) return JsonValue.Create(l);
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d)) return JsonValue.Create(d);
        if (text is "true" or "false") return JsonValue.Create(text == "true");
        return JsonValue.Create(text);
    }

    private static string Text(string? text, string path, long row, string column) =>
        string.IsNullOrWhiteSpace(text) ? throw new KilnException($"{path}: row {row}: {column}: no text to embed") : text;

    private static PointId Id(JsonNode? node, string path, long row, string column)
    {
        try
        {
            return PointId.Parse(node, column);
        }
        catch (VectorInputException e)
        {
            throw new KilnException($"{path}: row {row}: {e.Message}");
        }
    }

    private static float[] Vector(JsonNode? node, string path, long row, string column)
    {
        if (node is not JsonArray a) throw new KilnException($"{path}: row {row}: {column} must be a list of numbers");
        var v = new float[a.Count];
        for (var i = 0; i < a.Count; i++)
        {
            if (a[i] is not JsonValue x || x.GetValueKind() != JsonValueKind.Number) throw new KilnException($"{path}: row {row}: {column}[{i}] is not a number");
            v[i] = (float)Filtering.PointFilter.Number(x);
        }
        return v;
    }
}
