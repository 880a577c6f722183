using System.Text.Json;
using System.Text.Json.Serialization;
using DuckDB.NET.Data;
using Kiln.Core;
using Kiln.Features.Definitions;
using Kiln.Features.Offline;

namespace Kiln.Features.Online;

/// <summary>Where pushed rows go.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<PushTarget>))]
public enum PushTarget
{
    [JsonStringEnumMemberName("online")] Online,
    [JsonStringEnumMemberName("offline")] Offline,
    [JsonStringEnumMemberName("online_and_offline")] OnlineAndOffline,
}

/// <summary>The outcome of a push.</summary>
public sealed record PushResult(IReadOnlyList<string> Views, int Rows, int WrittenOnline, string? OfflineFile);

/// <summary>
/// Writes fresh rows (column-major) for a push source's views, or for one view: to the online store (newer-wins, as
/// materialization) and/or as a Parquet part beside the batch source, which historical retrieval reads too. Every
/// value is checked before anything is written.
/// </summary>
public static class FeaturePush
{
    public static async Task<PushResult> PushAsync(FeatureRepository repo, IOnlineStore? store, string target,
        IReadOnlyDictionary<string, IReadOnlyList<object?>> rows, PushTarget to, CancellationToken cancellationToken = default)
    {
        var views = repo.PushSources.ContainsKey(target)
            ? repo.FeatureViews.Values.Where(v => v.Source == target).OrderBy(v => v.Name, StringComparer.Ordinal).ToList()
            : repo.FeatureViews.TryGetValue(target, out var single) ? [single]
            : throw new KilnException($"push: unknown push source or feature view '{target}' (push sources: {FeatureRepository.Known(repo.PushSources.Keys)}; views: {FeatureRepository.Known(repo.FeatureViews.Keys)})");
        if (views.Count == 0) throw new KilnException($"push: no feature view uses push source '{target}'");
        if (to != PushTarget.Offline && store is null) throw new KilnException("push: no online store configured");

        var n = -1;
        foreach (var (column, values) in rows)
        {
            if (n < 0) n = values.Count;
            else if (values.Count != n) throw new KilnException($"push: column '{column}' has {values.Count} values, others have {n}");
        }
        if (n <= 0) throw new KilnException("push: no rows");

        // Check and convert everything first: nothing is written unless every row is good.
        var source = repo.BatchSource(views[0]);
        var ts = Column(rows, source.TimestampField, $"the timestamp column of source '{source.Name}'");
        var eventTimes = new DateTime[n];
        for (var i = 0; i < n; i++)
        {
            eventTimes[i] = FeatureValues.Coerce(ts[i], FeatureType.Timestamp, source.TimestampField, i) as DateTime?
                ?? throw new KilnException($"push: column '{source.TimestampField}' row {i}: no timestamp");
        }
        DateTime?[] createdTimes = new DateTime?[n];
        if (source.CreatedTimestampColumn is { } createdColumn && rows.TryGetValue(createdColumn, out var created))
        {
            for (var i = 0; i < n; i++) createdTimes[i] = (DateTime?)FeatureValues.Coerce(created[i], FeatureType.Timestamp, createdColumn, i);
        }

        var prepared = new List<(FeatureViewDefinition View, OnlineRow[] Rows)>();
        var keyColumns = new Dictionary<string, (FeatureType Type, object?[] Values)>(StringComparer.Ordinal);
        var featureColumns = new Dictionary<string, (FeatureType Type, object?[] Values)>(StringComparer.Ordinal);
        foreach (var view in views)
        {
            if (repo.BatchSource(view).Name != source.Name)
                throw new KilnException($"push: feature view '{view.Name}' reads another batch source than '{source.Name}'");
            var keys = repo.JoinKeys(view);
            var canonical = new string[keys.Count][];
            for (var k = 0; k < keys.Count; k++)
            {
                var values = Column(rows, keys[k], $"join key of feature view '{view.Name}'");
                var declared = repo.JoinKeyType(keys[k]);
                canonical[k] = new string[n];
                var typed = new object?[n];
                for (var i = 0; i < n; i++)
                {
                    try
                    {
                        canonical[k][i] = EntityKeys.Canonical(values[i], keys[k], declared);
                    }
                    catch (KilnException e)
                    {
                        throw new KilnException($"push: row {i}: {e.Message}", e);
                    }
                    typed[i] = declared is { } t ? FeatureValues.Coerce(values[i], t, keys[k], i)
                        : values[i] is JsonElement { ValueKind: JsonValueKind.Number } num ? num.GetInt64()
                        : canonical[k][i];
                }
                keyColumns[keys[k]] = (declared ?? (typed.All(v => v is long or int) ? FeatureType.Int64 : FeatureType.String), typed);
            }
            var featureValues = new object?[view.Schema.Count][];
            for (var f = 0; f < view.Schema.Count; f++)
            {
                var field = view.Schema[f];
                var values = Column(rows, field.Name, $"feature of feature view '{view.Name}'");
                featureValues[f] = new object?[n];
                for (var i = 0; i < n; i++) featureValues[f][i] = FeatureValues.Coerce(values[i], field.Dtype, field.Name, i);
                featureColumns[field.Name] = (field.Dtype, featureValues[f]);
            }
            var online = new OnlineRow[n];
            var keyBuffer = new string[keys.Count];
            var rowValues = new object?[view.Schema.Count];
            for (var i = 0; i < n; i++)
            {
                for (var k = 0; k < keys.Count; k++) keyBuffer[k] = canonical[k][i];
                for (var f = 0; f < rowValues.Length; f++) rowValues[f] = featureValues[f][i];
                online[i] = new OnlineRow(EntityKeys.Combine(keyBuffer), DuckDb.ToMicros(eventTimes[i]),
                    createdTimes[i] is { } c ? DuckDb.ToMicros(c) : long.MinValue, OnlinePayload.Encode(view.Schema, rowValues));
            }
            prepared.Add((view, online));
        }

        string? offlineFile = null;
        if (to != PushTarget.Online)
        {
            offlineFile = await Task.Run(() => WriteOffline(source, keyColumns, featureColumns, eventTimes, createdTimes), cancellationToken).ConfigureAwait(false);
        }
        var written = 0;
        if (to != PushTarget.Offline)
        {
            foreach (var (view, online) in prepared)
                written += await store!.WriteAsync(repo.Project, view.Name, online, cancellationToken).ConfigureAwait(false);
        }
        return new PushResult([.. views.Select(v => v.Name)], n, written, offlineFile);
    }

