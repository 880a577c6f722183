using System.Collections.Concurrent;
using System.Text;
using Microsoft.Data.Sqlite;

namespace Kiln.Features.Online;

/// <summary>The embedded online store: one SQLite table, WAL mode; a write is an upsert whose WHERE keeps the newer row.</summary>
public sealed class SqliteOnlineStore : IOnlineStore
{
    private const string UpsertSql = """
        INSERT INTO feature_online (project, view, entity_key, event_ts, created_ts, payload) VALUES ($p, $v, $k, $e, $c, $d)
        ON CONFLICT (project, view, entity_key) DO UPDATE SET
            event_ts = excluded.event_ts, created_ts = excluded.created_ts, payload = excluded.payload
        WHERE excluded.event_ts > feature_online.event_ts
           OR (excluded.event_ts = feature_online.event_ts AND excluded.created_ts >= feature_online.created_ts)
        """;

    private readonly string _connectionString;

    // Open connections with the single-key read prepared: the hot path of serving does no open or parse per read.
    private readonly ConcurrentBag<PointReader> _readers = [];

    private SqliteOnlineStore(string connectionString) => _connectionString = connectionString;

    private sealed class PointReader : IDisposable
    {
        public PointReader(string connectionString)
        {
            Connection = new SqliteConnection(connectionString);
            Connection.Open();
            Command = Connection.CreateCommand();
            Command.CommandText = "SELECT event_ts, payload FROM feature_online WHERE project = $p AND view = $v AND entity_key = $k";
            Project = Command.Parameters.Add("$p", SqliteType.Text);
            View = Command.Parameters.Add("$v", SqliteType.Text);
            Key = Command.Parameters.Add("$k", SqliteType.Text);
            Command.Prepare();
        }

        public SqliteConnection Connection { get; }
        public SqliteCommand Command { get; }
        public SqliteParameter Project { get; }
        public SqliteParameter View { get; }
        public SqliteParameter Key { get; }

        public void Dispose()
        {
            Command.Dispose();
            Connection.Dispose();
        }
    }

    public static async Task<SqliteOnlineStore> OpenAsync(string path, CancellationToken cancellationToken = default)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var cs = new SqliteConnectionStringBuilder { DataSource = full, Pooling = true, DefaultTimeout = 30 }.ToString();
        var store = new SqliteOnlineStore(cs);
        var c = await store.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        using var cmd = c.CreateCommand();
        cmd.CommandText = """
            PRAGMA journal_mode = WAL;
            PRAGMA busy_timeout = 10000;
            CREATE TABLE IF NOT EXISTS feature_online (
                project TEXT NOT NULL, view TEXT NOT NULL, entity_key TEXT NOT NULL,
                event_ts INTEGER NOT NULL, created_ts INTEGER NOT NULL, payload TEXT NOT NULL,
                PRIMARY KEY (project, view, entity_key)) WITHOUT ROWID;
            """;
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return store;
    }

    private async Task<SqliteConnection> OpenConnectionAsync(CancellationToken ct)
    {
        var c = new SqliteConnection(_connectionString);
        await c.OpenAsync(ct).ConfigureAwait(false);
        return c;
    }

    public async Task<int> WriteAsync(string project, string view, IReadOnlyList<OnlineRow> rows, CancellationToken cancellationToken = default)
    {
        if (rows.Count == 0) return 0;
        var c = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        using (var pragma = c.CreateCommand())
        {
            // WAL makes NORMAL durable at commit boundaries; a larger cache keeps the key index in memory during bulk loads.
            pragma.CommandText = "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;";
            pragma.ExecuteNonQuery();
        }
        using var tx = c.BeginTransaction();
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = UpsertSql;
        cmd.Parameters.AddWithValue("$p", project);
        cmd.Parameters.AddWithValue("$v", view);
        var k = cmd.Parameters.Add("$k", SqliteType.Text);
        var e = cmd.Parameters.Add("$e", SqliteType.Integer);
        var cr = cmd.Parameters.Add("$c", SqliteType.Integer);
        var d = cmd.Parameters.Add("$d", SqliteType.Text);
        cmd.Prepare();
        var written = 0;
        foreach (var row in rows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            k.Value = row.EntityKey;
            e.Value = row.EventMicros;
            cr.Value = row.CreatedMicros;
            d.Value = row.Payload;
            written += cmd.ExecuteNonQuery();
        }
        tx.Commit();
        return written;
    }

    public async Task<OnlineRecord?[]> ReadAsync(string project, string view, IReadOnlyList<string> entityKeys, CancellationToken cancellationToken = default)
    {
        var result = new OnlineRecord?[entityKeys.Count];
        if (entityKeys.Count == 0) return result;
        if (entityKeys.Count == 1)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!_readers.TryTake(out var point)) point = new PointReader(_connectionString);
            try
            {
                point.Project.Value = project;
                point.View.Value = view;
                point.Key.Value = entityKeys[0];
                using var r = point.Command.ExecuteReader();
                if (r.Read()) result[0] = new OnlineRecord(r.GetInt64(0), r.GetString(1));
            }
            catch
            {
                point.Dispose();
                throw;
            }
            _readers.Add(point);
            return result;
        }
        var c = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        var distinct = entityKeys.Distinct().ToList();
        var found = new Dictionary<string, OnlineRecord>(StringComparer.Ordinal);
        const int chunk = 500;
        for (var start = 0; start < distinct.Count; start += chunk)
        {
            using var cmd = c.CreateCommand();
            cmd.Parameters.AddWithValue("$p", project);
            cmd.Parameters.AddWithValue("$v", view);
            var sql = new StringBuilder("SELECT entity_key, event_ts, payload FROM feature_online WHERE project = $p AND view = $v AND entity_key IN (");
            for (var i = start; i < Math.Min(distinct.Count, start + chunk); i++)
            {
                sql.Append(i == start ? "$k" : ", $k").Append(i);
                cmd.Parameters.AddWithValue("$k" + i, distinct[i]);
            }
            cmd.CommandText = sql.Append(')').ToString();
            using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                found[reader.GetString(0)] = new OnlineRecord(reader.GetInt64(1), reader.GetString(2));
            }
        }
        for (var i = 0; i < entityKeys.Count; i++)
        {
            if (found.TryGetValue(entityKeys[i], out var r)) result[i] = r;
        }
        return result;
    }

    public async Task DeleteViewAsync(string project, string view, CancellationToken cancellationToken = default)
    {
        var c = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        using var cmd = c.CreateCommand();
        cmd.CommandText = "DELETE FROM feature_online WHERE project = $p AND view = $v";
        cmd.Parameters.AddWithValue("$p", project);
        cmd.Parameters.AddWithValue("$v", view);
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync()
    {
        while (_readers.TryTake(out var reader)) reader.Dispose();
        return ValueTask.CompletedTask;
    }
}
