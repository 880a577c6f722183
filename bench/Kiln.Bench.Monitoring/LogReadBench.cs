// Reading one window of the prediction log (figures in docs/benchmarks.md, ## Monitoring, "Reading a log window"):
// writes ROWS logged rows x FEATURES inputs with Kiln's log writer (ParquetTableWriter) in kiln serve's log columns
// (row groups of 50 000), then, in alternating rounds, reads the whole window with PredictionLogReader (what kiln
// monitor's windows use: bounded memory, one row group ahead) and the same file's columns with ParquetTable.ReadAllAsync
// (what kiln drift of a file uses: the whole file at once), and prints wall and CPU time per round and their ratio.
// (The readers it was first compared with, Parquet.Net and Kiln's own decoder, were deleted; their figures stay in
// docs/benchmarks.md.)
// Usage: dotnet run -c Release --project bench/Kiln.Bench.Monitoring -- logread [--rows 1000000] [--features 20] [--rounds 5]
using System.Diagnostics;
using System.Globalization;
using Kiln.Core.Data;
using Kiln.Core.PredictionLog;
using Kiln.Monitoring.Windows;

internal static class LogReadBench
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rows = 1_000_000;
        var features = 20;
        var rounds = 5;
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            var v = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--rows": rows = v; break;
                case "--features": features = v; break;
                case "--rounds": rounds = v; break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }
        var categorical = features / 5;
        var root = Path.Combine(Path.GetTempPath(), $"kiln-bench-logread-{Guid.NewGuid():N}");
        try
        {
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}; window of {rows:N0} rows x {features} inputs ({categorical} text), {rounds} rounds");
            var start = new DateTime(2026, 11, 26, 0, 0, 0, DateTimeKind.Utc);
            var dir = Path.Combine(root, "model=bench", "version=1", "date=2026-11-26");
            Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, "part-1.parquet");
            var clock = Stopwatch.StartNew();
            Write(path, rows, features, categorical, start);
            Console.WriteLine($"write the log: {clock.Elapsed.TotalSeconds:F2} s, {new FileInfo(path).Length / (1 << 20):N0} MiB");

            var file = new LogFile(path, "1", DateOnly.FromDateTime(start));
            var from = start;
            var to = start.AddDays(1);
            var sum = await ReadAsync(PredictionLogReader.ReadFileAsync(file, from, to)); // warm-up
            Console.WriteLine($"reader: {sum.Rows:N0} rows, checksum {sum.Checksum:R}");
            // kiln drift's read of the same file: every column the window reader returns but the timestamps and row
            // indexes (a DataTable has no timestamp column; drift does not read them).
            var requests = new List<ColumnRequest> { new(PredictionLogLayout.RequestId, ColumnType.Text) };
            for (var f = 0; f < features; f++)
                requests.Add(new(PredictionLogLayout.InputPrefix + (f < categorical ? $"c{f}" : $"x{f}"), f < categorical ? ColumnType.Text : ColumnType.Numeric));
            requests.Add(new(PredictionLogLayout.Prediction, ColumnType.Text));
            requests.Add(new(PredictionLogLayout.Value, ColumnType.Numeric));
            _ = await ParquetTable.ReadAllAsync(path, requests); // warm-up
            Console.WriteLine($"round (first) | window reader wall / CPU | drift's whole-file read ({requests.Count} columns) wall / CPU | wall ratio (drift / window)");
            var ratios = new List<double>();
            for (var r = 1; r <= rounds; r++)
            {
                (double Wall, double Cpu) window, whole;
                if (r % 2 == 1)
                {
                    window = await TimeAsync(PredictionLogReader.ReadFileAsync(file, from, to));
                    whole = await TimeAsync(() => ParquetTable.ReadAllAsync(path, requests));
                }
                else
                {
                    whole = await TimeAsync(() => ParquetTable.ReadAllAsync(path, requests));
                    window = await TimeAsync(PredictionLogReader.ReadFileAsync(file, from, to));
                }
                ratios.Add(whole.Wall / window.Wall);
                Console.WriteLine($"{r} ({(r % 2 == 1 ? "window" : "drift")}) | {window.Wall:F2} s / {window.Cpu:F2} s | {whole.Wall:F2} s / {whole.Cpu:F2} s | {whole.Wall / window.Wall:F2}");
            }
            ratios.Sort();
            Console.WriteLine($"median wall ratio (drift's read / window reader): {ratios[ratios.Count / 2]:F2}");
            return 0;
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<(double Wall, double Cpu)> TimeAsync(IAsyncEnumerable<LogBatch> batches)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        await ReadAsync(batches);
        return (clock.Elapsed.TotalSeconds, (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds);
    }

    private static async Task<(double Wall, double Cpu)> TimeAsync(Func<Task<DataTable>> read)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var table = await read();
        GC.KeepAlive(table);
        return (clock.Elapsed.TotalSeconds, (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds);
    }

    /// <summary>Consumes the window batch by batch, as WindowEvaluator does; the checksum touches every column.</summary>
    private static async Task<(long Rows, double Checksum)> ReadAsync(IAsyncEnumerable<LogBatch> batches)
    {
        long n = 0;
        double sum = 0;
        await foreach (var b in batches)
        {
            n += b.Rows;
            for (var i = 0; i < b.Rows; i++)
            {
                sum += b.Values[i] + b.RowIndexes[i] + b.RequestIds[i].Length + (b.Predictions[i]?.Length ?? 0) + b.Timestamps[i].Ticks % 1000;
            }
            foreach (var c in b.Inputs.Columns)
            {
                if (c is NumericColumn nc) { foreach (var v in nc.Values.AsSpan(0, b.Rows)) if (!double.IsNaN(v)) sum += v; }
                else foreach (var s in ((TextColumn)c).Values.AsSpan(0, b.Rows)) sum += s?.Length ?? 0;
            }
        }
        return (n, sum);
    }

    /// <summary>The log file as kiln serve writes it: its columns (Kiln.Serving's LogColumns.For), Kiln's writer, row groups of 50 000.</summary>
    private static void Write(string path, int rows, int features, int categorical, DateTime start)
    {
        string[] labels = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"];
        var columns = new List<ParquetColumn>
        {
            new(PredictionLogLayout.RequestId, ParquetColumnKind.Text, true),
            new(PredictionLogLayout.Timestamp, ParquetColumnKind.Timestamp, false),
            new(PredictionLogLayout.Model, ParquetColumnKind.Text, true),
            new(PredictionLogLayout.Version, ParquetColumnKind.Text, true),
            new(PredictionLogLayout.Protocol, ParquetColumnKind.Text, true),
            new(PredictionLogLayout.Row, ParquetColumnKind.Int32, false),
        };
        for (var f = 0; f < features; f++)
            columns.Add(new(PredictionLogLayout.InputPrefix + (f < categorical ? $"c{f}" : $"x{f}"), f < categorical ? ParquetColumnKind.Text : ParquetColumnKind.Double, true));
        columns.Add(new(PredictionLogLayout.Prediction, ParquetColumnKind.Text, true));
        columns.Add(new(PredictionLogLayout.Value, ParquetColumnKind.Double, false));
        columns.Add(new(PredictionLogLayout.Flags, ParquetColumnKind.Text, true));
        var rng = new Random(42);
        using var stream = File.Create(path);
        using var writer = new ParquetTableWriter(stream, columns);
        const int Group = 50_000;
        var text = new string?[Group];
        var numbers = new double[Group];
        var times = new DateTime[Group];
        var ints = new int[Group];
        for (var first = 0; first < rows; first += Group)
        {
            var n = Math.Min(Group, rows - first);
            writer.BeginRowGroup(n);
            for (var i = 0; i < n; i++) text[i] = (first + i).ToString("x24", CultureInfo.InvariantCulture);
            writer.WriteText(text.AsSpan(0, n));
            for (var i = 0; i < n; i++) times[i] = start.AddTicks((long)((first + i) * (TimeSpan.TicksPerDay * 0.99 / rows)));
            writer.WriteTimestamp(times.AsSpan(0, n));
            Array.Fill(text, "bench");
            writer.WriteText(text.AsSpan(0, n));
            Array.Fill(text, "1");
            writer.WriteText(text.AsSpan(0, n));
            Array.Fill(text, "native");
            writer.WriteText(text.AsSpan(0, n));
            writer.WriteInt32(ints.AsSpan(0, n));
            for (var f = 0; f < features; f++)
            {
                if (f < categorical)
                {
                    for (var i = 0; i < n; i++) text[i] = labels[Math.Min(labels.Length - 1, (int)(rng.NextDouble() * rng.NextDouble() * labels.Length + 0.3))];
                    writer.WriteText(text.AsSpan(0, n));
                }
                else
                {
                    for (var i = 0; i < n; i++) numbers[i] = i % 1000 == 0 ? double.NaN : 0.3 + Math.Sqrt(-2 * Math.Log(1.0 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
                    writer.WriteDouble(numbers.AsSpan(0, n));
                }
            }
            for (var i = 0; i < n; i++) numbers[i] = rng.NextDouble();
            for (var i = 0; i < n; i++) text[i] = numbers[i] >= 0.5 ? "yes" : "no";
            writer.WriteText(text.AsSpan(0, n));
            writer.WriteDouble(numbers.AsSpan(0, n));
            Array.Fill(text, null);
            writer.WriteText(text.AsSpan(0, n));
            writer.EndRowGroup();
        }
        writer.Finish();
    }
}
