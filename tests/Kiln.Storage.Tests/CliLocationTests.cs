using Kiln.Pipelines.State;
using Kiln.Testing;

namespace Kiln.Storage.Tests;

/// <summary>The location grammar through the real kiln binary: each command that takes --db, --tracking-uri or --registry.</summary>
public sealed class CliLocationTests
{
    private static readonly Dictionary<string, string> NoEnv = new() { ["KILN_TRACKING_URI"] = "", ["KILN_FEATURE_REGISTRY"] = "" };

    [Fact]
    public async Task Sqlite_three_slashes_create_the_file_relative_to_the_working_directory()
    {
        using var dir = new TempDir("kiln-cli-loc");
        var runs = await KilnCli.RunAsync(["runs", "list", "--tracking-uri", "sqlite:///rel/track.db"], dir.Path, NoEnv);
        Assert.True(runs.ExitCode == 0, runs.ToString());
        Assert.True(File.Exists(Path.Combine(dir.Path, "rel", "track.db")), runs.ToString());

        var pipelines = await KilnCli.RunAsync(["pipeline", "list", "--db", "sqlite:///pipes.db"], dir.Path, NoEnv);
        Assert.True(pipelines.ExitCode == 0, pipelines.ToString());
        Assert.True(File.Exists(Path.Combine(dir.Path, "pipes.db")), pipelines.ToString());

        // Nothing applied yet is a one-line error, but the registry is where the location says.
        var features = await KilnCli.RunAsync(["features", "list", "--registry", "sqlite:///feat.db"], dir.Path, NoEnv);
        Assert.Equal(1, features.ExitCode);
        Assert.Contains("nothing applied", features.StdErr);
        Assert.True(File.Exists(Path.Combine(dir.Path, "feat.db")), features.ToString());
        Assert.False(File.Exists("/feat.db"));
    }

    [Fact]
    public async Task Four_slashes_and_bare_paths_are_absolute_or_directories()
    {
        using var dir = new TempDir("kiln-cli-loc");
        var abs = await KilnCli.RunAsync(["runs", "list", "--tracking-uri", "sqlite:///" + dir.File("abs.db")], TestEnvironment.RepoRoot, NoEnv);
        Assert.True(abs.ExitCode == 0, abs.ToString());
        Assert.True(File.Exists(dir.File("abs.db")));

        var bare = await KilnCli.RunAsync(["pipeline", "list", "--db", "store"], dir.Path, NoEnv);
        Assert.True(bare.ExitCode == 0, bare.ToString());
        Assert.True(File.Exists(Path.Combine(dir.Path, "store", "kiln.db")));
    }

    [Fact]
    public async Task A_bad_location_is_one_line_naming_it()
    {
        using var dir = new TempDir("kiln-cli-loc");
        var r = await KilnCli.RunAsync(["runs", "list", "--tracking-uri", "sqlite://x.db"], dir.Path, NoEnv);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("three slashes", r.StdErr);
        Assert.Single(r.StdErr.Trim().Split('\n'));
    }

    [Fact]
    public async Task Postgres_spelling_works_and_warns_that_it_is_postgresql()
    {
        await using var database = await TestDatabase.CreateAsync();
        var rest = database.Uri["postgresql://".Length..]; // user@host:port/name
        using var dir = new TempDir("kiln-cli-loc");
        var old = await KilnCli.RunAsync(["runs", "list", "--tracking-uri", "postgres://" + rest], dir.Path, NoEnv);
        Assert.True(old.ExitCode == 0, old.ToString());
        Assert.Contains("the spelling is postgresql://", old.StdErr);

        var canonical = await KilnCli.RunAsync(["pipeline", "list", "--db", "postgresql://" + rest], dir.Path, NoEnv);
        Assert.True(canonical.ExitCode == 0, canonical.ToString());
        Assert.DoesNotContain("spelling", canonical.StdErr);

        await using var db = MetadataDatabase.Open("postgresql://" + rest);
        Assert.Equal(1, await db.SchemaVersionAsync("tracking", default));
        Assert.Equal(SqlPipelineStore.SchemaVersion, await db.SchemaVersionAsync("pipelines", default));
    }
}
