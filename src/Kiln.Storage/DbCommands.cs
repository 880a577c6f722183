using System.Data.Common;

namespace Kiln.Storage;

/// <summary>
/// The few ADO.NET helpers every store uses: a command with named parameters (null becomes DBNull),
/// execute, scalar, query into a list, and typed readers that accept SQLite's and PostgreSQL's
/// integer widths alike.
/// </summary>
public static class DbCommands
{
    public static DbCommand Command(this DbConnection c, DbTransaction? tx, string sql, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        foreach (var (name, value) in parameters) cmd.AddParameter(name, value);
        return cmd;
    }

    /// <summary>Adds a named parameter (null becomes DBNull) and returns it, so a prepared command can rebind it.</summary>
    public static DbParameter AddParameter(this DbCommand cmd, string name, object? value)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = name;
        p.Value = value ?? DBNull.Value;
        cmd.Parameters.Add(p);
        return p;
    }

    public static async Task<int> ExecAsync(this DbConnection c, DbTransaction? tx, string sql, CancellationToken ct,
        params (string Name, object? Value)[] parameters)
    {
        using var cmd = c.Command(tx, sql, parameters);
        return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    public static async Task<object?> ScalarAsync(this DbConnection c, DbTransaction? tx, string sql, CancellationToken ct,
        params (string Name, object? Value)[] parameters)
    {
        using var cmd = c.Command(tx, sql, parameters);
        var v = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
        return v is DBNull ? null : v;
    }

    public static async Task<List<T>> QueryAsync<T>(this DbConnection c, DbTransaction? tx, string sql, Func<DbDataReader, T> map,
        CancellationToken ct, params (string Name, object? Value)[] parameters)
    {
        using var cmd = c.Command(tx, sql, parameters);
        return await cmd.QueryAsync(map, ct).ConfigureAwait(false);
    }

    public static async Task<List<T>> QueryAsync<T>(this DbCommand cmd, Func<DbDataReader, T> map, CancellationToken ct)
    {
        var list = new List<T>();
        using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(map(r));
        return list;
    }

    public static string? NullableString(this DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    public static long? NullableInt64(this DbDataReader r, int i) => r.IsDBNull(i) ? null : Convert.ToInt64(r.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);

    public static long Int64(this DbDataReader r, int i) => Convert.ToInt64(r.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);

    public static int Int32(this DbDataReader r, int i) => Convert.ToInt32(r.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);
}
