using System.Globalization;
using DuckDB.NET.Data;

namespace Kiln.Features.Tests;

/// <summary>Writes small typed tables to Parquet or CSV for tests (through DuckDB, so types are exact).</summary>
internal static class TestData
{
    public static void Write(string path, (string Name, string Type)[] columns, IEnumerable<object?[]> rows)
    {
        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        Exec(connection, "SET TimeZone = 'UTC'");
        Exec(connection, $"CREATE TABLE t ({string.Join(", ", columns.Select(c => $"\"{c.Name}\" {c.Type}"))})");
        using (var appender = connection.CreateAppender("t"))
        {
            foreach (var values in rows)
            {
                var row = appender.CreateRow();
                foreach (var v in values)
                {
                    switch (v)
                    {
                        case null: row.AppendNullValue(); break;
                        case long l: row.AppendValue(l); break;
                        case int i: row.AppendValue(i); break;
                        case double d: row.AppendValue(d); break;
                        case string s: row.AppendValue(s); break;
                        case bool b: row.AppendValue(b); break;
                        case DateTime t: row.AppendValue(t); break;
                        default: throw new ArgumentException($"unsupported {v.GetType()}");
                    }
                }
                row.EndRow();
            }
        }
        var format = path.EndsWith(".csv", StringComparison.Ordinal) ? "FORMAT csv, HEADER true" : "FORMAT parquet";
        Exec(connection, $"COPY t TO '{path}' ({format})");
    }

    public static void Exec(DuckDBConnection connection, string sql)
    {
        using var c = connection.CreateCommand();
        c.CommandText = sql;
        c.ExecuteNonQuery();
    }

    public static DateTime T(int minutes) => new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddMinutes(minutes);

    public static string Iso(DateTime t) => t.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
}
