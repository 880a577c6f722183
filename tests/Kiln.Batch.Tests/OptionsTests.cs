using Kiln.Batch.Sources;
using Kiln.Core;

namespace Kiln.Batch.Tests;

public sealed class OptionsTests
{
    [Theory]
    [InlineData("0/1", 0, 1)]
    [InlineData("2/3", 2, 3)]
    public void Shard_parses_i_of_n(string text, int i, int n) => Assert.Equal(new ShardSpec(i, n), ShardSpec.Parse(text));

    [Theory]
    [InlineData("3/3")]
    [InlineData("1")]
    [InlineData("-1/2")]
    [InlineData("a/b")]
    [InlineData("0/0")]
    public void A_bad_shard_is_an_error_naming_the_option(string text) =>
        Assert.Contains("--shard", Assert.Throws<KilnException>(() => ShardSpec.Parse(text)).Message);

    [Fact]
    public void Shards_partition_the_partitions()
    {
        // Every partition belongs to exactly one of N shards, for files with one or many partitions.
        for (var n = 1; n <= 5; n++)
            for (var f = 0; f < 7; f++)
                for (var p = 0; p < 9; p++)
                    Assert.Equal(1, Enumerable.Range(0, n).Count(i => new ShardSpec(i, n).Owns(new PartitionId(f, p))));
    }

    [Fact]
    public void Sql_uris_name_table_query_and_key()
    {
        var t = SqlLocation.Parse("postgresql://kiln:s%40cret@db.local:6543/warehouse?table=sales.tx&key=id", "--input");
        Assert.Equal(SqlDialect.Postgres, t.Dialect);
        Assert.Equal("sales.tx", t.Table);
        Assert.Equal("id", t.Key);
        Assert.Contains("Password=s@cret", t.ConnectionString);
        Assert.Contains("Port=6543", t.ConnectionString);
        Assert.Contains("Database=warehouse", t.ConnectionString);
        Assert.Equal("\"sales\".\"tx\"", SqlLocation.Quote(t.Table!));

        var q = SqlLocation.Parse("sqlite:////tmp/a.db?query=SELECT * FROM t WHERE a = 1 AND b = 'x&y'", "--input");
        Assert.Equal(SqlDialect.Sqlite, q.Dialect);
        Assert.Equal("SELECT * FROM t WHERE a = 1 AND b = 'x&y'", q.Query);
        Assert.Contains("Data Source=/tmp/a.db", q.ConnectionString);
    }

    [Theory]
    [InlineData("sqlite:///tmp/a.db", "name a table")]
    [InlineData("sqlite:///tmp/a.db?table=a&query=SELECT 1", "not both")]
    [InlineData("postgres://h/db?tabel=x", "unknown parameter 'tabel'")]
    public void Bad_sql_uris_say_what_is_wrong(string uri, string message) =>
        Assert.Contains(message, Assert.Throws<KilnException>(() => SqlLocation.Parse(uri, "--input")).Message);

    [Fact]
    public async Task Models_uris_need_the_registry_until_one_is_plugged_in()
    {
        var options = new BatchOptions { Model = "models:/fraud/3", Input = "in.csv", Output = "out" };
        var e = await Assert.ThrowsAsync<KilnException>(() => new BatchJob(options).RunAsync());
        Assert.Contains("models:/fraud/3", e.Message, StringComparison.Ordinal);
        Assert.Contains("registry", e.Message, StringComparison.Ordinal);
    }
}
