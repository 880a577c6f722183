using System.Globalization;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Testing;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Kiln.Batch.Tests;

[Collection("batch")]
public sealed class SqlBatchTests(BatchFixture fx)
{
    private Dictionary<string, Kiln.Scoring.Prediction> ExpectedById()
    {
        var expected = fx.Expected(fx.Rows);
        var ids = fx.Rows.Text("transaction_id").Values;
        var map = new Dictionary<string, Kiln.Scoring.Prediction>(StringComparer.Ordinal);
        for (var i = 0; i < fx.Rows.RowCount; i++) map[ids[i]!] = expected[i];
        return map;
    }

    private static object Value(Column c, int row) => c switch
    {
        NumericColumn n => double.IsNaN(n.Values[row]) ? DBNull.Value : n.Values[row],
        TextColumn t => (object?)t.Values[row] ?? DBNull.Value,
        _ => DBNull.Value,
    };

    private void CreateSqliteSource(string path, string? badAmountAt = null)
    {
        using var db = new SqliteConnection($"Data Source={path};Pooling=False");
        db.Open();
        using var tx = db.BeginTransaction();
        using (var create = db.CreateCommand())
        {
            create.CommandText = "CREATE TABLE tx (transaction_id TEXT, amount REAL, hour INTEGER, merchant_category TEXT, card_present TEXT, distance_from_home_km REAL, customer_age INTEGER)";
            create.ExecuteNonQuery();
        }
        using var insert = db.CreateCommand();
        insert.CommandText = "INSERT INTO tx VALUES (@p0, @p1, @p2, @p3, @p4, @p5, @p6)";
        for (var i = 0; i < 7; i++) insert.Parameters.Add(new SqliteParameter("@p" + i, null));
        for (var r = 0; r < fx.Rows.RowCount; r++)
        {
            for (var c = 0; c < 7; c++) insert.Parameters[c].Value = Value(fx.Rows.Columns[c], r);
            if (fx.Rows.Text("transaction_id").Values[r] == badAmountAt) insert.Parameters[1].Value = "lots"; // SQLite keeps text in a REAL column
            insert.ExecuteNonQuery();
        }
        tx.Commit();
    }

    private async Task AssertScoresAsync(System.Data.Common.DbConnection db, string table, int expectedRows, Dictionary<string, Kiln.Scoring.Prediction> expected)
    {
        await using var count = db.CreateCommand();
        count.CommandText = $"SELECT COUNT(*), COUNT(DISTINCT transaction_id) FROM {table}";
        await using (var r = await count.ExecuteReaderAsync())
        {
            Assert.True(await r.ReadAsync());
            Assert.Equal(expectedRows, Convert.ToInt32(r.GetValue(0), CultureInfo.InvariantCulture));
            Assert.Equal(expectedRows, Convert.ToInt32(r.GetValue(1), CultureInfo.InvariantCulture)); // each row once
        }
        await using var all = db.CreateCommand();
        all.CommandText = $"SELECT transaction_id, prediction, probability FROM {table}";
        await using var rows = await all.ExecuteReaderAsync();
        while (await rows.ReadAsync())
        {
            var e = expected[rows.GetString(0)];
            Assert.Equal(e.Label, rows.GetString(1));
            Assert.Equal(e.Value, rows.GetDouble(2), 6);
        }
    }

    [Fact]
    public async Task Sqlite_table_to_sqlite_table_upserted_by_key_twice_is_idempotent()
    {
        using var dir = new TempDir();
        CreateSqliteSource(dir.File("in.db"));
        var options = new BatchOptions
        {
            Model = fx.Package,
            Input = $"sqlite:///{dir.File("in.db")}?table=tx",
            Output = $"sqlite:///{dir.File("out.db")}?table=scores",
            Keep = ["transaction_id", "hour"],
            Key = "transaction_id",
            PartitionRows = 3000,
        };
        var first = await new BatchJob(options).RunAsync();
        Assert.Equal(8000, first.Rows);
        Assert.Equal(3, first.PartsWritten); // rowid ranges of 3000, 3000, 2000 rows
        var second = await new BatchJob(options).RunAsync();
        Assert.Equal(8000, second.Rows);

        await using var db = new SqliteConnection($"Data Source={dir.File("out.db")};Pooling=False");
        await db.OpenAsync();
        await AssertScoresAsync(db, "scores", 8000, ExpectedById());
        await using var type = db.CreateCommand();
        type.CommandText = "SELECT typeof(hour) FROM scores LIMIT 1";
        Assert.Equal("integer", (string?)await type.ExecuteScalarAsync()); // an INTEGER input column stays integer
    }

    [Fact]
    public async Task Sqlite_query_source_skips_text_in_a_real_column_as_a_bad_row()
    {
        using var dir = new TempDir();
        CreateSqliteSource(dir.File("in.db"), badAmountAt: "t00042");
        var result = await new BatchJob(new BatchOptions
        {
            Model = fx.Package,
            Input = $"sqlite:///{dir.File("in.db")}?query=SELECT * FROM tx WHERE hour >= 0 ORDER BY transaction_id",
            Output = dir.File("out"),
            Keep = ["transaction_id"],
            OnBadRow = BadRowPolicy.Skip,
        }).RunAsync();
        Assert.Equal(7999, result.Rows);
        Assert.Equal(1, result.Rejected);
        var rejects = File.ReadAllLines(dir.File("out/_rejects/part-00000-00000.csv"));
        Assert.Equal(2, rejects.Length);
        Assert.Contains(",43,amount,'lots' is not a number,", rejects[1]); // the 43rd row of the query's result
        Assert.Contains("t00042", rejects[1]);
    }

