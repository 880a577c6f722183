// Monitoring benchmarks (figures in docs/benchmarks.md, ## Monitoring):
//  1. the cost of updating a live profile, per feature per logged row (goal: <= 1 µs);
//  2. drift of ROWS current rows x FEATURES features against a reference profile, from Parquet, end to end (goal: <= 1 s).
// Usage: dotnet run -c Release --project bench/Kiln.Bench.Monitoring -- [--rows 1000000] [--features 20] [--runs 3]
// (`-- metrics …` runs MetricsScrapeBench.cs: GET /metrics with 100 models x 20 features of monitoring gauges.)
// (`-- render …` runs ServingRenderBench.cs: the cost of one render of kiln serve's /metrics, time and allocation.)
// (`-- files --dir DIR …` writes DIR/current.parquet and DIR/model, a package whose reference profile is the one above, for
//  timing `kiln drift --model DIR/model --current DIR/current.parquet` as a fresh process: bench/monitoring/drift-fresh.sh.)
// (`-- step …` runs DriftStepBench.cs: one numeric column's drift step, warm, sorted (before) against counted over cut points.)
// (`-- window …` runs WindowBench.cs: evaluation of a prediction-log window; `-- logread …` runs LogReadBench.cs: reading one, old reader vs new.)
using System.Diagnostics;
using System.Globalization;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Drift;

if (args.Length > 0 && args[0] == "window") return await WindowBench.RunAsync(args[1..]);
if (args.Length > 0 && args[0] == "logread") return await LogReadBench.RunAsync(args[1..]);
if (args.Length > 0 && args[0] == "metrics") return await MetricsScrapeBench.RunAsync(args[1..]);
if (args.Length > 0 && args[0] == "render") return ServingRenderBench.Run(args[1..]);
if (args.Length > 0 && args[0] == "step") return DriftStepBench.Run(args[1..]);
var rows = 1_000_000;
var features = 20;
var runs = 3;
string? filesDir = null;
var filesOnly = args.Length > 0 && args[0] == "files";
if (filesOnly) args = args[1..];
for (var i = 0; i + 1 < args.Length; i += 2)
{
    if (args[i] == "--dir") { filesDir = args[i + 1]; continue; }
    var v = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
    switch (args[i])
    {
        case "--rows": rows = v; break;
        case "--features": features = v; break;
        case "--runs": runs = v; break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}
var categorical = features / 5; // one feature in five holds labels
Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}");

var rng = new Random(42);
string[] labels = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"];

DataTable MakeTable(int n, double shift)
{
    var t = new DataTable(n);
    for (var f = 0; f < features; f++)
    {
        if (f < categorical)
        {
            var v = new string?[n];
            for (var r = 0; r < n; r++) v[r] = labels[Math.Min(labels.Length - 1, (int)(rng.NextDouble() * rng.NextDouble() * labels.Length + shift))];
            t.Add(new TextColumn($"c{f}", v));
        }
        else
        {
            var v = new double[n];
            for (var r = 0; r < n; r++)
            {
                var u1 = 1.0 - rng.NextDouble();
                v[r] = shift + Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * rng.NextDouble());
                if (r % 1000 == 0) v[r] = double.NaN;
            }
            t.Add(new NumericColumn($"x{f}", v));
        }
    }
    return t;
}

var referenceTable = MakeTable(100_000, 0);
var reference = DatasetProfile.Build(referenceTable);

if (filesOnly)
{
    if (filesDir is null) { Console.Error.WriteLine("files: --dir DIR is required"); return 2; }
    Directory.CreateDirectory(filesDir);
    var current = Path.Combine(filesDir, "current.parquet");
    await ParquetTable.WriteAsync(MakeTable(rows, 0.05), current);
    var model = Path.Combine(filesDir, "model");
    if (Directory.Exists(model)) Directory.Delete(model, recursive: true);
    // Drift reads only the signature and the reference profile; the model file is a placeholder that nothing loads.
    using (var writer = new PackageWriter(model))
    {
        File.WriteAllBytes(writer.PathOf("model.onnx"), [0]);
        writer.WriteJson(ModelPackage.SignatureFile, new ModelSignature
        {
            Task = ModelTask.Regression,
            Inputs = [.. reference.Columns.Select(c => new InputField { Name = c.Name, Type = c.Kind })],
            Outputs = [new OutputField { Name = "prediction", Type = "numeric" }],
        });
        writer.WriteJson(ModelPackage.MetadataFile, new PackageMetadata
        {
            Name = "drift-bench",
            Task = ModelTask.Regression,
            CreatedAt = DateTimeOffset.UnixEpoch,
            Runtime = new RuntimeInfo { Kiln = "bench", Dotnet = Environment.Version.ToString(), Os = "bench" },
        });
        writer.WriteJson(ModelPackage.ProfileFile, new PackageProfile { Inputs = reference, Outputs = new DatasetProfile() });
        writer.Commit("drift-bench", ModelTask.Regression, ModelRuntime.Onnx, "model.onnx", DateTimeOffset.UnixEpoch);
    }
    Console.WriteLine($"wrote {current} ({rows:N0} rows x {features} features, {new FileInfo(current).Length / 1048576.0:F1} MiB) and {model}");
    return 0;
}

