using Kiln.Core;
using Kiln.Testing;

namespace Kiln.Storage.Tests;

public sealed class LocationTests
{
    private readonly List<string> _warnings = [];

    private StorageLocation Parse(string value) => StorageLocation.Parse(value, "--db", _warnings.Add);

    [Fact]
    public void Three_slashes_are_relative_to_the_current_directory_as_in_mlflow()
    {
        var l = Parse("sqlite:///rel/x.db");
        Assert.Equal(StorageKind.Sqlite, l.Kind);
        Assert.Equal(Path.GetFullPath("rel/x.db"), l.SqlitePath);
        Assert.Empty(_warnings);
    }

    [Fact]
    public void Four_slashes_are_an_absolute_path()
    {
        var l = Parse("sqlite:////tmp/kiln/x.db");
        Assert.Equal("/tmp/kiln/x.db", l.SqlitePath);
        Assert.Equal("/tmp/kiln", l.SqliteDirectory);
    }

    [Fact]
    public void A_directory_holds_kiln_db_and_a_name_with_an_extension_is_the_file()
    {
        using var dir = new TempDir("kiln-loc");
        Assert.Equal(Path.Combine(dir.Path, "kiln.db"), Parse(dir.Path).SqlitePath);
        Assert.Equal(Path.Combine(dir.Path, "new", "kiln.db"), Parse(Path.Combine(dir.Path, "new")).SqlitePath);
        Assert.Equal(dir.File("meta.db"), Parse(dir.File("meta.db")).SqlitePath);
        Assert.Equal(Path.Combine(dir.Path, "kiln.db"), Parse("file://" + dir.Path).SqlitePath);
        // A leading dot is a hidden directory, not an extension: the default ./.kiln before it exists.
        Assert.Equal(Path.Combine(dir.Path, ".kiln", "kiln.db"), Parse(Path.Combine(dir.Path, ".kiln")).SqlitePath);
        Assert.Equal(Path.Combine(dir.Path, ".kiln", "kiln.db"), Parse(Path.Combine(dir.Path, ".kiln") + "/").SqlitePath);
        Assert.Equal(dir.File(".meta.db"), Parse(dir.File(".meta.db")).SqlitePath);
    }

    [Fact]
    public void Postgresql_uris_become_connection_strings_without_showing_the_password()
    {
        var l = Parse("postgresql://kiln:s%40cret@db.local:6543/meta?Timeout=7");
        Assert.Equal(StorageKind.Postgres, l.Kind);
        Assert.Contains("Password=s@cret", l.PostgresConnectionString);
        Assert.Contains("Port=6543", l.PostgresConnectionString);
        Assert.Contains("Database=meta", l.PostgresConnectionString);
        Assert.Contains("Timeout=7", l.PostgresConnectionString);
        Assert.Equal("postgresql://db.local:6543/meta", l.Display);
        Assert.DoesNotContain("cret", l.Display);
        Assert.Empty(_warnings);
    }

    [Fact]
    public void Postgres_spelling_is_accepted_with_a_one_line_warning()
    {
        var l = Parse("postgres://u@h/db");
        Assert.Equal(StorageKind.Postgres, l.Kind);
        var w = Assert.Single(_warnings);
        Assert.Contains("postgresql://", w);
        Assert.DoesNotContain('\n', w);
    }

    [Fact]
    public void Npgsql_connection_strings_and_server_urls_are_kept()
    {
        Assert.Equal(StorageKind.Postgres, Parse("Host=127.0.0.1;Port=5432;Username=postgres;Password=x;Database=kiln").Kind);
        var remote = Parse("http://127.0.0.1:5000");
        Assert.Equal(StorageKind.Remote, remote.Kind);
        Assert.Equal(new Uri("http://127.0.0.1:5000"), remote.Server);
    }

    [Fact]
    public void Sqlite_without_slashes_is_an_old_spelling_that_warns()
    {
        Assert.Equal(Path.GetFullPath("x.db"), Parse("sqlite:x.db").SqlitePath);
        Assert.Contains("sqlite:///x.db", Assert.Single(_warnings));
    }

    [Theory]
    [InlineData("sqlite://x.db", "three slashes")]
    [InlineData("sqlite:///", "no database file")]
    [InlineData("sqlite:", "no database file")]
    [InlineData("mysql://h/db", "unsupported scheme 'mysql'")]
    [InlineData("", "empty location")]
    [InlineData("postgresql://", "invalid PostgreSQL URI")]
    [InlineData("postgresql://u:pw@h/db?nosuch=1", "unknown PostgreSQL parameter 'nosuch'")]
    public void Mistakes_name_the_option_and_what_is_wrong(string value, string message)
    {
        var e = Assert.Throws<KilnException>(() => Parse(value));
        Assert.StartsWith("--db", e.Message);
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain("pw", e.Message);
    }

    [Theory]
    [InlineData("postgresql://kiln:secret@h:5432/db", "postgresql://kiln@h:5432/db")]
    [InlineData("Host=h;Password=secret;Database=d", "Host=h;Database=d")]
    [InlineData("sqlite:///x.db", "sqlite:///x.db")]
    public void Redact_leaves_the_password_out(string value, string expected) => Assert.Equal(expected, StorageLocation.Redact(value));
}
