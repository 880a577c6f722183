using Npgsql;

namespace Kiln.Workers.Pipelines;

/// <summary>
/// Tells coordinators that an attempt changed (PostgreSQL's NOTIFY on channel <c>kiln_pipeline_attempts</c>, the run
/// id as payload), so a coordinator waiting for a task learns of it at once rather than at its next poll. An attempt's
/// end needs no call here: the store notifies in the same round trip as it records the end.
/// </summary>
public sealed class AttemptNotifier(NpgsqlDataSource source) : IAsyncDisposable
{
    /// <summary>The channel coordinators listen on.</summary>
    public const string Channel = Kiln.Pipelines.State.SqlPipelineStore.AttemptChannel;

    public async Task NotifyAsync(string runId)
    {
        try
        {
            var cmd = source.CreateCommand("SELECT pg_notify('" + Channel + "', $1)");
            await using var cmdScope = cmd.ConfigureAwait(false);
            cmd.Parameters.AddWithValue(runId);
            await cmd.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        catch (NpgsqlException)
        {
            // A lost notification costs the coordinator one poll interval, nothing more.
        }
    }

    public ValueTask DisposeAsync() => source.DisposeAsync();
}

/// <summary>
/// A coordinator's ear on <see cref="AttemptNotifier.Channel"/>: one listening connection; <see cref="Next"/> completes at
/// the next notification. Waiters poll the store too (a lost connection is reopened), so a missed signal only delays.
/// </summary>
public sealed class AttemptSignals : IAsyncDisposable
{
    private readonly string _connectionString;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public AttemptSignals(string connectionString)
    {
        _connectionString = connectionString;
        _loop = Task.Run(ListenAsync);
    }

    /// <summary>Completes at the next notification; take it before reading the store, then wait on it.</summary>
    public Task Next => Volatile.Read(ref _next).Task;

    private void Pulse() => Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private async Task ListenAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var conn = new NpgsqlConnection(_connectionString);
                await using (conn.ConfigureAwait(false))
                {
                    conn.Notification += (_, _) => Pulse();
                    await conn.OpenAsync(_stop.Token).ConfigureAwait(false);
                    var cmd = new NpgsqlCommand("LISTEN " + AttemptNotifier.Channel, conn);
                    await using (cmd.ConfigureAwait(false))
                        await cmd.ExecuteNonQueryAsync(_stop.Token).ConfigureAwait(false);
                    Pulse(); // anything missed while not listening
                    while (true) await conn.WaitAsync(_stop.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException or InvalidOperationException)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