// ---- 1. live profile updates ------------------------------------------------------------------
{
    var numeric = ((NumericColumn)referenceTable[$"x{features - 1}"]).Values;
    var text = ((TextColumn)referenceTable["c0"]).Values;
    var liveNumeric = reference.Find($"x{features - 1}")!.NewEmptyLike(7);
    var liveText = reference.Find("c0")!.NewEmptyLike(7);
    for (var w = 0; w < 2; w++) foreach (var v in numeric) liveNumeric.Add(v); // warm-up
    foreach (var v in text) liveText.Add(v);
    const int passes = 20;
    var sw = Stopwatch.StartNew();
    var cpu = Cpu();
    for (var p = 0; p < passes; p++) foreach (var v in numeric) liveNumeric.Add(v);
    var numericNs = sw.Elapsed.TotalNanoseconds / (passes * (double)numeric.Length);
    var numericCpuNs = (Cpu() - cpu).TotalNanoseconds / (passes * (double)numeric.Length);
    sw.Restart();
    cpu = Cpu();
    for (var p = 0; p < passes; p++) foreach (var v in text) liveText.Add(v);
    var textNs = sw.Elapsed.TotalNanoseconds / (passes * (double)text.Length);
    var textCpuNs = (Cpu() - cpu).TotalNanoseconds / (passes * (double)text.Length);
    // A whole row: every feature of the profile (as the serving log path would do per request).
    var live = reference.NewEmptyLike(9);
    var oneRow = referenceTable.Take([0]);
    live.Add(oneRow);
    var batch = referenceTable.Take(Enumerable.Range(0, 10_000).ToArray());
    sw.Restart();
    cpu = Cpu();
    for (var p = 0; p < 10; p++) live.Add(batch);
    var rowNs = sw.Elapsed.TotalNanoseconds / (10.0 * batch.RowCount);
    var rowCpuNs = (Cpu() - cpu).TotalNanoseconds / (10.0 * batch.RowCount);
    Console.WriteLine($"live profile update (wall / cpu): numeric {numericNs:F1} / {numericCpuNs:F1} ns per value, " +
                      $"categorical {textNs:F1} / {textCpuNs:F1} ns per value, whole row of {features} features " +
                      $"{rowNs:F0} / {rowCpuNs:F0} ns ({rowNs / features:F1} / {rowCpuNs / features:F1} ns per feature)");
}

// ---- 2. drift from Parquet, end to end --------------------------------------------------------
var dir = Path.Combine(Path.GetTempPath(), $"kiln-bench-monitoring-{Guid.NewGuid():N}");
Directory.CreateDirectory(dir);
try
{
    var file = Path.Combine(dir, "current.parquet");
    await ParquetTable.WriteAsync(MakeTable(rows, 0.05), file);
    var requests = new List<ColumnRequest>();
    foreach (var c in reference.Columns) requests.Add(new ColumnRequest(c.Name, c.Kind == ColumnKind.Numeric ? ColumnType.Numeric : ColumnType.Text));
    foreach (var decoder in new[] { "ParquetSharp" })
    {
        var best = double.MaxValue;
        for (var run = 0; run < runs; run++)
        {
            GC.Collect();
            var gc0 = GC.GetTotalPauseDuration();
            var jit0 = System.Runtime.JitInfo.GetCompilationTime();
            var methods0 = System.Runtime.JitInfo.GetCompiledMethodCount();
            var sw = Stopwatch.StartNew();
            var cpu0 = Cpu();
            var table = await TableReader.ReadAllAsync([file], requests);
            var read = sw.Elapsed.TotalMilliseconds;
            var cpuRead = (Cpu() - cpu0).TotalMilliseconds;
            var jitRead = System.Runtime.JitInfo.GetCompilationTime() - jit0;
            var methodsRead = System.Runtime.JitInfo.GetCompiledMethodCount() - methods0;
            var report = DriftCalculator.Compare(reference, table);
            var total = sw.Elapsed.TotalMilliseconds;
            var cpuTotal = (Cpu() - cpu0).TotalMilliseconds;
            // Time the JIT spent (all threads) and methods it compiled: in a fresh process, start-up cost of the step.
            Console.WriteLine($"  jit: read {jitRead.TotalMilliseconds:F0} ms ({methodsRead} methods), drift {(System.Runtime.JitInfo.GetCompilationTime() - jit0 - jitRead).TotalMilliseconds:F0} ms " +
                              $"({System.Runtime.JitInfo.GetCompiledMethodCount() - methods0 - methodsRead} methods); since process start {System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds:F0} ms");
            best = Math.Min(best, total);
            Console.WriteLine($"drift run {run + 1} (read by {decoder}): {table.RowCount:N0} rows x {features} features: read {read:F0} ms (cpu {cpuRead:F0}), " +
                              $"drift {total - read:F0} ms (cpu {cpuTotal - cpuRead:F0}), total {total:F0} ms (cpu {cpuTotal:F0}, gc pauses {(GC.GetTotalPauseDuration() - gc0).TotalMilliseconds:F0}); " +
                              $"tests {report.Features[0].Test}/{report.Features[^1].Test}, drifted {report.FeaturesDrifted}/{report.FeaturesTested}");
        }
        Console.WriteLine($"drift end to end, read by {decoder} (best of {runs}): {best:F0} ms");
    }

    // Against a live profile of the same window instead of raw rows.
    var table2 = await TableReader.ReadAllAsync([file], requests);
    var currentProfile = reference.NewEmptyLike(3);
    var swp = Stopwatch.StartNew();
    currentProfile.Add(table2);
    var profileMs = swp.Elapsed.TotalMilliseconds;
    swp.Restart();
    var r2 = DriftCalculator.Compare(reference, currentProfile);
    Console.WriteLine($"profile of the window: {profileMs:F0} ms; drift profile vs profile: {swp.Elapsed.TotalMilliseconds:F1} ms (drifted {r2.FeaturesDrifted}/{r2.FeaturesTested})");
}
finally
{
    Directory.Delete(dir, recursive: true);
}
return 0;

static TimeSpan Cpu() => Process.GetCurrentProcess().TotalProcessorTime;
