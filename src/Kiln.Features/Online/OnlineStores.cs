using Kiln.Core;

namespace Kiln.Features.Online;

/// <summary>Chooses the online store from a location: <c>redis://host:port</c> (or <c>rediss://</c>) for Redis, anything else a SQLite file path.</summary>
public static class OnlineStores
{
    /// <summary>The default location of the embedded online store.</summary>
    public const string DefaultPath = ".kiln/online.db";

    public static async Task<IOnlineStore> OpenAsync(string? location, CancellationToken cancellationToken = default)
    {
        location = string.IsNullOrWhiteSpace(location) ? DefaultPath : location;
        if (location.StartsWith("redis://", StringComparison.OrdinalIgnoreCase) || location.StartsWith("rediss://", StringComparison.OrdinalIgnoreCase))
        {
            var uri = new Uri(location);
            var config = $"{uri.Host}:{(uri.Port > 0 ? uri.Port : 6379)}";
            if (uri.Scheme.Equals("rediss", StringComparison.OrdinalIgnoreCase)) config += ",ssl=true";
            if (uri.UserInfo.Length > 0)
            {
                var parts = uri.UserInfo.Split(':', 2);
                config += parts.Length == 2 ? $",user={Uri.UnescapeDataString(parts[0])},password={Uri.UnescapeDataString(parts[1])}" : $",password={Uri.UnescapeDataString(parts[0])}";
            }
            return await RedisOnlineStore.ConnectAsync(config, cancellationToken).ConfigureAwait(false);
        }
        if (location.Contains("://", StringComparison.Ordinal))
            throw new KilnException($"online store '{location}': unknown scheme (use a SQLite file path or redis://host:port)");
        return await SqliteOnlineStore.OpenAsync(location, cancellationToken).ConfigureAwait(false);
    }
}