    private static IReadOnlyList<object?> Column(IReadOnlyDictionary<string, IReadOnlyList<object?>> rows, string name, string what) =>
        rows.TryGetValue(name, out var values) ? values : throw new KilnException($"push: missing column '{name}' ({what})");

    private static string WriteOffline(SourceDefinition source, Dictionary<string, (FeatureType Type, object?[] Values)> keys,
        Dictionary<string, (FeatureType Type, object?[] Values)> features, DateTime[] eventTimes, DateTime?[] createdTimes)
    {
        var folder = DuckDb.PushFolder(source);
        Directory.CreateDirectory(folder);
        var columns = new List<(string Name, FeatureType Type, Func<int, object?> Get)>();
        foreach (var (key, (type, values)) in keys) columns.Add((key, type, i => values[i]));
        columns.Add((source.TimestampField, FeatureType.Timestamp, i => eventTimes[i]));
        if (source.CreatedTimestampColumn is { } created) columns.Add((created, FeatureType.Timestamp, i => createdTimes[i] ?? DateTime.UtcNow));
        foreach (var (feature, (type, values)) in features) columns.Add((feature, type, i => values[i]));

        using var connection = DuckDb.Open();
        DuckDb.Execute(connection, $"CREATE TEMP TABLE pushed ({string.Join(", ", columns.Select(c => $"{DuckDb.Id(c.Name)} {c.Type.DuckDbType()}"))})");
        using (var appender = connection.CreateAppender("pushed"))
        {
            for (var i = 0; i < eventTimes.Length; i++)
            {
                var row = appender.CreateRow();
                foreach (var c in columns) Append(row, c.Get(i), c.Type);
                row.EndRow();
            }
        }
        var name = $"part-{DateTime.UtcNow:yyyyMMddTHHmmssfff}-{Guid.NewGuid():N}.parquet";
        var temp = Path.Combine(folder, "." + name + ".tmp");
        DuckDb.Execute(connection, $"COPY pushed TO {DuckDb.Literal(temp)} (FORMAT parquet)");
        var final = Path.Combine(folder, name);
        File.Move(temp, final);
        return final;
    }

    private static void Append(IDuckDBAppenderRow row, object? value, FeatureType type)
    {
        if (value is null)
        {
            row.AppendNullValue();
            return;
        }
        switch (type)
        {
            case FeatureType.Int32: row.AppendValue((int)value); break;
            case FeatureType.Int64: row.AppendValue((long)value); break;
            case FeatureType.Float32: row.AppendValue((float)value); break;
            case FeatureType.Float64: row.AppendValue((double)value); break;
            case FeatureType.Bool: row.AppendValue((bool)value); break;
            case FeatureType.Timestamp: row.AppendValue((DateTime)value); break;
            default: row.AppendValue(value.ToString()); break;
        }
    }
}
