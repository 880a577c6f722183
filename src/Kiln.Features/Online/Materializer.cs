using System.Globalization;
using System.Text;
using DuckDB.NET.Data;
using Kiln.Core;
using Kiln.Features.Definitions;
using Kiln.Features.Offline;
using Kiln.Features.Registry;

namespace Kiln.Features.Online;

/// <summary>The outcome of materializing one view.</summary>
public sealed record MaterializeResult(string View, DateTime Start, DateTime End, long Rows, long Written);

/// <summary>
/// Loads the latest value per entity of each online view from its batch source into the online store (DuckDB picks
/// the latest row per key in the window; the store keeps whichever of old and new is newer).
/// </summary>
public static class Materializer
{
    private const int BatchSize = 10_000;

    /// <summary>Materializes rows with event time in [start, end] for the given views (all online views when none given).</summary>
    public static async Task<IReadOnlyList<MaterializeResult>> MaterializeAsync(FeatureRepository repo, IOnlineStore store, IFeatureRegistry? registry,
        IReadOnlyList<string>? views, DateTime start, DateTime end, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        start = Utc(start);
        end = Utc(end);
        if (end < start) throw new KilnException($"materialize: --end {end:O} is before --start {start:O}");
        var results = new List<MaterializeResult>();
        foreach (var view in Select(repo, views))
        {
            var result = await MaterializeViewAsync(repo, store, view, start, end, progress, cancellationToken).ConfigureAwait(false);
            if (registry is not null)
                await registry.RecordMaterializationAsync(repo.Project, view.Name, start, end, result.Rows, cancellationToken).ConfigureAwait(false);
            results.Add(result);
        }
        return results;
    }

    /// <summary>Materializes each view from where its last materialization ended (or end − ttl, or the beginning when ttl is 0) to end.</summary>
    public static async Task<IReadOnlyList<MaterializeResult>> MaterializeIncrementalAsync(FeatureRepository repo, IOnlineStore store, IFeatureRegistry registry,
        IReadOnlyList<string>? views, DateTime end, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        end = Utc(end);
        var results = new List<MaterializeResult>();
        foreach (var view in Select(repo, views))
        {
            var last = await registry.LastMaterializedEndAsync(repo.Project, view.Name, cancellationToken).ConfigureAwait(false);
            var start = last ?? (view.Ttl > TimeSpan.Zero ? end - view.Ttl : DateTime.UnixEpoch);
            if (start > end)
            {
                progress?.Report($"{view.Name}: already materialized to {start:O}, after --end");
                results.Add(new MaterializeResult(view.Name, start, end, 0, 0));
                continue;
            }
            var result = await MaterializeViewAsync(repo, store, view, start, end, progress, cancellationToken).ConfigureAwait(false);
            await registry.RecordMaterializationAsync(repo.Project, view.Name, start, end, result.Rows, cancellationToken).ConfigureAwait(false);
            results.Add(result);
        }
        return results;
    }

    private static List<FeatureViewDefinition> Select(FeatureRepository repo, IReadOnlyList<string>? names)
    {
        if (names is null || names.Count == 0) return [.. repo.FeatureViews.Values.Where(v => v.Online).OrderBy(v => v.Name, StringComparer.Ordinal)];
        var list = new List<FeatureViewDefinition>();
        foreach (var name in names)
        {
            var view = repo.View(name);
            if (!view.Online) throw new KilnException($"feature view '{view.Name}' ({view.DefinedIn}) is not online (online: false)");
            list.Add(view);
        }
        return list;
    }

    private static DateTime Utc(DateTime t) => t.Kind switch
    {
        DateTimeKind.Unspecified => DateTime.SpecifyKind(t, DateTimeKind.Utc),
        _ => t.ToUniversalTime(),
    };

