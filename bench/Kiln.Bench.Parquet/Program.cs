// Parquet benchmarks (figures in docs/benchmarks.md, ## Parquet): Kiln's reader and writer (ParquetSharp) on 1M-row
// files with 65,536-row groups, Snappy, rounds after a warm-up:
//  read:  1M x 20 doubles (5% missing), and a prediction-log-like table (timestamp, two text columns, an int, four
//         doubles), all columns (the timestamp into a TimestampColumn, no string per row);
//  write: the log-like table.
// At fc110f7 the same program also ran the code this replaced in alternating rounds (Kiln's own page decoder,
// OldParquetTable, and its writer, ParquetFlatWriter); those figures are in docs/benchmarks.md. The code is deleted.
// Usage: dotnet run -c Release --project bench/Kiln.Bench.Parquet -- [--rows 1000000] [--rounds 5]
using System.Diagnostics;
using System.Globalization;
using Kiln.Core.Data;

var rows = 1_000_000;
var rounds = 5;
for (var i = 0; i + 1 < args.Length; i += 2)
{
    var v = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
    switch (args[i])
    {
        case "--rows": rows = v; break;
        case "--rounds": rounds = v; break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}
Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}");
const int GroupRows = 65_536;
var dir = Path.Combine(Path.GetTempPath(), $"kiln-bench-parquet-{Guid.NewGuid():N}");
Directory.CreateDirectory(dir);
try
{
    var rng = new Random(7);
    // ---- the files ----
    var doubles = new double[20][];
    for (var c = 0; c < 20; c++)
    {
        doubles[c] = new double[rows];
        for (var r = 0; r < rows; r++) doubles[c][r] = rng.NextDouble() < 0.05 ? double.NaN : rng.NextDouble() * 100;
    }
    var wide = Path.Combine(dir, "wide.parquet");
    using (var s = File.Create(wide))
    {
        var w = new ParquetTableWriter(s, [.. Enumerable.Range(0, 20).Select(c => new ParquetColumn($"x{c}", ParquetColumnKind.Double, true))]);
        for (var start = 0; start < rows; start += GroupRows)
        {
            var n = Math.Min(GroupRows, rows - start);
            w.BeginRowGroup(n);
            for (var c = 0; c < 20; c++) w.WriteDouble(doubles[c].AsSpan(start, n));
            w.EndRowGroup();
        }
        w.Finish();
        w.Dispose();
    }
    var log = MakeLog(rows, rng);
    var logFile = Path.Combine(dir, "log.parquet");
    using (var s = File.Create(logFile)) WriteLogNew(s, log, rows);
    Console.WriteLine($"files: wide {new FileInfo(wide).Length / 1048576.0:F1} MiB, log {new FileInfo(logFile).Length / 1048576.0:F1} MiB");

    List<ColumnRequest> wideRequests = [.. Enumerable.Range(0, 20).Select(c => new ColumnRequest($"x{c}", ColumnType.Numeric))];
    List<ColumnRequest> logRequests =
    [
        new("timestamp", ColumnType.Text), new("request_id", ColumnType.Text), new("label", ColumnType.Text), new("row", ColumnType.Numeric),
        new("v0", ColumnType.Numeric), new("v1", ColumnType.Numeric), new("v2", ColumnType.Numeric), new("v3", ColumnType.Numeric),
    ];

    var results = new Dictionary<string, List<double>>();
    void Record(string key, double v) => (results.TryGetValue(key, out var l) ? l : results[key] = []).Add(v);
    for (var round = 0; round <= rounds; round++) // round 0 is the warm-up
    {
        var newWide = await Time(() => ReadNew(wide, wideRequests));
        var newLog = await Time(() => ReadNew(logFile, logRequests));
        // What the same read cost while tables held timestamps as text: the column formatted once per row, as then.
        var textLog = await Time(async () => ((TimestampColumn)(await ReadNew(logFile, logRequests))["timestamp"]).ToText());
        var sharp = await Time(() => { using var s = File.Create(Path.Combine(dir, "w-new.parquet")); WriteLogNew(s, log, rows); return Task.FromResult(0); });
        if (round == 0) continue;
        Console.WriteLine($"round {round}: read wide {newWide.Ms:F0} ms, cpu {newWide.CpuMs:F0} ms ({newWide.Mb:F0} MB); read log {newLog.Ms:F0} ms, cpu {newLog.CpuMs:F0} ms ({newLog.Mb:F0} MB); write log {sharp.Ms:F0} ms");
        Record("read wide", newWide.Ms); Record("read log", newLog.Ms); Record("write log", sharp.Ms);
        Record("cpu read wide", newWide.CpuMs); Record("cpu read log", newLog.CpuMs);
        Console.WriteLine($"         read log with the timestamp as text (as before): {textLog.Ms:F0} ms, cpu {textLog.CpuMs:F0} ms ({textLog.Mb:F0} MB)");
        Record("read log, timestamp as text", textLog.Ms); Record("cpu read log, timestamp as text", textLog.CpuMs); Record("alloc log as text MB", textLog.Mb);
        Record("alloc wide MB", newWide.Mb); Record("alloc log MB", newLog.Mb);
    }
    foreach (var (k, v) in results) Console.WriteLine($"median {k}: {Median(v):F2} (range {v.Min():F2}-{v.Max():F2})");
}
finally
{
    Directory.Delete(dir, recursive: true);
}
return 0;

