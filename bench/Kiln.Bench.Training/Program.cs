// Kiln.Bench.Training: the Speed section of issue 2 (loading, profiling, training), each next to
// its peer (pandas, scikit-learn) measured in the same run. bench/training/run.sh runs it; the
// figures and the command are in docs/benchmarks.md under "Training".
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Bench.Training;
using Kiln.Core.Data;
using Kiln.Core.Profiling;
using static Kiln.Bench.Training.Bench;

var options = Options.Parse(args);
Directory.CreateDirectory(options.Work);
var results = new JsonObject
{
    ["benchmark"] = "training",
    ["started_at"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
    ["command"] = options.Command,
    ["machine"] = Machine.Describe(),
};
var table = new List<(string Name, string Kiln, string Peer, string Goal)>();

if (options.Sections.Contains("profile") || options.Sections.Contains("load"))
{
    Log($"generating {options.Rows:N0} rows x 20 columns (seed {options.Seed})");
    var wide = DataGen.Wide(options.Rows, options.Seed);

    if (options.Sections.Contains("profile"))
    {
        Log($"profiling: a warm-up on {WarmupRows:N0} rows, then {options.ProfileRuns} timed runs");
        DatasetProfile.Build(wide.Take([.. Enumerable.Range(0, Math.Min(WarmupRows, options.Rows))]));
        var seconds = new List<double>();
        var cpu = new List<double>();
        for (var i = 0; i < options.ProfileRuns; i++)
        {
            var timing = Timing.Start();
            var profile = DatasetProfile.Build(wide);
            var (wall, used) = timing.Stop();
            seconds.Add(wall);
            cpu.Add(used);
            if (profile.Rows != options.Rows || profile.Columns.Count != 20) throw new InvalidOperationException("profile is incomplete");
            Log($"  run {i + 1}: {wall:F3} s (cpu {used:F3} s)");
        }
        var median = Median(seconds);

        // For comparison: a full sort of every numeric column, which is how Build found the
        // histogram edges before it used selection (it was 1.7 of 2.3 s of CPU).
        var sortTiming = Timing.Start();
        foreach (var c in wide.Columns)
        {
            if (c is NumericColumn n)
            {
                var finite = n.Values.Where(double.IsFinite).ToArray();
                Array.Sort(finite);
            }
        }
        var (_, sortCpu) = sortTiming.Stop();
        Log($"  for comparison, a full sort of the 15 numeric columns takes {sortCpu:F3} s of cpu");
        results["profile"] = new JsonObject
        {
            ["rows"] = options.Rows,
            ["columns"] = 20,
            ["numeric_columns"] = 15,
            ["categorical_columns"] = 5,
            ["runs_seconds"] = ToJson(seconds),
            ["median_seconds"] = median,
            ["runs_cpu_seconds"] = ToJson(cpu),
            ["median_cpu_seconds"] = Median(cpu),
            ["full_sort_of_numeric_columns_cpu_seconds"] = sortCpu,
            ["threads"] = "one per column (Parallel.For), up to the processor count",
            ["goal_seconds"] = 2.0,
            ["meets_goal"] = median <= 2.0,
        };
        table.Add(($"Profile {options.Rows:N0} x 20 (DatasetProfile.Build)", $"{median:F2} s (cpu {Median(cpu):F2} s)", "-", "<= 2 s " + (median <= 2.0 ? "(met)" : "(MISSED)")));
    }

    if (options.Sections.Contains("load"))
    {
        var csv = Path.Combine(options.Work, "wide.csv");
        var parquet = Path.Combine(options.Work, "wide.parquet");
        Log($"writing {csv} and {parquet}");
        DataGen.WriteCsv(wide, csv);
        await ParquetTable.WriteAsync(wide, parquet);
        var warmup = wide.Take([.. Enumerable.Range(0, Math.Min(WarmupRows, options.Rows))]);
        var warmupFiles = new Dictionary<string, string>
        {
            ["csv"] = Path.Combine(options.Work, "warmup.csv"),
            ["parquet"] = Path.Combine(options.Work, "warmup.parquet"),
        };
        DataGen.WriteCsv(warmup, warmupFiles["csv"]);
        await ParquetTable.WriteAsync(warmup, warmupFiles["parquet"]);
        var requests = wide.Columns.Select(c => new ColumnRequest(c.Name, c is NumericColumn ? ColumnType.Numeric : ColumnType.Text)).ToArray();
        wide = null;
        var load = new JsonObject
        {
            ["rows"] = options.Rows,
            ["columns"] = 20,
            ["csv_bytes"] = new FileInfo(csv).Length,
            ["parquet_bytes"] = new FileInfo(parquet).Length,
        };
        foreach (var (name, path) in new[] { ("csv", csv), ("parquet", parquet) })
        {
            Log($"loading {name}: a warm-up on {WarmupRows:N0} rows, then {options.LoadRuns} timed runs");
            await TableReader.ReadAllAsync([warmupFiles[name]], requests);
            var seconds = new List<double>();
            var cpu = new List<double>();
            for (var i = 0; i < options.LoadRuns; i++)
            {
                var timing = Timing.Start();
                var t = await TableReader.ReadAllAsync([path], requests);
                var (wall, used) = timing.Stop();
                seconds.Add(wall);
                cpu.Add(used);
                if (t.RowCount != options.Rows) throw new InvalidOperationException($"{path}: read {t.RowCount} rows, expected {options.Rows}");
                Log($"  run {i + 1}: {wall:F3} s (cpu {used:F3} s)");
            }
            var median = Median(seconds);
            load[$"kiln_{name}"] = new JsonObject
            {
                ["runs_seconds"] = ToJson(seconds),
                ["median_seconds"] = median,
                ["rows_per_second"] = options.Rows / median,
                ["runs_cpu_seconds"] = ToJson(cpu),
                ["median_cpu_seconds"] = Median(cpu),
            };
            table.Add(($"Load {name} (TableReader.ReadAllAsync)", $"{options.Rows / median:N0} rows/s ({median:F2} s, cpu {Median(cpu):F2} s)",
                name == "csv" ? "see pandas row" : "pandas: n/a (no pyarrow)", "-"));
        }
        Log("pandas.read_csv on the same CSV");
        var pandas = await Python.RunJsonAsync(options, "pandas_read_csv.py", csv, options.LoadRuns.ToString(CultureInfo.InvariantCulture));
        var pandasSeconds = pandas["seconds"]!.AsArray().Select(n => n!.GetValue<double>()).ToList();
        var pandasMedian = Median(pandasSeconds);
        var pandasCpu = pandas["cpu_seconds"]!.AsArray().Select(n => n!.GetValue<double>()).ToList();
        if (pandas["rows"]!.GetValue<int>() != options.Rows) throw new InvalidOperationException("pandas read a different number of rows");
        load["pandas_csv"] = new JsonObject
        {
            ["version"] = pandas["pandas"]!.GetValue<string>(),
            ["runs_seconds"] = ToJson(pandasSeconds),
            ["median_seconds"] = pandasMedian,
            ["rows_per_second"] = options.Rows / pandasMedian,
            ["runs_cpu_seconds"] = ToJson(pandasCpu),
            ["median_cpu_seconds"] = Median(pandasCpu),
        };
        load["pandas_parquet"] = "not measured: Debian's python3 here has no pyarrow or fastparquet, so pandas.read_parquet cannot run";
        table.Add(("Load csv (pandas.read_csv, same file)", "-", $"{options.Rows / pandasMedian:N0} rows/s ({pandasMedian:F2} s, cpu {Median(pandasCpu):F2} s)", "-"));
        results["load"] = load;
    }
}

if (options.Sections.Contains("train"))
{
    results["train"] = await SeedArticle.RunAsync(options, table);
}

results["finished_at"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);
Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(options.Out))!);
await File.WriteAllTextAsync(options.Out, results.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

var w0 = Math.Max(8, table.Max(r => r.Name.Length));
var w1 = Math.Max(4, table.Max(r => r.Kiln.Length));
var w2 = Math.Max(4, table.Max(r => r.Peer.Length));
Console.WriteLine();
Console.WriteLine($"{"Measure".PadRight(w0)} | {"Kiln".PadRight(w1)} | {"Peer".PadRight(w2)} | Goal");
Console.WriteLine($"{new string('-', w0)}-|-{new string('-', w1)}-|-{new string('-', w2)}-|-----");
foreach (var r in table) Console.WriteLine($"{r.Name.PadRight(w0)} | {r.Kiln.PadRight(w1)} | {r.Peer.PadRight(w2)} | {r.Goal}");
Console.WriteLine();
Console.WriteLine($"results: {options.Out}");
return 0;
