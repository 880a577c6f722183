using Kiln.Core;
using Npgsql;

namespace Kiln.Storage;

/// <summary>What a metadata location names.</summary>
public enum StorageKind
{
    /// <summary>A SQLite file opened in this process.</summary>
    Sqlite,

    /// <summary>A PostgreSQL database opened in this process.</summary>
    Postgres,

    /// <summary>A kiln server reached over HTTP; the area's REST client stands in for the database.</summary>
    Remote,
}

/// <summary>
/// A parsed metadata location: the one grammar of <c>--db</c>, <c>--tracking-uri</c>, <c>--registry</c> and
/// <c>$KILN_TRACKING_URI</c> (docs/cli.md#locations). SQLAlchemy's spelling as MLflow reads it:
/// <c>sqlite:///relative.db</c>, <c>sqlite:////absolute/path.db</c>, <c>postgresql://user:pass@host:port/db?k=v</c>,
/// an Npgsql connection string (<c>Host=...</c>), <c>http(s)://</c> for a kiln server, or a bare path
/// (a directory holding kiln.db, or a file with an extension such as <c>x.db</c>).
/// </summary>
public sealed record StorageLocation
{
    private StorageLocation(StorageKind kind, string original, string display)
    {
        Kind = kind;
        Original = original;
        Display = display;
    }

    public StorageKind Kind { get; }

    /// <summary>The text as the user gave it.</summary>
    public string Original { get; }

    /// <summary>Where the data lives, fit for messages and logs: never a password.</summary>
    public string Display { get; }

    /// <summary>The SQLite file, as a full path (for <see cref="StorageKind.Sqlite"/>).</summary>
    public string? SqlitePath { get; private init; }

    /// <summary>The Npgsql connection string (for <see cref="StorageKind.Postgres"/>).</summary>
    public string? PostgresConnectionString { get; private init; }

    /// <summary>The server's base address (for <see cref="StorageKind.Remote"/>).</summary>
    public Uri? Server { get; private init; }

    /// <summary>The folder next to the SQLite file, where local artifacts go by default.</summary>
    public string? SqliteDirectory => SqlitePath is null ? null : System.IO.Path.GetDirectoryName(SqlitePath);

    public override string ToString() => Display;

