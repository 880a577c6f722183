using System.Globalization;
using Npgsql;

namespace Kiln.Testing;

/// <summary>
/// A throwaway database on the test PostgreSQL (KILN_TEST_POSTGRES): created with a unique name, dropped on dispose
/// (WITH (FORCE), after this process's pooled connections are cleared, so a store or server that still holds one
/// does not keep it alive). Every test that needs a database of its own goes through this one helper.
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private TestDatabase(string name) => Name = name;

    /// <summary>The database's name: <c>PREFIX_</c> and a random suffix, lower case, at most 40 characters.</summary>
    public string Name { get; }

    /// <summary>An Npgsql connection string to this database (pooled, as the stores open it by default).</summary>
    public string ConnectionString => Connection(pooling: true);

    /// <summary>An Npgsql connection string to this database with pooling off (for a second process's view, or
    /// for a test that must not leave idle connections behind).</summary>
    public string UnpooledConnectionString => Connection(pooling: false);

    /// <summary>The database as a user would give it on the command line: <c>postgresql://user@host:port/NAME</c>.</summary>
    public string Uri
    {
        get
        {
            var b = new NpgsqlConnectionStringBuilder(TestEnvironment.Postgres);
            var user = System.Uri.EscapeDataString(b.Username ?? "postgres")
                + (b.Password is { Length: > 0 } pw ? ":" + System.Uri.EscapeDataString(pw) : "");
            return $"postgresql://{user}@{b.Host}:{b.Port.ToString(CultureInfo.InvariantCulture)}/{Name}";
        }
    }

    /// <summary>Creates a database named <paramref name="prefix"/> plus a random suffix.</summary>
    public static async Task<TestDatabase> CreateAsync(string prefix = "kiln")
    {
        var name = $"{prefix}_{Guid.NewGuid():N}";
        if (name.Length > 40) name = name[..40];
        await using var c = new NpgsqlConnection(TestEnvironment.Postgres);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", c);
        await cmd.ExecuteNonQueryAsync();
        return new TestDatabase(name);
    }

    /// <summary>Drops the database, whoever is still connected to it.</summary>
    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var c = new NpgsqlConnection(TestEnvironment.Postgres);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)", c);
        await cmd.ExecuteNonQueryAsync();
    }

    private string Connection(bool pooling) =>
        new NpgsqlConnectionStringBuilder(TestEnvironment.Postgres) { Database = Name, Pooling = pooling }.ConnectionString;
}
