using Hangfire;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Kiln.Core;
using Kiln.Storage;
using Npgsql;

namespace Kiln.Workers;

/// <summary>How Kiln's job storage is set up: Hangfire's tables in schema <c>hangfire</c> of Kiln's PostgreSQL database.</summary>
public sealed class WorkerStorageOptions
{
    /// <summary>
    /// How long a job fetched by a worker stays invisible to the others. Workers renew it while the job runs (a
    /// sliding timeout), so it bounds only how soon a killed worker's job is picked up by another: 30 s by default.
    /// </summary>
    public TimeSpan InvisibilityTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often an idle worker looks for a job (the latency of picking one up).</summary>
    public TimeSpan QueuePollInterval { get; init; } = TimeSpan.FromMilliseconds(200);
}

/// <summary>Opens Kiln's Hangfire storage on the metadata database, or refuses in one line.</summary>
public static class WorkerStorage
{
    /// <summary>The "workers" area of kiln_schema: a worker and a coordinator of another Kiln version refuse each other's database.</summary>
    internal static readonly SchemaArea Schema = new("workers", "kiln_workers",
    [
        new Migration(1, """
            CREATE TABLE kiln_workers (name TEXT PRIMARY KEY, queues TEXT NOT NULL, started_at TEXT NOT NULL)
            """),
    ]);

    /// <summary>
    /// Checks that <paramref name="location"/> is a reachable PostgreSQL database of a Kiln this build can use (the
    /// <c>workers</c> schema area), and returns Hangfire's storage on it.
    /// </summary>
    /// <param name="option">The option that named the database, for messages.</param>
    public static async Task<JobStorage> OpenAsync(string location, WorkerStorageOptions? options = null, CancellationToken ct = default, string option = "--db")
    {
        options ??= new WorkerStorageOptions();
        var parsed = StorageLocation.Parse(location, option);
        if (parsed.Kind != StorageKind.Postgres || parsed.PostgresConnectionString is not { } cs)
            throw new KilnException($"{option} {parsed.Display}: workers share their jobs through PostgreSQL; give a postgresql:// URI (SQLite is one machine's)");
        var builder = new NpgsqlConnectionStringBuilder(cs);
        if (builder.Timeout > 10) builder.Timeout = 10;
        cs = builder.ConnectionString;
        try
        {
            var db = MetadataDatabase.Open(parsed);
            await using var dbScope = db.ConfigureAwait(false);
            await db.EnsureSchemaAsync(Schema, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw new KilnException($"{option} {parsed.Display}: cannot reach the database ({e.Message})", e);
        }
        var storageOptions = new PostgreSqlStorageOptions
        {
            SchemaName = "hangfire",
            PrepareSchemaIfNecessary = true,
            InvisibilityTimeout = options.InvisibilityTimeout,
            UseSlidingInvisibilityTimeout = true,
            QueuePollInterval = options.QueuePollInterval,
            // PostgreSQL's NOTIFY wakes an idle worker when a job is enqueued (the poll interval stays the fallback):
            // a pipeline task is taken in milliseconds rather than at the next poll.
            EnableLongPolling = true,
            // A lock left by a killed worker (a job's state change) blocks others for at most this long.
            DistributedLockTimeout = TimeSpan.FromMinutes(1),
        };
        return new PostgreSqlStorage(new NpgsqlConnectionFactory(cs, storageOptions), storageOptions);
    }
}