static double Median(List<double> v)
{
    var s = v.Order().ToArray();
    return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
}

// Wall time, process CPU time (all threads: the better guide on a shared machine) and managed bytes allocated.
static async Task<(double Ms, double CpuMs, double Mb)> Time<T>(Func<Task<T>> f)
{
    GC.Collect();
    var a0 = GC.GetTotalAllocatedBytes(true);
    var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
    var sw = Stopwatch.StartNew();
    await f();
    var ms = sw.Elapsed.TotalMilliseconds;
    var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds;
    return (ms, cpu, (GC.GetTotalAllocatedBytes(true) - a0) / 1e6);
}

// What training, drift and import do with a whole file (TableReader.ReadAllAsync): each column read straight into place.
static Task<DataTable> ReadNew(string path, List<ColumnRequest> requests) => ParquetTable.ReadAllAsync(path, requests);

static Log MakeLog(int rows, Random rng)
{
    var start = new DateTime(2026, 12, 1, 0, 0, 0, DateTimeKind.Utc);
    string[] labels = ["yes", "no", "maybe"];
    var log = new Log(new DateTime[rows], new string?[rows], new string?[rows], new int[rows], [new double[rows], new double[rows], new double[rows], new double[rows]]);
    for (var r = 0; r < rows; r++)
    {
        log.Times[r] = start.AddTicks(r * 5_000L + rng.Next(10) * 10);
        log.Ids[r] = Guid.NewGuid().ToString("N");
        log.Labels[r] = rng.NextDouble() < 0.01 ? null : labels[rng.Next(labels.Length)];
        log.Rows[r] = rng.Next(4);
        for (var c = 0; c < 4; c++) log.Values[c][r] = rng.NextDouble() < 0.02 ? double.NaN : rng.NextDouble();
    }
    return log;
}

static ParquetColumn[] LogColumns() =>
[
    new("timestamp", ParquetColumnKind.Timestamp, false), new("request_id", ParquetColumnKind.Text, true), new("label", ParquetColumnKind.Text, true),
    new("row", ParquetColumnKind.Int32, false), new("v0", ParquetColumnKind.Double, true), new("v1", ParquetColumnKind.Double, true),
    new("v2", ParquetColumnKind.Double, true), new("v3", ParquetColumnKind.Double, true),
];

static void WriteLogNew(Stream s, Log log, int rows)
{
    using var w = new ParquetTableWriter(s, LogColumns());
    for (var start = 0; start < rows; start += GroupRows)
    {
        var n = Math.Min(GroupRows, rows - start);
        w.BeginRowGroup(n);
        w.WriteTimestamp(log.Times.AsSpan(start, n));
        w.WriteText(log.Ids.AsSpan(start, n));
        w.WriteText(log.Labels.AsSpan(start, n));
        w.WriteInt32(log.Rows.AsSpan(start, n));
        foreach (var v in log.Values) w.WriteDouble(v.AsSpan(start, n));
        w.EndRowGroup();
    }
    w.Finish();
}

internal sealed record Log(DateTime[] Times, string?[] Ids, string?[] Labels, int[] Rows, double[][] Values);