    [Fact]
    public async Task Postgres_table_to_postgres_table_by_copy_and_upsert_is_idempotent()
    {
        await using var database = await TestDatabase.CreateAsync("kiln_batch");
        var cs = database.UnpooledConnectionString;
        await using (var db = new NpgsqlConnection(cs))
        {
            await db.OpenAsync();
            await using (var create = new NpgsqlCommand("CREATE TABLE tx (id BIGINT PRIMARY KEY, transaction_id TEXT, amount DOUBLE PRECISION, hour INTEGER, merchant_category TEXT, card_present TEXT, distance_from_home_km DOUBLE PRECISION, customer_age INTEGER)", db))
                await create.ExecuteNonQueryAsync();
            await using var copy = await db.BeginBinaryImportAsync("COPY tx FROM STDIN (FORMAT BINARY)");
            var rows = fx.Rows;
            for (var r = 0; r < rows.RowCount; r++)
            {
                await copy.StartRowAsync();
                await copy.WriteAsync((long)(rows.RowCount - r) * 7, NpgsqlTypes.NpgsqlDbType.Bigint); // a key whose order is not the insert order
                await copy.WriteAsync(rows.Text("transaction_id").Values[r]!, NpgsqlTypes.NpgsqlDbType.Text);
                await copy.WriteAsync(rows.Numeric("amount").Values[r], NpgsqlTypes.NpgsqlDbType.Double);
                await copy.WriteAsync((int)rows.Numeric("hour").Values[r], NpgsqlTypes.NpgsqlDbType.Integer);
                await copy.WriteAsync(rows.Text("merchant_category").Values[r]!, NpgsqlTypes.NpgsqlDbType.Text);
                await copy.WriteAsync(rows.Text("card_present").Values[r]!, NpgsqlTypes.NpgsqlDbType.Text);
                var d = rows.Numeric("distance_from_home_km").Values[r];
                if (double.IsNaN(d)) await copy.WriteNullAsync(); else await copy.WriteAsync(d, NpgsqlTypes.NpgsqlDbType.Double);
                await copy.WriteAsync((int)rows.Numeric("customer_age").Values[r], NpgsqlTypes.NpgsqlDbType.Integer);
            }
            await copy.CompleteAsync();
        }

        string[] args = ["batch", "--model", fx.Package, "--input", database.Uri + "?table=tx", "--output", database.Uri + "?table=scores",
            "--keep", "transaction_id", "--key", "transaction_id", "--partition-rows", "3000", "--json"];
        for (var run = 0; run < 2; run++)
        {
            var result = await KilnCli.RunAsync(args);
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains("\"rows\": 8000", result.StdOut);
        }
        // Without a key: COPY straight into the table; a second run of the same job is refused, --resume finds it done.
        string[] plain = ["batch", "--model", fx.Package, "--input", database.Uri + "?query=SELECT * FROM tx ORDER BY id", "--output", database.Uri + "?table=plain",
            "--keep", "transaction_id", "--partition-rows", "5000", "--json"];
        var p1 = await KilnCli.RunAsync(plain);
        Assert.True(p1.ExitCode == 0, p1.ToString());
        var p2 = await KilnCli.RunAsync(plain);
        Assert.Equal(1, p2.ExitCode);
        Assert.Contains("--resume", p2.StdErr);
        var p3 = await KilnCli.RunAsync([.. plain, "--resume"]);
        Assert.True(p3.ExitCode == 0, p3.ToString());
        Assert.Contains("\"parts_resumed\": 2", p3.StdOut);

        await using var check = new NpgsqlConnection(cs);
        await check.OpenAsync();
        var expected = ExpectedById();
        await AssertScoresAsync(check, "scores", 8000, expected);
        await AssertScoresAsync(check, "plain", 8000, expected);
    }

    [Fact]
    public async Task A_postgres_text_column_where_the_model_wants_numbers_fails_before_scoring()
    {
        await using var database = await TestDatabase.CreateAsync("kiln_batch");
        var cs = database.UnpooledConnectionString;
        await using (var db = new NpgsqlConnection(cs))
        {
            await db.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE tx (id BIGINT PRIMARY KEY, amount TEXT, hour INTEGER, merchant_category TEXT, card_present TEXT, distance_from_home_km DOUBLE PRECISION, customer_age INTEGER); INSERT INTO tx VALUES (1, '12.5', 3, 'fuel', 'yes', 1.0, 40)", db);
            await create.ExecuteNonQueryAsync();
        }
        var ex = await Assert.ThrowsAsync<KilnException>(() => new BatchJob(new BatchOptions
        {
            Model = fx.Package, Input = database.Uri + "?table=tx", Output = database.Uri + "?table=scores",
        }).RunAsync());
        Assert.Contains("table=tx", ex.Message);
        Assert.Contains("column 'amount' holds text", ex.Message);
        await using var check = new NpgsqlConnection(cs);
        await check.OpenAsync();
        await using var exists = new NpgsqlCommand("SELECT to_regclass('scores') IS NULL", check);
        Assert.True((bool)(await exists.ExecuteScalarAsync())!); // nothing was created or written
    }
}
