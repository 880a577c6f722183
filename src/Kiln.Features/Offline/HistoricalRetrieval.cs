using System.Globalization;
using System.Text;
using DuckDB.NET.Data;
using Kiln.Core;
using Kiln.Features.Definitions;

namespace Kiln.Features.Offline;

/// <summary>Options of a historical (point-in-time) retrieval.</summary>
public sealed record RetrievalOptions
{
    /// <summary>Name feature columns <c>view__feature</c> instead of <c>feature</c>.</summary>
    public bool FullNames { get; init; }

    /// <summary>The entity table's event timestamp column.</summary>
    public string TimestampColumn { get; init; } = "event_timestamp";
}

/// <summary>A table in memory: column names and rows of CLR values (long, double, string, bool, UTC DateTime or null).</summary>
public sealed record FeatureFrame(IReadOnlyList<string> Columns, IReadOnlyList<object?[]> Rows)
{
    public int Ordinal(string column)
    {
        for (var i = 0; i < Columns.Count; i++) if (Columns[i] == column) return i;
        throw new KeyNotFoundException($"no column '{column}'");
    }
}

/// <summary>
/// Point-in-time correct joins of an entity table with feature views, on DuckDB, with Feast's semantics: for each entity
/// row and view, the latest feature row whose event time is at or before the entity time and not older than the view's
/// ttl (ttl 0: no bound), ties on event time broken by the latest created timestamp; nulls when no row qualifies; the
/// entity rows come back exactly once each, in their input order.
/// </summary>
public static class HistoricalRetrieval
{
    /// <summary>Joins the features onto the entity file and writes the result to <paramref name="outPath"/> (.parquet or .csv).</summary>
    public static Task<long> ToFileAsync(FeatureRepository repo, string entitiesPath, IReadOnlyList<FeatureRef> features,
        string outPath, RetrievalOptions? options = null, CancellationToken cancellationToken = default) =>
        Task.Run(() =>
        {
            var outFormat = DuckDb.FormatOf(outPath, "output file");
            using var connection = DuckDb.Open();
            var select = Prepare(connection, repo, entitiesPath, features, options ?? new RetrievalOptions(), cancellationToken);
            var full = Path.GetFullPath(outPath);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            var temp = full + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
            var format = outFormat == SourceFormat.Parquet ? "FORMAT parquet" : "FORMAT csv, HEADER true, TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%S.%fZ'";
            try
            {
                Run(connection, $"COPY ({select}) TO {DuckDb.Literal(temp)} ({format})", entitiesPath);
                File.Move(temp, full, overwrite: true);
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp);
            }
            return Convert.ToInt64(DuckDb.Scalar(connection, "SELECT count(*) FROM __kiln_input"), CultureInfo.InvariantCulture);
        }, cancellationToken);

    /// <summary>Joins the features onto the entity file and returns the table in memory.</summary>
    public static Task<FeatureFrame> ToFrameAsync(FeatureRepository repo, string entitiesPath, IReadOnlyList<FeatureRef> features,
        RetrievalOptions? options = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => ToFrame(repo, entitiesPath, features, options, cancellationToken), cancellationToken);

    internal static FeatureFrame ToFrame(FeatureRepository repo, string entitiesPath, IReadOnlyList<FeatureRef> features,
        RetrievalOptions? options = null, CancellationToken cancellationToken = default)
        {
            using var connection = DuckDb.Open();
            var select = Prepare(connection, repo, entitiesPath, features, options ?? new RetrievalOptions(), cancellationToken);
            using var command = connection.CreateCommand();
            command.CommandText = select;
            using var reader = command.ExecuteReader();
            var columns = new List<string>();
            for (var i = 0; i < reader.FieldCount; i++) columns.Add(reader.GetName(i));
            var rows = new List<object?[]>();
            while (reader.Read())
            {
                var row = new object?[reader.FieldCount];
                for (var i = 0; i < row.Length; i++) row[i] = DuckDb.Value(reader, i);
                rows.Add(row);
            }
            return new FeatureFrame(columns, rows);
        }

    /// <summary>Loads the entity table and one joined table per view; returns the final SELECT.</summary>
    private static string Prepare(DuckDBConnection connection, FeatureRepository repo, string entitiesPath,
        IReadOnlyList<FeatureRef> features, RetrievalOptions options, CancellationToken cancellationToken)
    {
        if (features.Count == 0) throw new KilnException("no features requested");
        var entityFile = Path.GetFullPath(entitiesPath);
        if (!File.Exists(entityFile)) throw new KilnException($"entity file {entitiesPath}: no such file");
        var entityFormat = DuckDb.FormatOf(entityFile, "entity file");
        Run(connection, $"CREATE TEMP TABLE __kiln_input AS SELECT * FROM {DuckDb.Reader(entityFile, entityFormat)}", entitiesPath);
        var entityColumns = DuckDb.Describe(connection, "__kiln_input").ToDictionary(c => c.Name, c => c.Type, StringComparer.Ordinal);

        var tsColumn = options.TimestampColumn;
        if (!entityColumns.TryGetValue(tsColumn, out var tsType))
            throw new KilnException($"entity file {entitiesPath}: no timestamp column '{tsColumn}' (columns: {FeatureRepository.Known(entityColumns.Keys)})");
        var tsExpr = DuckDb.NormalizeTimestamp(DuckDb.Id(tsColumn), tsType)
            ?? throw new KilnException($"entity file {entitiesPath}: column '{tsColumn}' is {tsType}, not a timestamp");

        // Group the requested features by view, keeping the order of the request.
        var byView = new List<(FeatureViewDefinition View, List<FeatureField> Fields)>();
        foreach (var r in features)
        {
            var view = repo.View(r.View);
            var field = view.Field(r.Feature) ?? throw new KilnException($"feature view '{view.Name}' ({view.DefinedIn}) has no feature '{r.Feature}'");
            var group = byView.FirstOrDefault(g => g.View.Name == view.Name);
            if (group.View is null)
            {
                group = (view, []);
                byView.Add(group);
            }
            if (!group.Fields.Contains(field)) group.Fields.Add(field);
        }

        // Output column names must be unique.
        var outputNames = new Dictionary<string, string>(entityColumns.Keys.Select(k => KeyValuePair.Create(k, "the entity file")), StringComparer.Ordinal);
        foreach (var (view, fields) in byView)
        {
            foreach (var f in fields)
            {
                var name = options.FullNames ? $"{view.Name}__{f.Name}" : f.Name;
                if (outputNames.TryGetValue(name, out var other))
                    throw new KilnException($"output column '{name}' of feature view '{view.Name}' clashes with a column of {other}; use full names (--full-names)");
                outputNames[name] = $"feature view '{view.Name}'";
            }
        }

        // Every join key the views need must be in the entity file.
        var allKeys = new List<string>();
        foreach (var (view, _) in byView)
        {
            foreach (var key in repo.JoinKeys(view))
            {
                if (!entityColumns.ContainsKey(key))
                    throw new KilnException($"entity file {entitiesPath}: no column '{key}', the join key of feature view '{view.Name}' ({view.DefinedIn})");
                if (!allKeys.Contains(key)) allKeys.Add(key);
            }
        }

        var keySelect = string.Concat(allKeys.Select(k => $", {DuckDb.Id(k)}"));
        Run(connection, $"CREATE TEMP TABLE __kiln_entities AS SELECT rowid AS __kiln_row, {tsExpr} AS __kiln_ts{keySelect} FROM __kiln_input", entitiesPath, tsColumn);
        var missing = DuckDb.Scalar(connection, "SELECT min(__kiln_row) FROM __kiln_entities WHERE __kiln_ts IS NULL");
        if (missing is not null)
            throw new KilnException($"entity file {entitiesPath}: row {Convert.ToInt64(missing, CultureInfo.InvariantCulture) + 1} has no timestamp in column '{tsColumn}'");

        var select = new StringBuilder("SELECT i.*");
        var joins = new StringBuilder();
        for (var v = 0; v < byView.Count; v++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (view, fields) = byView[v];
            var table = $"__kiln_v{v}";
            RunIn(connection, ViewJoinSql(connection, repo, view, fields, table, entityColumns, entitiesPath, options),
                $"feature view '{view.Name}' ({view.DefinedIn}) joined with entity file {entitiesPath}");
            foreach (var f in fields)
            {
                var name = options.FullNames ? $"{view.Name}__{f.Name}" : f.Name;
                select.Append(CultureInfo.InvariantCulture, $", {table}.{DuckDb.Id(name)}");
            }
            joins.Append(CultureInfo.InvariantCulture, $" LEFT JOIN {table} ON {table}.__kiln_row = i.rowid");
        }
        return $"{select} FROM __kiln_input i{joins} ORDER BY i.rowid";
    }

    private static string ViewJoinSql(DuckDBConnection connection, FeatureRepository repo, FeatureViewDefinition view,
        List<FeatureField> fields, string table, Dictionary<string, string> entityColumns, string entitiesPath, RetrievalOptions options)
    {
        var source = repo.BatchSource(view);
        var columns = RepositoryValidator.SourceColumns(connection, source);
        var where = $"feature view '{view.Name}' ({view.DefinedIn}), source '{source.Name}' file {source.Path}";
        var keys = repo.JoinKeys(view);
        var inner = new StringBuilder("SELECT ");
        foreach (var key in keys)
        {
            if (!columns.TryGetValue(key, out var sourceType))
                throw new KilnException($"{where}: no column '{key}' for join key '{key}'");
            var entityType = entityColumns[key];
            if (FeatureTypes.Family(sourceType) != FeatureTypes.Family(entityType))
                throw new KilnException($"type mismatch for join key '{key}': entity file {entitiesPath} has {entityType}, {where} has {sourceType}");
            inner.Append(CultureInfo.InvariantCulture, $"CAST({DuckDb.Id(key)} AS {entityType}) AS {DuckDb.Id(key)}, ");
        }
        inner.Append(CultureInfo.InvariantCulture, $"{DuckDb.NormalizeTimestamp(DuckDb.Id(source.TimestampField), columns[source.TimestampField])} AS __kiln_ets, ");
        inner.Append(source.CreatedTimestampColumn is { } created
            ? $"{DuckDb.NormalizeTimestamp(DuckDb.Id(created), columns[created])} AS __kiln_cts"
            : "CAST(NULL AS TIMESTAMP) AS __kiln_cts");
        foreach (var f in fields)
        {
            if (!columns.TryGetValue(f.Name, out var type))
                throw new KilnException($"{where}: no column '{f.Name}' for feature '{f.Name}'");
            if (!f.Dtype.Accepts(type))
                throw new KilnException($"{where}: type mismatch for feature '{f.Name}': column is {type}, the schema says {f.Dtype.Name()}");
            inner.Append(CultureInfo.InvariantCulture, $", CAST({DuckDb.Id(f.Name)} AS {f.Dtype.DuckDbType()}) AS {DuckDb.Id("__f_" + f.Name)}");
        }
        inner.Append(CultureInfo.InvariantCulture, $" FROM {DuckDb.SourceRelation(source)}");

        var ttlMicros = view.Ttl.Ticks / 10;
        var ttl = $"INTERVAL '{ttlMicros} microseconds'";
        var prune = "s.__kiln_ets <= (SELECT max(__kiln_ts) FROM __kiln_entities)";
        if (ttlMicros > 0) prune += $" AND s.__kiln_ets >= (SELECT min(__kiln_ts) FROM __kiln_entities) - {ttl}";
        // The ASOF JOIN picks, per entity row, the feature row with the greatest ordering value at or below the entity's.
        // With a created column, the ordering value is (event time, created time) packed into one HUGEINT: event
        // microseconds in the high 64 bits, created microseconds (shifted to be non-negative; none = 0, so a row
        // without one loses) in the low 64. The entity side sets the low bits to their maximum, so "latest event at or
        // before, then latest created" is one ASOF JOIN, with no deduplicating window over the source first.
        var hasCreated = source.CreatedTimestampColumn is not null;
        var order = hasCreated
            ? "epoch_us(s.__kiln_ets)::HUGEINT * 18446744073709551616 + (coalesce(epoch_us(s.__kiln_cts), -9223372036854775808)::HUGEINT + 9223372036854775808)"
            : "s.__kiln_ets";
        var dedup = $"SELECT *, {order} AS __kiln_ord FROM ({inner}) s WHERE {prune}";
        var entityOrder = hasCreated ? "epoch_us(__kiln_ts)::HUGEINT * 18446744073709551616 + 18446744073709551615" : "__kiln_ts";

        var sql = new StringBuilder($"CREATE TEMP TABLE {table} AS SELECT e.__kiln_row");
        foreach (var f in fields)
        {
            var name = options.FullNames ? $"{view.Name}__{f.Name}" : f.Name;
            var value = $"d.{DuckDb.Id("__f_" + f.Name)}";
            sql.Append(ttlMicros > 0
                ? $", CASE WHEN d.__kiln_ets >= e.__kiln_ts - {ttl} THEN {value} END AS {DuckDb.Id(name)}"
                : $", {value} AS {DuckDb.Id(name)}");
        }
        var on = string.Join(" AND ", keys.Select(k => $"e.{DuckDb.Id(k)} = d.{DuckDb.Id(k)}"));
        sql.Append(CultureInfo.InvariantCulture, $" FROM (SELECT *, {entityOrder} AS __kiln_ord FROM __kiln_entities) e ASOF LEFT JOIN ({dedup}) d ON {on} AND e.__kiln_ord >= d.__kiln_ord");
        return sql.ToString();
    }

    private static void RunIn(DuckDBConnection connection, string sql, string context)
    {
        try
        {
            DuckDb.Execute(connection, sql);
        }
        catch (DuckDBException e)
        {
            throw new KilnException($"{context}: {RepositoryValidator.FirstLine(e.Message)}", e);
        }
    }

    private static void Run(DuckDBConnection connection, string sql, string entitiesPath, string? column = null)
    {
        try
        {
            DuckDb.Execute(connection, sql);
        }
        catch (DuckDBException e)
        {
            var what = column is null ? "" : $" column '{column}'";
            throw new KilnException($"entity file {entitiesPath}{what}: {RepositoryValidator.FirstLine(e.Message)}", e);
        }
    }
}
