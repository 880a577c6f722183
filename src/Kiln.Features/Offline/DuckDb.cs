using System.Data.Common;
using DuckDB.NET.Data;
using Kiln.Core;
using Kiln.Features.Definitions;

namespace Kiln.Features.Offline;

/// <summary>DuckDB plumbing shared by retrieval, validation and materialization: readers, quoting, timestamps.</summary>
internal static class DuckDb
{
    public static DuckDBConnection Open()
    {
        var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        // Naive timestamps are UTC, and every TIMESTAMPTZ is turned into UTC wall time.
        Execute(connection, "SET TimeZone = 'UTC'");
        return connection;
    }

    public static void Execute(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public static object? Scalar(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        var value = command.ExecuteScalar();
        return value is DBNull ? null : value;
    }

    public static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    public static string Id(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    public static SourceFormat FormatOf(string path, string what) =>
        path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) ? SourceFormat.Csv
        : path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pq", StringComparison.OrdinalIgnoreCase) ? SourceFormat.Parquet
        : throw new KilnException($"{what} {path}: unknown format (use a .parquet or .csv file)");

    public static string Reader(string path, SourceFormat format) => format switch
    {
        SourceFormat.Parquet => $"read_parquet({Literal(path)}, union_by_name = true)",
        _ => $"read_csv({Literal(path)}, header = true, auto_detect = true, union_by_name = true)",
    };

    /// <summary>The folder holding rows pushed to a source's offline store (Parquet parts).</summary>
    public static string PushFolder(SourceDefinition source)
    {
        var path = source.Path;
        var cut = path.IndexOfAny(['*', '?', '[']);
        var dir = Path.GetDirectoryName(cut < 0 ? path : path[..cut]) ?? ".";
        return Path.Combine(dir, ".kiln-pushed", source.Name);
    }

    /// <summary>A relation over the source's files and any rows pushed to it offline.</summary>
    public static string SourceRelation(SourceDefinition source)
    {
        var main = $"SELECT * FROM {Reader(source.Path, source.Format)}";
        var pushed = PushFolder(source);
        if (Directory.Exists(pushed) && Directory.EnumerateFiles(pushed, "*.parquet").Any())
        {
            main += $" UNION ALL BY NAME SELECT * FROM read_parquet({Literal(Path.Combine(pushed, "*.parquet"))}, union_by_name = true)";
        }
        return $"({main})";
    }

    /// <summary>Column names and DuckDB types of a relation, in order.</summary>
    public static List<(string Name, string Type)> Describe(DuckDBConnection connection, string relation)
    {
        using var command = connection.CreateCommand();
        command.CommandText = $"DESCRIBE SELECT * FROM {relation}";
        using var reader = command.ExecuteReader();
        var columns = new List<(string, string)>();
        while (reader.Read()) columns.Add((reader.GetString(0), reader.GetString(1)));
        return columns;
    }

    /// <summary>An expression giving a UTC <c>TIMESTAMP</c> from a column of the given type, or null when the type cannot be a time.</summary>
    public static string? NormalizeTimestamp(string expression, string duckType)
    {
        var t = duckType.ToUpperInvariant();
        if (t is "TIMESTAMP WITH TIME ZONE" or "TIMESTAMPTZ") return $"timezone('UTC', {expression})";
        if (t.StartsWith("TIMESTAMP", StringComparison.Ordinal) || t == "DATE") return $"CAST({expression} AS TIMESTAMP)";
        if (t == "VARCHAR") return $"timezone('UTC', CAST({expression} AS TIMESTAMPTZ))";
        if (FeatureTypes.Family(t) == FeatureTypes.TypeFamily.Integer) return $"timezone('UTC', to_timestamp({expression}))";
        return null;
    }

    /// <summary>Reads a DuckDB value as the CLR value Kiln uses: UTC DateTime for times, long/double/string/bool otherwise.</summary>
    public static object? Value(DbDataReader reader, int ordinal)
    {
        if (reader.IsDBNull(ordinal)) return null;
        var v = reader.GetValue(ordinal);
        return v switch
        {
            DateTime d => DateTime.SpecifyKind(d, DateTimeKind.Utc),
            DateTimeOffset o => o.UtcDateTime,
            _ => v,
        };
    }

    /// <summary>Microseconds since the Unix epoch: how Kiln stores times online.</summary>
    public static long ToMicros(DateTime utc) => (utc.Ticks - DateTime.UnixEpoch.Ticks) / 10;

    public static DateTime FromMicros(long micros) => new(DateTime.UnixEpoch.Ticks + micros * 10, DateTimeKind.Utc);

    public static string TimestampLiteral(DateTime utc) =>
        $"TIMESTAMP '{utc.ToUniversalTime():yyyy-MM-dd HH:mm:ss.ffffff}'";
}
