using DuckDB.NET.Data;

namespace Kiln.Testing;

/// <summary>
/// DuckDB as the independent Parquet implementation in tests: writes test files with exact types and reads back
/// what Kiln wrote. A linked source file (not part of Kiln.Testing's own build, so only the test projects that
/// reference DuckDB carry its native library): see the Compile items in Kiln.Core.Tests and Kiln.Batch.Tests.
/// </summary>
internal static class DuckSql
{
    /// <summary>Runs one statement (a COPY ... TO a file, usually) in a fresh in-memory database.</summary>
    public static void Exec(string sql)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>Every row of a query, each cell as DuckDB.NET gives it (null for SQL NULL).</summary>
    public static List<object?[]> Rows(string sql)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<object?[]>();
        while (reader.Read())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++) row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            rows.Add(row);
        }
        return rows;
    }

    /// <summary>The first cell of a query's result.</summary>
    public static object? Scalar(string sql)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    /// <summary>One column of a Parquet file as DuckDB reads it, in file order (null for missing).</summary>
    public static List<object?> Column(string path, string column) =>
        Rows($"SELECT \"{column}\" FROM read_parquet('{path}', file_row_number = true) ORDER BY file_row_number").Select(r => r[0]).ToList();

    // Time zone UTC, so TIMESTAMPTZ values come back the same on every machine.
    private static DuckDBConnection Open()
    {
        var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var set = connection.CreateCommand();
        set.CommandText = "SET TimeZone = 'UTC'";
        set.ExecuteNonQuery();
        return connection;
    }
}
