using System.Collections.Concurrent;
using Kiln.Core;

namespace Kiln.Web.Serving;

/// <summary>A model version a replica serves, as its heartbeat says.</summary>
public sealed record ReplicaModel(string Name, string? Version);

/// <summary>A kiln serve replica kiln server knows of: registered by its heartbeat, or configured.</summary>
public sealed record Replica(Uri Url, IReadOnlyList<ReplicaModel> Models, bool Configured, DateTimeOffset? LastHeartbeat, DateTimeOffset? ExpiresAt);

/// <summary>
/// The kiln serve replicas kiln server knows of, in memory: a replica's heartbeat (kiln serve --register) keeps it
/// listed until three of its heartbeat intervals pass without one; replicas given by --replica are always listed.
/// </summary>
/// <remarks>
/// Held in memory rather than in the metadata database: a replica is a running process, so what matters is whether it
/// beat recently, and after a server restart every live replica is back within one interval. A second kiln server
/// behind the same address sees only the heartbeats it receives.
/// </remarks>
public sealed class ReplicaRegistry
{
    /// <summary>The shortest heartbeat interval accepted, so a replica cannot make the server work harder than this.</summary>
    public static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<string, Replica> _registered = new(StringComparer.Ordinal);
    private readonly IReadOnlyList<Uri> _configured;
    private readonly TimeProvider _time;

    /// <summary>Called after a replica registers (or comes back after expiring): the scraper takes its first scrape at once.</summary>
    public Action<Replica>? FirstHeartbeat { get; set; }

    public ReplicaRegistry(IEnumerable<Uri>? configured = null, TimeProvider? time = null)
    {
        _configured = (configured ?? []).Select(Normalize).DistinctBy(u => u.AbsoluteUri).ToList();
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Records a heartbeat; the replica is listed until three intervals pass without another.</summary>
    /// <exception cref="KilnException">the URL, a model or the interval is not acceptable (the message names the field).</exception>
    public Replica Heartbeat(string? url, IReadOnlyList<ReplicaModel>? models, double? intervalSeconds)
    {
        var uri = ParseUrl(url, "url");
        if (intervalSeconds is not { } seconds || !double.IsFinite(seconds) || seconds < MinInterval.TotalSeconds || seconds > 3600)
            throw new KilnException($"interval_seconds: must be between {MinInterval.TotalSeconds:0} and 3600 (got {intervalSeconds?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "nothing"})");
        var list = models ?? [];
        for (var i = 0; i < list.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(list[i]?.Name)) throw new KilnException($"models[{i}].name: required");
        }
        var now = _time.GetUtcNow();
        var replica = new Replica(uri, list, _configured.Any(c => c.AbsoluteUri == uri.AbsoluteUri), now, now + 3 * TimeSpan.FromSeconds(seconds));
        var added = false;
        _registered.AddOrUpdate(uri.AbsoluteUri, _ => { added = true; return replica; }, (_, old) =>
        {
            added = old.ExpiresAt < now;
            return replica;
        });
        if (added) FirstHeartbeat?.Invoke(replica);
        return replica;
    }

    /// <summary>The live replicas: registered ones whose heartbeat has not expired, then configured ones, by URL.</summary>
    public IReadOnlyList<Replica> Live()
    {
        var now = _time.GetUtcNow();
        var result = new Dictionary<string, Replica>(StringComparer.Ordinal);
        foreach (var (key, r) in _registered)
        {
            if (r.ExpiresAt >= now) result[key] = r;
            else _registered.TryRemove(new KeyValuePair<string, Replica>(key, r));
        }
        foreach (var c in _configured)
        {
            if (!result.ContainsKey(c.AbsoluteUri)) result[c.AbsoluteUri] = new Replica(c, [], true, null, null);
        }
        return result.Values.OrderBy(r => r.Url.AbsoluteUri, StringComparer.Ordinal).ToList();
    }

    /// <summary>Reads a replica list file: one http(s) URL a line; blank lines and lines starting with # are skipped.</summary>
    /// <exception cref="KilnException">the file is missing or a line is not a URL (the message names the file and line).</exception>
    public static List<Uri> ReadFile(string path)
    {
        if (!File.Exists(path)) throw new KilnException($"--replicas-file {path}: no such file");
        var result = new List<Uri>();
        var n = 0;
        foreach (var raw in File.ReadLines(path))
        {
            n++;
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            result.Add(ParseUrl(line, $"--replicas-file {path}, line {n}"));
        }
        return result;
    }

    /// <summary>An absolute http(s) URL of a replica, without its path.</summary>
    public static Uri ParseUrl(string? url, string field)
    {
        if (string.IsNullOrWhiteSpace(url) || !Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            throw new KilnException($"{field}: '{url}' is not an http:// or https:// URL");
        return Normalize(uri);
    }

    private static Uri Normalize(Uri uri) => new(uri.GetLeftPart(UriPartial.Authority) + "/");
}
