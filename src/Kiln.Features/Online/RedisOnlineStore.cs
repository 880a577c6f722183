using System.Globalization;
using Kiln.Core;
using StackExchange.Redis;

namespace Kiln.Features.Online;

/// <summary>
/// The online store on Redis: one hash per view and entity (<c>kiln:{project}:{view}:{key}</c>) holding the event
/// time, created time and payload; a Lua script compares times and writes in one atomic step.
/// </summary>
public sealed class RedisOnlineStore : IOnlineStore
{
    // KEYS[1] the hash; ARGV event micros, created micros, payload. Writes only when not older than what is there.
    private const string WriteScript = """
        local cur = redis.call('HMGET', KEYS[1], 'e', 'c')
        if cur[1] then
          local ce = tonumber(cur[1])
          local ne = tonumber(ARGV[1])
          if ne < ce then return 0 end
          if ne == ce and tonumber(ARGV[2]) < tonumber(cur[2]) then return 0 end
        end
        redis.call('HSET', KEYS[1], 'e', ARGV[1], 'c', ARGV[2], 'p', ARGV[3])
        return 1
        """;

    private static readonly RedisValue[] _readFields = ["e", "p"];
    private readonly ConnectionMultiplexer _redis;
    private readonly IDatabase _db;

    private RedisOnlineStore(ConnectionMultiplexer redis)
    {
        _redis = redis;
        _db = redis.GetDatabase();
    }

    public static async Task<RedisOnlineStore> ConnectAsync(string configuration, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            var options = ConfigurationOptions.Parse(configuration);
            options.AbortOnConnectFail = true;
            options.ConnectTimeout = 5000;
            var redis = await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
            return new RedisOnlineStore(redis);
        }
        catch (RedisConnectionException e)
        {
            throw new KilnException($"online store redis {configuration}: cannot connect ({e.Message.Split('\n')[0]})", e);
        }
    }

    private static RedisKey Key(string project, string view, string entityKey) => $"kiln:{project}:{view}:{entityKey}";

    public async Task<int> WriteAsync(string project, string view, IReadOnlyList<OnlineRow> rows, CancellationToken cancellationToken = default)
    {
        const int window = 2000;
        var written = 0;
        var pending = new Task<RedisResult>[Math.Min(window, rows.Count)];
        for (var start = 0; start < rows.Count; start += window)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(window, rows.Count - start);
            for (var i = 0; i < n; i++)
            {
                var row = rows[start + i];
                pending[i] = _db.ScriptEvaluateAsync(WriteScript, [Key(project, view, row.EntityKey)],
                    [row.EventMicros, row.CreatedMicros, row.Payload]);
            }
            for (var i = 0; i < n; i++) written += (int)await pending[i].ConfigureAwait(false);
        }
        return written;
    }

    public async Task<OnlineRecord?[]> ReadAsync(string project, string view, IReadOnlyList<string> entityKeys, CancellationToken cancellationToken = default)
    {
        var tasks = new Task<RedisValue[]>[entityKeys.Count];
        for (var i = 0; i < tasks.Length; i++) tasks[i] = _db.HashGetAsync(Key(project, view, entityKeys[i]), _readFields);
        var result = new OnlineRecord?[entityKeys.Count];
        for (var i = 0; i < tasks.Length; i++)
        {
            var values = await tasks[i].ConfigureAwait(false);
            if (values[0].IsNull || values[1].IsNull) continue;
            result[i] = new OnlineRecord(long.Parse((string)values[0]!, CultureInfo.InvariantCulture), (string)values[1]!);
        }
        return result;
    }

    public async Task DeleteViewAsync(string project, string view, CancellationToken cancellationToken = default)
    {
        foreach (var endpoint in _redis.GetEndPoints())
        {
            var server = _redis.GetServer(endpoint);
            if (server.IsReplica) continue;
            var batch = new List<RedisKey>();
            await foreach (var key in server.KeysAsync(pattern: $"kiln:{project}:{view}:*", pageSize: 1000).WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                batch.Add(key);
                if (batch.Count == 1000)
                {
                    await _db.KeyDeleteAsync([.. batch]).ConfigureAwait(false);
                    batch.Clear();
                }
            }
            if (batch.Count > 0) await _db.KeyDeleteAsync([.. batch]).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync() => await _redis.DisposeAsync().ConfigureAwait(false);
}
