// The drift step of one numeric column, warm, in one process (figures in docs/benchmarks.md, ## Monitoring, "The drift
// step without a sort"): ROWS current doubles (a normal shifted by 0.05 with one NaN per 1,000, as the `files` data)
// against a reference profile of 100,000 rows (its 2,048-value sample, deciles and range), two ways in alternating
// rounds:
//  - sorted: what kiln drift did before: radix sort of the finite values, the bin walk, the out-of-range count, the
//    Wasserstein walk and the KS statistic over the sorted values;
//  - cells:  what it does now: one pass counting the values over the sample's cut points (CellCounts), then the bins,
//    the out-of-range count, the Wasserstein distance and the KS statistic from the counts.
// Both give the KS statistic to the last digit and the Wasserstein distance to ~1e-15 relative (printed per round).
// Usage: dotnet run -c Release --project bench/Kiln.Bench.Monitoring -- step [--rows 1000000] [--columns 16] [--rounds 5]
using System.Diagnostics;
using System.Globalization;
using Kiln.Core.Data;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Statistics;

internal static class DriftStepBench
{
    public static int Run(string[] args)
    {
        var rows = 1_000_000;
        var columns = 16;
        var rounds = 5;
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            var v = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--rows": rows = v; break;
                case "--columns": columns = v; break;
                case "--rounds": rounds = v; break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }
        var rng = new Random(42);
        double Normal(double shift) => shift + Math.Sqrt(-2 * Math.Log(1.0 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        var referenceValues = new double[100_000];
        for (var i = 0; i < referenceValues.Length; i++) referenceValues[i] = Normal(0);
        var referenceTable = new DataTable(referenceValues.Length);
        referenceTable.Add(new NumericColumn("x", referenceValues));
        var reference = DatasetProfile.Build(referenceTable).Find("x")!;
        var rn = reference.Numeric!;
        var sample = rn.Sample.SortedValues();
        var edges = rn.Histogram.Edges;
        var current = new double[columns][];
        for (var c = 0; c < columns; c++)
        {
            current[c] = new double[rows];
            for (var i = 0; i < rows; i++) current[c][i] = i % 1000 == 0 ? double.NaN : Normal(0.05);
        }
        var buffer = new double[rows];
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}; " +
                          $"{columns} columns x {rows:N0} rows against a sample of {sample.Length:N0}, {edges.Length - 1} bins");

        double sink = 0;
        double Sorted()
        {
            double sortMs = 0;
            foreach (var values in current)
            {
                var t0 = Stopwatch.GetTimestamp();
                var n = RadixSort.SortFinite(values, buffer, out _, out _);
                sortMs += Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                var sorted = buffer.AsSpan(0, n);
                var bins = new double[edges.Length + 1];
                Binning.CountSorted(edges, sorted, bins);
                var outside = Binning.CountOutsideSorted(sorted, rn.Min, rn.Max);
                sink += bins[1] + outside + Distances.WassersteinSorted(sample, sorted) + KolmogorovSmirnov.Statistic(sample, sorted);
            }
            return sortMs;
        }
        double Cells()
        {
            double countMs = 0;
            foreach (var values in current)
            {
                var t0 = Stopwatch.GetTimestamp();
                var cuts = CutPoints.Create(sample, [.. edges, rn.Min, rn.Max])!;
                var cells = CellCounts.Of(cuts, values, buffer);
                countMs += Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                sink += cells.BinCounts(edges)[1] + cells.CountOutside(rn.Min, rn.Max) + cells.Wasserstein() + cells.KsStatistic();
            }
            return countMs;
        }
        // Same results: KS to the last digit, Wasserstein within 1e-12 relative.
        {
            var n = RadixSort.SortFinite(current[0], buffer, out _, out _);
            var sortedW = Distances.WassersteinSorted(sample, buffer.AsSpan(0, n));
            var sortedD = KolmogorovSmirnov.Statistic(sample, buffer.AsSpan(0, n));
            var cells = CellCounts.Of(CutPoints.Create(sample, [.. edges, rn.Min, rn.Max])!, current[0], new double[rows]);
            Console.WriteLine($"column 0: wasserstein sorted {sortedW:R} cells {cells.Wasserstein():R} (rel. diff {Math.Abs(sortedW - cells.Wasserstein()) / sortedW:E1}); " +
                              $"ks sorted {sortedD:R} cells {cells.KsStatistic():R}");
        }
        Sorted(); // warm-up: both compiled and tiered up before the rounds
        Cells();
        Sorted();
        Cells();
        var ratios = new List<double>();
        var sortedTimes = new List<double>();
        var cellTimes = new List<double>();
        for (var r = 1; r <= rounds; r++)
        {
            double sortedMs = 0, cellsMs = 0, sortedCpu = 0, cellsCpu = 0, sortPart = 0, countPart = 0;
            foreach (var which in r % 2 == 1 ? new[] { 0, 1 } : [1, 0])
            {
                var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                var t0 = Stopwatch.GetTimestamp();
                var split = which == 0 ? Sorted() : Cells();
                var ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds / columns;
                var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds / columns;
                if (which == 0) { sortedMs = ms; sortedCpu = cpu; sortPart = split / columns; }
                else { cellsMs = ms; cellsCpu = cpu; countPart = split / columns; }
            }
            ratios.Add(cellsMs / sortedMs);
            sortedTimes.Add(sortedMs);
            cellTimes.Add(cellsMs);
            Console.WriteLine($"round {r} ({(r % 2 == 1 ? "sorted" : "cells")} first, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}): per column " +
                              $"sorted {sortedMs:F1} ms (cpu {sortedCpu:F1}; sort {sortPart:F1}), cells {cellsMs:F1} ms (cpu {cellsCpu:F1}; count pass {countPart:F1}); cells/sorted {cellsMs / sortedMs:F2}");
        }
        Console.WriteLine($"median per column: sorted {Median(sortedTimes):F1} ms, cells {Median(cellTimes):F1} ms, ratio {Median(ratios):F2} (checksum {sink:G6})");
        return 0;
    }

    private static double Median(List<double> x)
    {
        var s = x.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }
}
