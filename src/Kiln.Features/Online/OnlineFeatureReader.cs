using System.Text.Json.Serialization;
using Kiln.Core;
using Kiln.Features.Definitions;
using Kiln.Features.Offline;

namespace Kiln.Features.Online;

/// <summary>Why a value is what it is, as Feast names it.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<FeatureStatus>))]
public enum FeatureStatus
{
    [JsonStringEnumMemberName("PRESENT")] Present,
    [JsonStringEnumMemberName("NOT_FOUND")] NotFound,
    [JsonStringEnumMemberName("NULL_VALUE")] NullValue,
    [JsonStringEnumMemberName("OUTSIDE_MAX_AGE")] OutsideMaxAge,
}

/// <summary>One output column of an online read, column-major: a value, status and event time per entity row.</summary>
public sealed record OnlineFeatureColumn(string Name, FeatureType Dtype, object?[] Values, FeatureStatus[] Statuses, DateTime?[] EventTimestamps);

/// <summary>The result of an online read: join key columns (when asked for) then feature columns, in request order.</summary>
public sealed record OnlineFeatureResult(IReadOnlyList<OnlineFeatureColumn> Columns, int RowCount);

/// <summary>
/// Reads features for entities from the online store, enforcing each view's ttl at read time (older values come back
/// null with status OUTSIDE_MAX_AGE). The inference server uses <see cref="ReadRowAsync"/>; the HTTP endpoint uses
/// <see cref="ReadAsync"/>.
/// </summary>
public sealed class OnlineFeatureReader
{
    private readonly FeatureRepository _repo;
    private readonly IOnlineStore _store;
    private readonly TimeProvider _time;

