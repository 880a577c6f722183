// What one scrape of kiln serve's /metrics costs inside the server: the exporter's Render() and WriteAsync() over the serving meter with
// the series the quickstart's fraud model has after traffic (kiln serve's own meter and exporter classes), timed and
// with the bytes it allocates, and the same for the ways of reading the process metrics, measured alone.
// Usage: dotnet bench/Kiln.Bench.Monitoring/bin/Release/net10.0/Kiln.Bench.Monitoring.dll render [--renders 2000]
// Figures in docs/benchmarks.md (## Monitoring, the scrape-impact part).
using System.Diagnostics;
using System.Globalization;
using Kiln.Serving.Metrics;
using Microsoft.AspNetCore.Http;

internal static class ServingRenderBench
{
    public static int Run(string[] args)
    {
        var renders = args.Length >= 2 && args[0] == "--renders" ? int.Parse(args[1], CultureInfo.InvariantCulture) : 2000;
        using var metrics = new ServingMetrics();
        using var exporter = new PrometheusExporter(metrics.Meter);
        // What kiln serve has recorded after single-row traffic on one model version (as in bench/serving/scrape-impact.sh).
        var inFlight = metrics.InFlight("native");
        var rng = new Random(3);
        metrics.ModelLoads.Add(1, new("model", "fraud"), new("version", "78a560b56f28"), new("outcome", "success"));
        for (var i = 0; i < 10_000; i++)
        {
            inFlight.Increment();
            metrics.RecordRequest("fraud", "78a560b56f28", "native", 200, 0.0002 + rng.NextDouble() / 1000);
            metrics.Rows.Add(1, new("model", "fraud"), new("version", "78a560b56f28"));
            metrics.PredictedValue.Record(rng.NextDouble(), new("model", "fraud"), new("version", "78a560b56f28"));
            inFlight.Decrement();
        }
        var text = exporter.Render();
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}, {Process.GetCurrentProcess().Threads.Count} threads in this process");
        Console.WriteLine($"exposition: {text.Split('\n').Count(l => l.Length > 0 && l[0] != '#')} samples, {text.Length} characters");

        Measure("Render() (the text as a string)", renders, () => _ = exporter.Render());
        // What GET /metrics runs since the exporter writes into the response (before, it was Render() and TypedResults.Text).
        var http = new DefaultHttpContext();
        http.Response.Body = Stream.Null;
        Measure("WriteAsync() into a response (what GET /metrics runs)", renders, () => exporter.WriteAsync(http.Response, CancellationToken.None).GetAwaiter().GetResult());
        Measure("  alone: Process.GetCurrentProcess() WorkingSet64 + TotalProcessorTime (the process metrics before)", renders, () =>
        {
            using var p = Process.GetCurrentProcess();
            _ = p.WorkingSet64;
            _ = p.TotalProcessorTime;
        });
        Measure("  alone: GC.GetGCMemoryInfo().HeapSizeBytes", renders, () => _ = GC.GetGCMemoryInfo().HeapSizeBytes);
        Measure("  alone: Environment.CpuUsage.TotalTime (the process CPU now)", renders, () => _ = Environment.CpuUsage.TotalTime);
        return 0;
    }

    private static void Measure(string what, int n, Action action)
    {
        for (var i = 0; i < 200; i++) action(); // warm up (tiered JIT)
        var times = new double[n];
        var gc0 = GC.CollectionCount(0);
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < n; i++)
        {
            var t0 = Stopwatch.GetTimestamp();
            action();
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
        }
        var bytes = (GC.GetAllocatedBytesForCurrentThread() - allocated) / (double)n;
        var collections = GC.CollectionCount(0) - gc0;
        Array.Sort(times);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{what}: p50 {times[n / 2]:F1} µs, p99 {times[(int)(n * 0.99)]:F1} µs, max {times[^1]:F1} µs; {bytes:F0} bytes allocated per call; {collections} gen0 GCs in {n} calls"));
    }
}
