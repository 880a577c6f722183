using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Kiln.Testing;
using Npgsql;

namespace Kiln.Workers.Tests;

/// <summary>Hangfire's dashboard at /jobs of a real kiln server on the workers' PostgreSQL, behind Kiln's access control.</summary>
public class JobsDashboardTests(WorkerFixture fixture) : IClassFixture<WorkerFixture>
{
    private static HttpClient Client(Uri address, string? user = null, string? password = null)
    {
        var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        if (user is not null)
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        return http;
    }

    /// <summary>
    /// Posts a dashboard action as the dashboard's own script does: with the anti-forgery header and token the page
    /// carries in its csrf-header and csrf-token meta tags (kiln server registers ASP.NET Core's anti-forgery for its
    /// UI, so Hangfire checks it), the cookie going along from the page's answer.
    /// </summary>
    private static async Task<HttpResponseMessage> PostActionAsync(HttpClient client, string page, string action)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, action) { Content = new FormUrlEncodedContent([]) };
        var header = System.Text.RegularExpressions.Regex.Match(page, "<meta name=\"csrf-header\" content=\"([^\"]*)\"");
        var token = System.Text.RegularExpressions.Regex.Match(page, "<meta name=\"csrf-token\" content=\"([^\"]*)\"");
        if (header.Success && token.Success && header.Groups[1].Value.Length > 0)
            request.Headers.Add(header.Groups[1].Value, System.Net.WebUtility.HtmlDecode(token.Groups[1].Value));
        return await client.SendAsync(request);
    }

    private static async Task<string> StateAsync(string database, long id)
    {
        await using var c = new NpgsqlConnection(WorkerFixture.ConnectionString(database));
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT statename FROM hangfire.job WHERE id = @id", c);
        cmd.Parameters.AddWithValue("id", id);
        return (string)(await cmd.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task The_dashboard_lists_a_distributed_batchs_partitions_refuses_anonymous_callers_and_is_read_only_for_readers()
    {
        using var dir = new TempDir("kiln-jobs-dashboard");
        await using var database = await TestDatabase.CreateAsync("kiln_workers");
        var (db, name) = (database.Uri, database.Name);
        Process? worker = null;
        Process? server = null;
        try
        {
            // Users in the same database: an admin, and a user with the server's default permission (READ).
            var r = await Proc.RunAsync("dotnet", [KilnCli.Dll, "auth", "user", "add", "root", "--admin", "--password-stdin", "--db", db], dir.Path, stdin: "root-password-1\n");
            Assert.True(r.ExitCode == 0, r.ToString());
            r = await Proc.RunAsync("dotnet", [KilnCli.Dll, "auth", "user", "add", "reader", "--password-stdin", "--db", db], dir.Path, stdin: "reader-password-1\n");
            Assert.True(r.ExitCode == 0, r.ToString());

            worker = await WorkerFixture.StartWorkerAsync(db, dir.Path, "--concurrency", "1");
            r = await KilnCli.RunAsync(["batch", "--model", fixture.Model, "--input", fixture.Csv, "--output", dir.File("out"), "--keep", "transaction_id",
                "--distributed", "--db", db, "--partitions", "2"], dir.Path, timeout: TimeSpan.FromMinutes(5));
            Assert.True(r.ExitCode == 0, r.ToString());
            worker.Kill(entireProcessTree: true);
            await worker.WaitForExitAsync();
            List<long> ids = [];
            await using (var c = new NpgsqlConnection(WorkerFixture.ConnectionString(name)))
            {
                await c.OpenAsync();
                await using var cmd = new NpgsqlCommand("SELECT id FROM hangfire.job WHERE statename = 'Succeeded' ORDER BY id", c);
                await using var reader = await cmd.ExecuteReaderAsync();
                while (await reader.ReadAsync()) ids.Add(reader.GetInt64(0));
            }
            Assert.Equal(2, ids.Count);

            var port = TestEnvironment.FreePort();
            server = KilnCli.Start(["server", "--db", db, "--port", port.ToString(CultureInfo.InvariantCulture)], dir.Path);
            var log = new StringBuilder();
            server.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
            var address = new Uri($"http://127.0.0.1:{port}");
            using var anonymous = Client(address);
            for (var i = 0; ; i++)
            {
                Assert.False(server.HasExited, $"kiln server exited: {log}");
                Assert.True(i < 600, "kiln server did not answer /health in time");
                try
                {
                    using var health = await anonymous.GetAsync("/health");
                    if (health.IsSuccessStatusCode) break;
                }
                catch (HttpRequestException)
                {
                }
                await Task.Delay(200);
            }

            // Anonymous: refused by Kiln's access control, pages and actions alike.
            using (var page = await anonymous.GetAsync("/jobs"))
                Assert.Equal(HttpStatusCode.Unauthorized, page.StatusCode);
            using (var post = await anonymous.PostAsync($"/jobs/jobs/actions/delete/{ids[0]}", new FormUrlEncodedContent([])))
                Assert.Equal(HttpStatusCode.Unauthorized, post.StatusCode);

            // A reader sees the dashboard and the partitions the distributed batch enqueued.
            using var reader1 = Client(address, "reader", "reader-password-1");
            using (var home = await reader1.GetAsync("/jobs"))
            {
                var html = await home.Content.ReadAsStringAsync();
                Assert.True(home.StatusCode == HttpStatusCode.OK, $"{(int)home.StatusCode} {html}");
                Assert.Contains("Kiln jobs", html, StringComparison.Ordinal);
            }
            var succeeded = await reader1.GetStringAsync("/jobs/jobs/succeeded");
            Assert.Contains("BatchPartitionJob", succeeded, StringComparison.Ordinal);
            foreach (var id in ids) Assert.Contains($"/jobs/jobs/details/{id}", succeeded, StringComparison.Ordinal);
            var details = await reader1.GetStringAsync($"/jobs/jobs/details/{ids[0]}");
            Assert.Contains("batch", details, StringComparison.Ordinal); // its queue
            // Read-only: the page has no requeue or delete button, and the action itself is refused.
            Assert.DoesNotContain("data-ajax=\"/jobs/jobs/actions/delete/", details, StringComparison.Ordinal);
            using (var post = await PostActionAsync(reader1, details, $"/jobs/jobs/actions/delete/{ids[0]}"))
                Assert.False(post.IsSuccessStatusCode, $"a reader deleted job {ids[0]}: {(int)post.StatusCode}");
            using (var post = await PostActionAsync(reader1, details, $"/jobs/jobs/actions/requeue/{ids[0]}"))
                Assert.False(post.IsSuccessStatusCode, $"a reader requeued job {ids[0]}: {(int)post.StatusCode}");
            Assert.Equal("Succeeded", await StateAsync(name, ids[0]));

            // The admin may write: the same page has the button, and the delete goes through.
            using var admin = Client(address, "root", "root-password-1");
            var adminDetails = await admin.GetStringAsync($"/jobs/jobs/details/{ids[0]}");
            Assert.Contains($"/jobs/jobs/actions/delete/{ids[0]}", adminDetails, StringComparison.Ordinal);
            using (var post = await PostActionAsync(admin, adminDetails, $"/jobs/jobs/actions/delete/{ids[0]}"))
                Assert.True(post.IsSuccessStatusCode, $"the admin could not delete job {ids[0]}: {(int)post.StatusCode}");
            Assert.Equal("Deleted", await StateAsync(name, ids[0]));
            Assert.Equal("Succeeded", await StateAsync(name, ids[1]));
            var adminDetails1 = await admin.GetStringAsync($"/jobs/jobs/details/{ids[1]}");
            using (var post = await PostActionAsync(admin, adminDetails1, $"/jobs/jobs/actions/requeue/{ids[1]}"))
                Assert.True(post.IsSuccessStatusCode, $"the admin could not requeue job {ids[1]}: {(int)post.StatusCode}");
            Assert.Equal("Enqueued", await StateAsync(name, ids[1]));
            using (var stats = await PostActionAsync(admin, adminDetails1, "/jobs/stats")) Assert.True(stats.IsSuccessStatusCode);

            // Kiln's audit trail has every button press with its user and answer, the reader's refused ones too; the
            // stats poll (a POST that changes nothing) is not recorded.
            var audit = new List<(string? User, string Action, int Status)>();
            for (var i = 0; ; i++)
            {
                r = await KilnCli.RunAsync(["auth", "audit", "--db", db, "--json", "--limit", "1000"], dir.Path);
                Assert.True(r.ExitCode == 0, r.ToString());
                using var json = System.Text.Json.JsonDocument.Parse(r.StdOut);
                audit = [.. json.RootElement.GetProperty("entries").EnumerateArray()
                    .Select(e => (e.TryGetProperty("user", out var u) ? u.GetString() : null, e.GetProperty("action").GetString()!, e.GetProperty("status").GetInt32()))
                    .Where(e => e.Item2.StartsWith("POST /jobs", StringComparison.Ordinal))];
                if (audit.Count >= 5 || i == 20) break;
                await Task.Delay(500); // an entry is appended as its request ends
            }
            Assert.Contains(("root", $"POST /jobs/jobs/actions/delete/{ids[0]}", 204), audit); // the dashboard answers its buttons with 204
            Assert.Contains(("root", $"POST /jobs/jobs/actions/requeue/{ids[1]}", 204), audit);
            Assert.Contains(audit, e => e.User == "reader" && e.Action == $"POST /jobs/jobs/actions/delete/{ids[0]}" && e.Status >= 400);
            Assert.Contains(audit, e => e.User == "reader" && e.Action == $"POST /jobs/jobs/actions/requeue/{ids[0]}" && e.Status >= 400);
            Assert.Contains(audit, e => e.User is null && e.Action == $"POST /jobs/jobs/actions/delete/{ids[0]}" && e.Status == 401);
            Assert.DoesNotContain(audit, e => e.Action == "POST /jobs/stats");
        }
        finally
        {
            if (server is { HasExited: false }) server.Kill(entireProcessTree: true);
            if (worker is { HasExited: false }) worker.Kill(entireProcessTree: true);
        }
    }
}