    public OnlineFeatureReader(FeatureRepository repo, IOnlineStore store, TimeProvider? time = null)
    {
        _repo = repo;
        _store = store;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The definitions this reader serves.</summary>
    public FeatureRepository Repository => _repo;

    /// <summary>The features of a service for one entity, by output name, typed as the schema says (null when not PRESENT).</summary>
    public async Task<IReadOnlyDictionary<string, object?>> ReadRowAsync(string featureService, IReadOnlyDictionary<string, object?> entityKeys,
        bool fullNames = false, CancellationToken cancellationToken = default)
    {
        var entities = entityKeys.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<object?>)[kv.Value], StringComparer.Ordinal);
        var result = await ReadAsync(_repo.ServiceFeatures(featureService), entities, fullNames, includeJoinKeys: false, cancellationToken).ConfigureAwait(false);
        var row = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var c in result.Columns) row[c.Name] = c.Values[0];
        return row;
    }

    /// <summary>Reads features for entity rows given column-major (join key → values).</summary>
    public async Task<OnlineFeatureResult> ReadAsync(IReadOnlyList<FeatureRef> features, IReadOnlyDictionary<string, IReadOnlyList<object?>> entities,
        bool fullNames = false, bool includeJoinKeys = false, CancellationToken cancellationToken = default)
    {
        if (entities.Count == 0) throw new KilnException("entities: no join keys given");
        var rowCount = -1;
        string? firstKey = null;
        foreach (var (key, values) in entities)
        {
            if (rowCount < 0)
            {
                rowCount = values.Count;
                firstKey = key;
            }
            else if (values.Count != rowCount)
            {
                throw new KilnException($"entities: '{key}' has {values.Count} values but '{firstKey}' has {rowCount}");
            }
        }

        var columns = new List<OnlineFeatureColumn>();
        var byView = new List<(FeatureViewDefinition View, List<FeatureField> Fields)>();
        foreach (var r in features)
        {
            var view = _repo.View(r.View);
            if (!view.Online) throw new KilnException($"feature view '{view.Name}' ({view.DefinedIn}) is not online (online: false)");
            var field = view.Field(r.Feature) ?? throw new KilnException($"feature view '{view.Name}' ({view.DefinedIn}) has no feature '{r.Feature}'");
            var i = byView.FindIndex(g => g.View.Name == view.Name);
            if (i < 0)
            {
                byView.Add((view, [field]));
            }
            else if (!byView[i].Fields.Contains(field))
            {
                byView[i].Fields.Add(field);
            }
        }

        // Canonical keys per join key, checked once.
        var canonical = new Dictionary<string, string[]>(StringComparer.Ordinal);
        string[] Canonical(string joinKey, FeatureViewDefinition view)
        {
            if (canonical.TryGetValue(joinKey, out var done)) return done;
            if (!entities.TryGetValue(joinKey, out var values))
                throw new KilnException($"entities: missing join key '{joinKey}' needed by feature view '{view.Name}' ({view.DefinedIn})");
            var declared = _repo.JoinKeyType(joinKey);
            var result = new string[rowCount];
            for (var i = 0; i < rowCount; i++)
            {
                try
                {
                    result[i] = EntityKeys.Canonical(values[i], joinKey, declared);
                }
                catch (KilnException e)
                {
                    throw new KilnException($"entities: row {i}: {e.Message}", e);
                }
            }
            canonical[joinKey] = result;
            return result;
        }

        var now = _time.GetUtcNow().UtcDateTime;
        var viewResults = new Dictionary<string, OnlineFeatureColumn>(StringComparer.Ordinal);
        var reads = new List<Task>();
        foreach (var (view, fields) in byView)
        {
            var keys = _repo.JoinKeys(view);
            var parts = keys.Select(k => Canonical(k, view)).ToArray();
            var entityKeys = new string[rowCount];
            var buffer = new string[keys.Count];
            for (var i = 0; i < rowCount; i++)
            {
                for (var k = 0; k < keys.Count; k++) buffer[k] = parts[k][i];
                entityKeys[i] = EntityKeys.Combine(buffer);
            }
            reads.Add(ReadViewAsync(view, fields, entityKeys, now, viewResults, cancellationToken));
        }
        await Task.WhenAll(reads).ConfigureAwait(false);

        if (includeJoinKeys)
        {
            foreach (var (key, values) in entities)
            {
                var statuses = new FeatureStatus[rowCount];
                Array.Fill(statuses, FeatureStatus.Present);
                var typed = new object?[rowCount];
                for (var i = 0; i < rowCount; i++) typed[i] = values[i] is System.Text.Json.JsonElement e ? OnlinePayload.Typed(e, e.ValueKind == System.Text.Json.JsonValueKind.Number ? FeatureType.Int64 : FeatureType.String) : values[i];
                columns.Add(new OnlineFeatureColumn(key, _repo.JoinKeyType(key) ?? FeatureType.String, typed, statuses, new DateTime?[rowCount]));
            }
        }
        foreach (var r in features)
        {
            var name = fullNames ? r.FullName : r.Feature;
            if (viewResults.TryGetValue(r.ToString(), out var column) && !columns.Any(c => c.Name == name)) columns.Add(column with { Name = name });
        }
        return new OnlineFeatureResult(columns, rowCount);
    }

    private async Task ReadViewAsync(FeatureViewDefinition view, List<FeatureField> fields, string[] entityKeys, DateTime now,
        Dictionary<string, OnlineFeatureColumn> into, CancellationToken ct)
    {
        var records = await _store.ReadAsync(_repo.Project, view.Name, entityKeys, ct).ConfigureAwait(false);
        var n = entityKeys.Length;
        var cols = fields.Select(f => new OnlineFeatureColumn(f.Name, f.Dtype, new object?[n], new FeatureStatus[n], new DateTime?[n])).ToArray();
        var decoded = new (bool Found, object? Value)[fields.Count];
        var oldest = view.Ttl > TimeSpan.Zero ? DuckDb.ToMicros(now - view.Ttl) : long.MinValue;
        for (var i = 0; i < n; i++)
        {
            if (records[i] is not { } record)
            {
                foreach (var c in cols) c.Statuses[i] = FeatureStatus.NotFound;
                continue;
            }
            var ts = DuckDb.FromMicros(record.EventMicros);
            if (record.EventMicros < oldest)
            {
                foreach (var c in cols)
                {
                    c.Statuses[i] = FeatureStatus.OutsideMaxAge;
                    c.EventTimestamps[i] = ts;
                }
                continue;
            }
            OnlinePayload.Decode(record.Payload, fields, decoded);
            for (var f = 0; f < cols.Length; f++)
            {
                var (found, value) = decoded[f];
                cols[f].Values[i] = value;
                cols[f].EventTimestamps[i] = found ? ts : null;
                cols[f].Statuses[i] = !found ? FeatureStatus.NotFound : value is null ? FeatureStatus.NullValue : FeatureStatus.Present;
            }
        }
        lock (into)
        {
            for (var f = 0; f < cols.Length; f++) into[$"{view.Name}:{fields[f].Name}"] = cols[f];
        }
    }
}