    /// <summary>True for http:// and https://, the only forms that do not name a database.</summary>
    public static bool IsServer(string? value) =>
        value is not null && (value.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || value.StartsWith("https://", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Parses a location. <paramref name="option"/> names the option or variable in error messages;
    /// <paramref name="warn"/> receives one-line warnings about old spellings (default: standard error).
    /// </summary>
    public static StorageLocation Parse(string value, string option = "location", Action<string>? warn = null)
    {
        warn ??= Warn;
        if (string.IsNullOrWhiteSpace(value)) throw new KilnException($"{option}: empty location; give a directory, sqlite:///FILE, postgresql://... or http(s)://");
        if (IsServer(value))
        {
            if (!Uri.TryCreate(value, UriKind.Absolute, out var server) || server.Host.Length == 0)
                throw new KilnException($"{option} {value}: not a valid server URL (http://host:port)");
            return new StorageLocation(StorageKind.Remote, value, value) { Server = server };
        }
        if (value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase))
        {
            warn($"warning: {option}: the spelling is postgresql://, not postgres:// (accepted for now)");
            return Postgres(value, "postgresql://" + value["postgres://".Length..], option);
        }
        if (value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase)) return Postgres(value, value, option);
        if (value.Contains("Host=", StringComparison.OrdinalIgnoreCase) && value.Contains('=', StringComparison.Ordinal) && !value.Contains("://", StringComparison.Ordinal))
        {
            NpgsqlConnectionStringBuilder b;
            try { b = new NpgsqlConnectionStringBuilder(value); }
            catch (ArgumentException e) { throw new KilnException($"{option}: not a valid PostgreSQL connection string ({e.Message})", e); }
            return new StorageLocation(StorageKind.Postgres, value, $"postgresql://{b.Host}:{b.Port}/{b.Database ?? b.Username}") { PostgresConnectionString = b.ConnectionString };
        }
        if (value.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase)) return Sqlite(value, option, warn);
        if (value.StartsWith("file://", StringComparison.OrdinalIgnoreCase))
        {
            if (!Uri.TryCreate(value, UriKind.Absolute, out var file)) throw new KilnException($"{option} {value}: not a valid file:// URI");
            return BarePath(value, file.LocalPath);
        }
        var scheme = value.IndexOf("://", StringComparison.Ordinal);
        if (scheme > 0)
            throw new KilnException($"{option} {value}: unsupported scheme '{value[..scheme]}'; use a directory, sqlite:///FILE, postgresql://... or http(s)://");
        return BarePath(value, value);
    }

    /// <summary>A SQLite file named directly, whatever its extension.</summary>
    public static StorageLocation SqliteFile(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        return new StorageLocation(StorageKind.Sqlite, path, full) { SqlitePath = full };
    }

    private static StorageLocation BarePath(string original, string path)
    {
        // A directory holds kiln.db; a name with an extension (x.db, x.sqlite) is the file itself. A leading dot is
        // not an extension: ./.kiln is the default directory.
        var name = System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(path)).TrimStart('.');
        var file = File.Exists(path) ? path : Directory.Exists(path) || !System.IO.Path.HasExtension(name) ? System.IO.Path.Combine(path, "kiln.db") : path;
        var full = System.IO.Path.GetFullPath(file);
        return new StorageLocation(StorageKind.Sqlite, original, full) { SqlitePath = full };
    }

    private static StorageLocation Sqlite(string value, string option, Action<string> warn)
    {
        var rest = value["sqlite:".Length..];
        var q = rest.IndexOf('?', StringComparison.Ordinal);
        if (q >= 0) rest = rest[..q];
        string path;
        if (rest.StartsWith("///", StringComparison.Ordinal))
        {
            // SQLAlchemy: three slashes end the (empty) host; what follows is the path, relative unless it starts with '/'.
            path = Uri.UnescapeDataString(rest[3..]);
        }
        else if (rest.StartsWith("//", StringComparison.Ordinal))
        {
            throw new KilnException($"{option} {value}: a SQLite URI has three slashes before the path: sqlite:///relative.db or sqlite:////absolute/path.db");
        }
        else
        {
            path = Uri.UnescapeDataString(rest);
            if (path.Length > 0) warn($"warning: {option}: the spelling is sqlite:///{path}, not {value} (accepted for now)");
        }
        if (path.Length == 0) throw new KilnException($"{option} {value}: no database file (sqlite:///relative.db or sqlite:////absolute/path.db)");
        if (!System.IO.Path.IsPathRooted(path) && !File.Exists(path) && File.Exists("/" + path))
            warn($"warning: {option}: sqlite:///{path} is {System.IO.Path.GetFullPath(path)}, relative to the current directory; for /{path} write sqlite:////{path}");
        var full = System.IO.Path.GetFullPath(path);
        return new StorageLocation(StorageKind.Sqlite, value, full) { SqlitePath = full };
    }

    private static StorageLocation Postgres(string original, string uri, string option)
    {
        if (!Uri.TryCreate(uri, UriKind.Absolute, out var u) || u.Host.Length == 0)
            throw new KilnException($"{option}: invalid PostgreSQL URI '{Redact(original)}': expected postgresql://user:password@host:port/database");
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = Uri.UnescapeDataString(u.Host),
            Port = u.IsDefaultPort || u.Port <= 0 ? 5432 : u.Port,
            Database = Uri.UnescapeDataString(u.AbsolutePath.Trim('/')) is { Length: > 0 } db ? db : "postgres",
        };
        if (u.UserInfo.Length > 0)
        {
            var colon = u.UserInfo.IndexOf(':', StringComparison.Ordinal);
            b.Username = Uri.UnescapeDataString(colon < 0 ? u.UserInfo : u.UserInfo[..colon]);
            if (colon >= 0) b.Password = Uri.UnescapeDataString(u.UserInfo[(colon + 1)..]);
        }
        foreach (var pair in u.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            try
            {
                b[Uri.UnescapeDataString(kv[0])] = kv.Length > 1 ? Uri.UnescapeDataString(kv[1]) : "";
            }
            catch (ArgumentException e)
            {
                throw new KilnException($"{option}: unknown PostgreSQL parameter '{kv[0]}' in {Redact(original)}", e);
            }
        }
        return new StorageLocation(StorageKind.Postgres, original, $"postgresql://{b.Host}:{b.Port}/{b.Database}") { PostgresConnectionString = b.ConnectionString };
    }

    /// <summary>The location without a password: user:secret@ becomes user@, Password=... is left out.</summary>
    public static string Redact(string location)
    {
        var scheme = location.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            var at = location.IndexOf('@', scheme);
            if (at < 0) return location;
            var colon = location.IndexOf(':', scheme + 3);
            return colon >= 0 && colon < at ? location[..colon] + location[at..] : location;
        }
        if (!location.Contains('=', StringComparison.Ordinal)) return location;
        return string.Join(';', location.Split(';').Where(p => !p.TrimStart().StartsWith("Password", StringComparison.OrdinalIgnoreCase)));
    }

    private static void Warn(string line) => Console.Error.WriteLine(line);
}
