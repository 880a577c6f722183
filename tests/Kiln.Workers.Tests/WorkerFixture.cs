using System.Diagnostics;
using System.Globalization;
using System.Text;
using Kiln.Core.Data;
using Kiln.Testing;
using Npgsql;

namespace Kiln.Workers.Tests;

/// <summary>
/// A model trained by the real CLI (the quickstart fraud spec, 10 trees) and an input CSV: the quickstart rows
/// repeated with unique ids, so that "every row exactly once" can be checked by id.
/// </summary>
public sealed class WorkerFixture : IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-workers");

    public string Model => Path.Combine(_dir.Path, "model");

    public string Csv => Path.Combine(_dir.Path, "in.csv");

    /// <summary>Rows in <see cref="Csv"/>.</summary>
    public int Rows { get; private set; }

    public const int Copies = 30;

    public async Task InitializeAsync()
    {
        var source = QuickstartSpec.Transactions;
        var spec = Path.Combine(_dir.Path, "spec.yaml");
        await File.WriteAllTextAsync(spec, QuickstartSpec.Yaml());
        var train = await KilnCli.RunAsync(["train", spec, "--out", Model], _dir.Path);
        Assert.True(train.ExitCode == 0, train.ToString());

        var lines = await File.ReadAllLinesAsync(source);
        var sb = new StringBuilder(lines[0]).Append('\n');
        var n = 0;
        for (var c = 0; c < Copies; c++)
        {
            for (var i = 1; i < lines.Length; i++)
            {
                var comma = lines[i].IndexOf(',', StringComparison.Ordinal);
                sb.Append(CultureInfo.InvariantCulture, $"r{n}").Append(lines[i].AsSpan(comma)).Append('\n');
                n++;
            }
        }
        Rows = n;
        await File.WriteAllTextAsync(Csv, sb.ToString());
    }

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>A connection string to the database <paramref name="name"/>.</summary>
    public static string ConnectionString(string name) => new NpgsqlConnectionStringBuilder(TestEnvironment.Postgres) { Database = name, Pooling = false }.ConnectionString;

    /// <summary>The ids of every row in the output's Parquet parts (the committed ones: no hidden temporary files).</summary>
    public static async Task<List<string>> OutputIdsAsync(string output)
    {
        var parts = Directory.GetFiles(output, "part-*.parquet").Order(StringComparer.Ordinal).ToList();
        var table = await TableReader.ReadAllAsync(parts, [new ColumnRequest("transaction_id", ColumnType.Text)]);
        return [.. table.Text("transaction_id").Values.Take(table.RowCount).Select(v => v!)];
    }

    /// <summary>Starts a kiln worker and waits for its first line (its name) on stdout.</summary>
    public static Task<Process> StartWorkerAsync(string db, string cwd, params string[] extra) => StartWorkerAsync(db, cwd, null, extra);

    /// <summary>Starts a kiln worker with extra environment variables (the AWS settings of an S3 output) and waits for its name.</summary>
    public static async Task<Process> StartWorkerAsync(string db, string cwd, IReadOnlyDictionary<string, string>? env, params string[] extra)
    {
        var ready = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = cwd,
            UseShellExecute = false,
        };
        foreach (var a in new[] { KilnCli.Dll, "worker", "--db", db, "--invisibility-timeout", "5s" }.Concat(extra)) psi.ArgumentList.Add(a);
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is { Length: > 0 } line) ready.TrySetResult(line); };
        var err = new StringBuilder();
        p.ErrorDataReceived += (_, e) => { lock (err) err.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var first = await Task.WhenAny(ready.Task, p.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(90)));
        if (first != ready.Task)
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"kiln worker did not start: {err}");
        }
        return p;
    }
}
