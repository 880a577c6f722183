using System.Net;
using System.Text;
using System.Text.Json;
using Kiln.Core.Data;
using Kiln.Monitoring.Feedback;
using Kiln.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Kiln.Monitoring.Tests.Feedback;

public sealed class FeedbackTests : IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-feedback");
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    private string Log => _dir.File("log");

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddProblemDetails();
        _app = builder.Build();
        _app.MapKilnFeedbackEndpoints(Log);
        await _app.StartAsync();
        _http = new HttpClient { BaseAddress = new Uri(_app.Urls.First()) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app.DisposeAsync();
        _dir.Dispose();
    }

    private async Task<(HttpStatusCode Status, JsonElement Body, string? ContentType)> PostAsync(string json)
    {
        using var response = await _http.PostAsync("/api/v1/feedback", new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), response.Content.Headers.ContentType?.MediaType);
    }

    private int StoredFiles() => Directory.Exists(Path.Combine(Log, FeedbackStore.DirectoryName))
        ? Directory.EnumerateFiles(Path.Combine(Log, FeedbackStore.DirectoryName), "*", SearchOption.AllDirectories).Count()
        : 0;

    [Fact]
    public async Task Labels_posted_one_at_a_time_or_as_items_are_stored_and_the_last_received_wins()
    {
        var (status, body, _) = await PostAsync("""{"request_id": "a", "label": "yes"}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1, body.GetProperty("stored").GetInt32());
        (status, body, _) = await PostAsync("""{"items": [{"request_id": "b", "row": 2, "label": 1, "timestamp": "2026-11-26T07:00:00Z"}, {"request_id": "c", "label": 3.5, "timestamp": 1795000000}]}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2, body.GetProperty("stored").GetInt32());
        (status, _, _) = await PostAsync("""{"request_id": "a", "row": 0, "label": "no"}""");
        Assert.Equal(HttpStatusCode.OK, status);

        var labels = await new FeedbackStore(Log).ReadAsync();
        Assert.Equal(3, labels.Count);
        Assert.Equal("no", labels[("a", 0)].Label);    // the correction wins
        Assert.Equal("1", labels[("b", 2)].Label);     // JSON numbers are kept in their shortest form
        Assert.Equal("3.5", labels[("c", 0)].Label);
        // Every stored file is complete: no temporary file is left beside them.
        Assert.All(Directory.EnumerateFiles(Path.Combine(Log, FeedbackStore.DirectoryName), "*", SearchOption.AllDirectories),
            f => Assert.EndsWith(".parquet", f));
    }

    [Theory]
    [InlineData("""{"label": "yes"}""", "request_id", null)]
    [InlineData("""{"request_id": "", "label": "yes"}""", "request_id", null)]
    [InlineData("""{"request_id": "a", "row": -1, "label": "yes"}""", "row", null)]
    [InlineData("""{"request_id": "a", "row": 1.5, "label": "yes"}""", "row", null)]
    [InlineData("""{"request_id": "a"}""", "label", null)]
    [InlineData("""{"request_id": "a", "label": true}""", "label", null)]
    [InlineData("""{"request_id": "a", "label": "x", "timestamp": "tuesday"}""", "timestamp", null)]
    [InlineData("""{"items": [{"request_id": "a", "label": "x"}, {"request_id": "b", "label": null}]}""", "items[1].label", 1)]
    [InlineData("""{"items": [{"request_id": "a", "label": "x"}, {"request_id": 7, "label": "y"}]}""", "items[1].request_id", 1)]
    [InlineData("""{"items": []}""", "items", null)]
    [InlineData("""{"items": {"request_id": "a"}}""", "items", null)]
    public async Task Bad_items_get_422_problem_details_naming_the_field_and_item_and_nothing_is_stored(string json, string field, int? item)
    {
        var (status, body, type) = await PostAsync(json);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Equal("application/problem+json", type);
        Assert.Equal(field, body.GetProperty("field").GetString());
        if (item is { } i)
        {
            Assert.Equal(i, body.GetProperty("item").GetInt32());
            Assert.Contains($"item {i}", body.GetProperty("detail").GetString());
        }
        Assert.Equal(0, StoredFiles());
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("[1, 2]")]
    [InlineData("\"label\"")]
    public async Task A_body_that_is_not_a_json_object_gets_400(string json)
    {
        var (status, body, type) = await PostAsync(json);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("application/problem+json", type);
        Assert.Equal("body", body.GetProperty("field").GetString());
        Assert.Equal(0, StoredFiles());
    }

    [Fact]
    public async Task Import_reads_csv_and_parquet_and_a_bad_row_names_row_and_column_and_writes_nothing()
    {
        Directory.CreateDirectory(Log);
        var csv = _dir.File("labels.csv");
        await File.WriteAllTextAsync(csv, "id,truth,row\nq1,yes,0\nq1,no,1\nq2,1.0,0\n");
        var r = await KilnCli.RunAsync(["feedback", "import", csv, "--log-dir", Log, "--id-column", "id", "--label-column", "truth", "--json"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(3, JsonDocument.Parse(r.StdOut).RootElement.GetProperty("stored").GetInt32());
        var labels = await new FeedbackStore(Log).ReadAsync();
        Assert.Equal("no", labels[("q1", 1)].Label);
        Assert.Equal("1.0", labels[("q2", 0)].Label);

        var parquet = _dir.File("labels.parquet");
        await ParquetTable.WriteAsync(new DataTable(2).Add(new TextColumn("request_id", ["p1", "p2"])).Add(new NumericColumn("label", [0.25, 7])), parquet);
        r = await KilnCli.RunAsync(["feedback", "import", parquet, "--log-dir", Log]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("", r.StdOut); // human output (on stderr) unless --json is asked for
        Assert.Contains("imported 2 labels", r.StdErr);
        labels = await new FeedbackStore(Log).ReadAsync();
        Assert.Equal("0.25", labels[("p1", 0)].Label);
        Assert.Equal("7", labels[("p2", 0)].Label);
        var before = StoredFiles();

        var bad = _dir.File("bad.csv");
        await File.WriteAllTextAsync(bad, "request_id,label,row\nz1,yes,0\nz2,,0\nz3,no,0\n");
        r = await KilnCli.RunAsync(["feedback", "import", bad, "--log-dir", Log]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("row 2", r.StdErr);
        Assert.Contains("column 'label'", r.StdErr);
        await File.WriteAllTextAsync(bad, "request_id,label,row\nz1,yes,0\nz2,no,two\n");
        r = await KilnCli.RunAsync(["feedback", "import", bad, "--log-dir", Log]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("row 2, column 'row'", r.StdErr);
        r = await KilnCli.RunAsync(["feedback", "import", bad, "--log-dir", Log, "--label-column", "truth"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("no column 'truth'", r.StdErr);
        Assert.Equal(before, StoredFiles());
        Assert.False((await new FeedbackStore(Log).ReadAsync()).ContainsKey(("z1", 0)));
    }
}
