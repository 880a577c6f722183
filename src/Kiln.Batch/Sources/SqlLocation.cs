using System.Data.Common;
using Kiln.Core;
using Kiln.Storage;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Kiln.Batch.Sources;

/// <summary>Which SQL engine a location names.</summary>
internal enum SqlDialect
{
    Sqlite,
    Postgres,
}

/// <summary>
/// A table or query in SQLite or PostgreSQL: sqlite:////abs/path.db?table=T, sqlite:///relative.db?query=SELECT…,
/// postgresql://user:password@host:port/database?table=schema.T&amp;key=id. The query parameter, when given,
/// must come last: the rest of the URI is the query, so it may hold '&amp;' and '='.
/// </summary>
internal sealed record SqlLocation(SqlDialect Dialect, string ConnectionString, string Display, string? Table, string? Query, string? Key)
{
    public static SqlLocation Parse(string uri, string option)
    {
        var q = uri.IndexOf('?', StringComparison.Ordinal);
        var head = q < 0 ? uri : uri[..q];
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        if (q >= 0)
        {
            var rest = uri[(q + 1)..];
            while (rest.Length > 0)
            {
                if (rest.StartsWith("query=", StringComparison.Ordinal))
                {
                    parameters["query"] = Uri.UnescapeDataString(rest["query=".Length..]);
                    break;
                }
                var amp = rest.IndexOf('&', StringComparison.Ordinal);
                var pair = amp < 0 ? rest : rest[..amp];
                rest = amp < 0 ? "" : rest[(amp + 1)..];
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0) throw new KilnException($"{option} {uri}: '{pair}' is not a name=value parameter");
                parameters[pair[..eq]] = Uri.UnescapeDataString(pair[(eq + 1)..]);
            }
        }
        foreach (var name in parameters.Keys)
            if (name is not ("table" or "query" or "key")) throw new KilnException($"{option} {uri}: unknown parameter '{name}' (use table, query, key)");
        parameters.TryGetValue("table", out var table);
        parameters.TryGetValue("query", out var query);
        parameters.TryGetValue("key", out var key);
        if (table is not null && query is not null) throw new KilnException($"{option} {uri}: give table or query, not both");
        if (table is null && query is null) throw new KilnException($"{option} {uri}: name a table (?table=NAME) or a query (?query=SELECT ...)");

        // The database part follows the one location grammar (docs/cli.md#locations): sqlite:///relative.db,
        // sqlite:////absolute/path.db, postgresql://user:password@host:port/database.
        var location = StorageLocation.Parse(head, option);
        switch (location.Kind)
        {
            case StorageKind.Sqlite:
                var cs = new SqliteConnectionStringBuilder { DataSource = location.SqlitePath, DefaultTimeout = 60, Pooling = false };
                return new SqlLocation(SqlDialect.Sqlite, cs.ConnectionString, location.Display, table, query, key);
            case StorageKind.Postgres:
                var builder = new NpgsqlConnectionStringBuilder(location.PostgresConnectionString) { Pooling = false };
                return new SqlLocation(SqlDialect.Postgres, builder.ConnectionString, location.Display, table, query, key);
            default:
                throw new KilnException($"{option} {uri}: a server URL is not a SQL table; give sqlite:///FILE?table=T or postgresql://...?table=T");
        }
    }

    public async Task<DbConnection> OpenAsync(CancellationToken ct)
    {
        DbConnection connection = Dialect == SqlDialect.Sqlite ? new SqliteConnection(ConnectionString) : new NpgsqlConnection(ConnectionString);
        try
        {
            await connection.OpenAsync(ct).ConfigureAwait(false);
            if (Dialect == SqlDialect.Sqlite)
            {
                using var pragma = connection.CreateCommand();
                pragma.CommandText = "PRAGMA journal_mode=WAL;";
                await pragma.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            return connection;
        }
        catch (DbException e)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new KilnException($"{Display}: cannot connect ({e.Message})", e);
        }
    }

    /// <summary>A quoted identifier; schema.table is quoted part by part.</summary>
    public static string Quote(string name) =>
        string.Join('.', name.Split('.').Select(p => "\"" + p.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""));
}
