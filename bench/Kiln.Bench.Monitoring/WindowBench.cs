// Window evaluation over a prediction log (figures in docs/benchmarks.md, ## Monitoring, "Windows"):
// writes ROWS logged rows x FEATURES inputs in kiln serve's log schema (row groups of 50 000, as serve writes them),
// then evaluates the window (input drift, proxy metrics) with WindowEvaluator, and reports wall time, CPU time and
// the process's peak working set after each step, to show that a summarized window needs bounded memory.
// Usage: dotnet run -c Release --project bench/Kiln.Bench.Monitoring -- window [--rows 1000000] [--features 20] [--exact 100000]
using System.Diagnostics;
using System.Globalization;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Windows;

internal static class WindowBench
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rows = 1_000_000;
        var features = 20;
        var exact = 100_000;
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            var v = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--rows": rows = v; break;
                case "--features": features = v; break;
                case "--exact": exact = v; break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }
        var categorical = features / 5;
        var root = Path.Combine(Path.GetTempPath(), $"kiln-bench-window-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        try
        {
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}; window of {rows:N0} rows x {features} features, exact up to {exact:N0}");
            string[] labels = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"];
            var rng = new Random(42);
            DataTable Make(int n, double shift)
            {
                var t = new DataTable(n);
                for (var f = 0; f < features; f++)
                {
                    if (f < categorical)
                    {
                        var s = new string?[n];
                        for (var r = 0; r < n; r++) s[r] = labels[Math.Min(labels.Length - 1, (int)(rng.NextDouble() * rng.NextDouble() * labels.Length + shift))];
                        t.Add(new TextColumn($"c{f}", s));
                    }
                    else
                    {
                        var d = new double[n];
                        for (var r = 0; r < n; r++) d[r] = shift + Math.Sqrt(-2 * Math.Log(1.0 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
                        t.Add(new NumericColumn($"x{f}", d));
                    }
                }
                return t;
            }

            // The package: reference profiles of 100 000 training rows and 20 000 holdout outputs.
            var training = Make(100_000, 0);
            var outputs = new DataTable(20_000)
                .Add(new TextColumn("prediction", [.. Enumerable.Range(0, 20_000).Select(i => i % 3 == 0 ? "yes" : "no")]))
                .Add(new NumericColumn("probability", [.. Enumerable.Range(0, 20_000).Select(_ => rng.NextDouble())]));
            string packageDir;
            using (var writer = new PackageWriter(Path.Combine(root, "pkg")))
            {
                File.WriteAllBytes(writer.PathOf("model.onnx"), [0]);
                writer.WriteJson(ModelPackage.SignatureFile, new ModelSignature
                {
                    Task = ModelTask.Binary,
                    Inputs = [.. training.Columns.Select(c => new InputField { Name = c.Name, Type = c is NumericColumn ? ColumnKind.Numeric : ColumnKind.Categorical })],
                    Outputs = [new OutputField { Name = "prediction", Type = "categorical" }, new OutputField { Name = "probability", Type = "numeric" }],
                    ClassLabels = ["no", "yes"],
                });
                writer.WriteJson(ModelPackage.MetadataFile, new PackageMetadata
                {
                    Name = "bench",
                    Task = ModelTask.Binary,
                    CreatedAt = DateTimeOffset.UnixEpoch,
                    Runtime = new RuntimeInfo { Kiln = "bench", Dotnet = Environment.Version.ToString(), Os = "bench" },
                });
                writer.WriteJson(ModelPackage.ProfileFile, new PackageProfile { Inputs = DatasetProfile.Build(training), Outputs = DatasetProfile.Build(outputs) });
                packageDir = writer.Commit("bench", ModelTask.Binary, ModelRuntime.Onnx, "model.onnx", DateTimeOffset.UnixEpoch);
            }
            training = null;
            var package = ModelPackage.Load(packageDir);

            // The log: one file, row groups of 50 000 rows, one row per second from 00:00 UTC.
            var start = new DateTime(2026, 11, 26, 0, 0, 0, DateTimeKind.Utc);
            var clock = Stopwatch.StartNew();
            var dir = Path.Combine(root, "log", "model=bench", "version=1", "date=2026-11-26");
            Directory.CreateDirectory(dir);
            var columns = new List<ParquetColumn>
            {
                new("request_id", ParquetColumnKind.Text, true),
                new("timestamp", ParquetColumnKind.Timestamp, false),
                new("row", ParquetColumnKind.Int32, false),
            };
            for (var f = 0; f < features; f++) columns.Add(f < categorical ? new($"input_c{f}", ParquetColumnKind.Text, true) : new($"input_x{f}", ParquetColumnKind.Double, true));
            columns.Add(new("prediction", ParquetColumnKind.Text, true));
            columns.Add(new("value", ParquetColumnKind.Double, false));
            await using (var stream = File.Create(Path.Combine(dir, "part-1.parquet")))
            using (var pw = new ParquetTableWriter(stream, columns))
            {
                const int Group = 50_000;
                for (var first = 0; first < rows; first += Group)
                {
                    var n = Math.Min(Group, rows - first);
                    var t = Make(n, 0.3);
                    pw.BeginRowGroup(n);
                    pw.WriteText(Enumerable.Range(first, n).Select(i => (string?)("r" + i.ToString(CultureInfo.InvariantCulture))).ToArray());
                    pw.WriteTimestamp(Enumerable.Range(first, n).Select(i => start.AddSeconds(i * 86_000.0 / rows)).ToArray());
                    pw.WriteInt32(new int[n]);
                    foreach (var c in t.Columns)
                    {
                        if (c is TextColumn tc) pw.WriteText(tc.Values.AsSpan(0, n));
                        else pw.WriteDouble(((NumericColumn)c).Values.AsSpan(0, n));
                    }
                    var p = Enumerable.Range(0, n).Select(_ => rng.NextDouble()).ToArray();
                    pw.WriteText(p.Select(v => (string?)(v >= 0.5 ? "yes" : "no")).ToArray());
                    pw.WriteDouble(p);
                    pw.EndRowGroup();
                }
                pw.Finish();
            }
            Report("write the log", clock.Elapsed, TimeSpan.Zero);

            var log = Path.Combine(root, "log");
            for (var run = 0; run < 2; run++)
            {
                GC.Collect();
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                clock.Restart();
                var report = await WindowEvaluator.EvaluateAsync(package, log, "bench", start, start.AddDays(1), new WindowOptions { MaxExactRows = exact, Feedback = false });
                Report($"evaluate the window (run {run + 1}; {report.Rows:N0} rows, exact={report.Exact}, {report.Drift.FeaturesDrifted}/{report.Drift.FeaturesTested} drifted)",
                    clock.Elapsed, Process.GetCurrentProcess().TotalProcessorTime - cpu);
            }
            {
                GC.Collect();
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                clock.Restart();
                var all = await PredictionLogReader.ReadAllAsync(new LogWindow(log, "bench", start, start.AddDays(1)));
                Report($"for comparison: read the whole window into memory ({all.Rows:N0} rows)", clock.Elapsed, Process.GetCurrentProcess().TotalProcessorTime - cpu);
                GC.KeepAlive(all);
            }
            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static void Report(string what, TimeSpan wall, TimeSpan cpu)
    {
        var p = Process.GetCurrentProcess();
        Console.WriteLine($"{what}: wall {wall.TotalSeconds:F2} s, CPU {cpu.TotalSeconds:F2} s; peak working set so far {p.PeakWorkingSet64 / (1 << 20):N0} MiB, managed heap now {GC.GetTotalMemory(false) / (1 << 20):N0} MiB");
    }
}
