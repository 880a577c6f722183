// /metrics of a server publishing monitoring gauges for many models (goal: <= 50 ms per scrape at 100 models x 20 features).
// Usage: dotnet run -c Release --project bench/Kiln.Bench.Monitoring -- metrics [--models 100] [--features 20] [--scrapes 200]
// A real Kestrel on a loopback port maps GET /metrics to kiln's Prometheus exporter (the one kiln serve and kiln server use)
// over a meter where monitoring's GaugePublisher publishes, per model, the gauges WindowEvaluator makes: six per feature
// (drift score and threshold, drifted, missing rate, out-of-range and unseen shares) and a dozen per model.
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using Kiln.Monitoring.Continuous;
using Kiln.Serving.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

internal static class MetricsScrapeBench
{
    public static async Task<int> RunAsync(string[] args)
    {
        int models = 100, features = 20, scrapes = 200;
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            var v = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--models": models = v; break;
                case "--features": features = v; break;
                case "--scrapes": scrapes = v; break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }
        using var meter = new Meter("Kiln.Server");
        using var exporter = new PrometheusExporter(meter);
        var publisher = new GaugePublisher(meter);
        var rng = new Random(7);
        var measurements = new List<Measurement>();
        for (var m = 0; m < models; m++)
        {
            var model = $"model_{m:D3}";
            foreach (var (name, value) in new[] { ("kiln_monitor_window_rows", 5000.0), ("kiln_monitor_dataset_drift", 0), ("kiln_monitor_drift_share", 0.1),
                         ("kiln_monitor_prediction_mean", 0.2), ("kiln_monitor_reference_prediction_mean", 0.19), ("kiln_monitor_reference_prediction_std", 0.3),
                         ("kiln_monitor_labelled_rows", 800), ("kiln_monitor_label_coverage", 0.16), ("kiln_monitor_realized_accuracy", 0.91),
                         ("kiln_monitor_realized_auc", 0.88), ("kiln_monitor_realized_f1", 0.7), ("kiln_monitor_realized_log_loss", 0.3) })
                measurements.Add(Measurement.Of(name, value, null, ("model", model)));
            for (var f = 0; f < features; f++)
            {
                var feature = $"feature_{f:D2}";
                measurements.Add(Measurement.Of("kiln_monitor_drift_score", rng.NextDouble(), null, ("model", model), ("feature", feature), ("test", "ks")));
                measurements.Add(Measurement.Of("kiln_monitor_drift_threshold", 0.05, null, ("model", model), ("feature", feature), ("test", "ks")));
                measurements.Add(Measurement.Of("kiln_monitor_feature_drifted", 0, null, ("model", model), ("feature", feature)));
                measurements.Add(Measurement.Of("kiln_monitor_feature_missing_rate", rng.NextDouble() / 100, null, ("model", model), ("feature", feature)));
                measurements.Add(Measurement.Of("kiln_monitor_feature_out_of_range_share", rng.NextDouble() / 100, null, ("model", model), ("feature", feature)));
                measurements.Add(Measurement.Of("kiln_monitor_feature_unseen_share", 0, null, ("model", model), ("feature", feature)));
            }
        }
        publisher.Publish(measurements);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var app = builder.Build();
        app.MapGet("/metrics", (HttpContext http) => exporter.WriteAsync(http.Response, http.RequestAborted));
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };

        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}");
        var body = await http.GetStringAsync("/metrics");
        var series = body.Split('\n').Count(l => l.Length > 0 && l[0] != '#');
        Console.WriteLine($"{models} models x {features} features: {series} series, {body.Length / 1024} KiB per scrape");
        for (var i = 0; i < 20; i++) await http.GetStringAsync("/metrics"); // warm up
        var times = new double[scrapes];
        for (var i = 0; i < scrapes; i++)
        {
            var t0 = Stopwatch.GetTimestamp();
            var text = await http.GetStringAsync("/metrics");
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            if (text.Length < body.Length / 2) throw new InvalidOperationException("short scrape");
        }
        var render = new double[scrapes];
        for (var i = 0; i < scrapes; i++)
        {
            var t0 = Stopwatch.GetTimestamp();
            _ = exporter.Render();
            render[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(render);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"rendering alone (no HTTP): p50 {render[scrapes / 2]:F1} ms, max {render[^1]:F1} ms"));
        Array.Sort(times);
        double Q(double q) => times[Math.Min(times.Length - 1, (int)Math.Ceiling(q * times.Length) - 1)];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"GET /metrics over {scrapes} scrapes: p50 {Q(0.5):F1} ms, p95 {Q(0.95):F1} ms, p99 {Q(0.99):F1} ms, max {times[^1]:F1} ms (goal: <= 50 ms)"));
        await app.StopAsync();
        return Q(0.99) <= 50 ? 0 : 1;
    }
}