    private static Task<MaterializeResult> MaterializeViewAsync(FeatureRepository repo, IOnlineStore store, FeatureViewDefinition view,
        DateTime start, DateTime end, IProgress<string>? progress, CancellationToken cancellationToken) =>
        Task.Run(async () =>
        {
            using var connection = DuckDb.Open();
            var keys = repo.JoinKeys(view);
            var sql = LatestPerEntitySql(connection, repo, view, keys, start, end);
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            DuckDBDataReader reader;
            try
            {
                reader = (DuckDBDataReader)command.ExecuteReader();
            }
            catch (DuckDBException e)
            {
                throw new KilnException($"feature view '{view.Name}' ({view.DefinedIn}): {RepositoryValidator.FirstLine(e.Message)}", e);
            }
            using var readerScope = reader;
            long rows = 0, written = 0;
            var batch = new List<OnlineRow>(BatchSize);
            var keyValues = new string[keys.Count];
            var values = new object?[view.Schema.Count];
            var first = keys.Count + 2;
            while (reader.Read())
            {
                for (var k = 0; k < keys.Count; k++)
                {
                    var v = DuckDb.Value(reader, k);
                    keyValues[k] = v is null ? "" : EntityKeys.Canonical(v, keys[k], null);
                }
                var ets = (DateTime)DuckDb.Value(reader, keys.Count)!;
                var cts = DuckDb.Value(reader, keys.Count + 1) is DateTime c ? DuckDb.ToMicros(c) : long.MinValue;
                for (var f = 0; f < values.Length; f++) values[f] = DuckDb.Value(reader, first + f);
                batch.Add(new OnlineRow(EntityKeys.Combine(keyValues), DuckDb.ToMicros(ets), cts, OnlinePayload.Encode(view.Schema, values)));
                if (batch.Count == BatchSize)
                {
                    written += await store.WriteAsync(repo.Project, view.Name, batch, cancellationToken).ConfigureAwait(false);
                    rows += batch.Count;
                    batch.Clear();
                    if (rows % 1_000_000 == 0) progress?.Report($"{view.Name}: {rows:N0} rows");
                }
            }
            written += await store.WriteAsync(repo.Project, view.Name, batch, cancellationToken).ConfigureAwait(false);
            rows += batch.Count;
            progress?.Report($"{view.Name}: {rows:N0} entities from {start:O} to {end:O}, {written:N0} written");
            return new MaterializeResult(view.Name, start, end, rows, written);
        }, cancellationToken);

    /// <summary>Keys, event time, created time, then every feature of the view: the latest row per entity in [start, end].</summary>
    internal static string LatestPerEntitySql(DuckDBConnection connection, FeatureRepository repo, FeatureViewDefinition view,
        IReadOnlyList<string> keys, DateTime start, DateTime end)
    {
        var source = repo.BatchSource(view);
        var columns = RepositoryValidator.SourceColumns(connection, source);
        var where = $"feature view '{view.Name}' ({view.DefinedIn}), source '{source.Name}' file {source.Path}";
        var sql = new StringBuilder("SELECT ");
        foreach (var key in keys)
        {
            if (!columns.ContainsKey(key)) throw new KilnException($"{where}: no column '{key}' for join key '{key}'");
            sql.Append(CultureInfo.InvariantCulture, $"{DuckDb.Id(key)}, ");
        }
        sql.Append(CultureInfo.InvariantCulture, $"{DuckDb.NormalizeTimestamp(DuckDb.Id(source.TimestampField), columns[source.TimestampField])} AS __kiln_ets, ");
        sql.Append(source.CreatedTimestampColumn is { } created
            ? $"{DuckDb.NormalizeTimestamp(DuckDb.Id(created), columns[created])} AS __kiln_cts"
            : "CAST(NULL AS TIMESTAMP) AS __kiln_cts");
        foreach (var f in view.Schema)
        {
            if (!columns.TryGetValue(f.Name, out var type)) throw new KilnException($"{where}: no column '{f.Name}' for feature '{f.Name}'");
            if (!f.Dtype.Accepts(type)) throw new KilnException($"{where}: type mismatch for feature '{f.Name}': column is {type}, the schema says {f.Dtype.Name()}");
            sql.Append(CultureInfo.InvariantCulture, $", CAST({DuckDb.Id(f.Name)} AS {f.Dtype.DuckDbType()}) AS {DuckDb.Id(f.Name)}");
        }
        sql.Append(CultureInfo.InvariantCulture, $" FROM {DuckDb.SourceRelation(source)}");
        var partition = string.Join(", ", keys.Select(DuckDb.Id));
        var notNullKeys = string.Join(" AND ", keys.Select(k => $"{DuckDb.Id(k)} IS NOT NULL"));
        return $"SELECT * FROM ({sql}) s WHERE {notNullKeys} AND __kiln_ets >= {DuckDb.TimestampLiteral(start)} AND __kiln_ets <= {DuckDb.TimestampLiteral(end)} " +
               $"QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY __kiln_ets DESC, __kiln_cts DESC NULLS LAST) = 1 " +
               // In key order, so a store's key index is written sequentially rather than at random.
               $"ORDER BY {string.Join(", ", keys.Select(k => $"CAST({DuckDb.Id(k)} AS VARCHAR)"))}";
    }
}
