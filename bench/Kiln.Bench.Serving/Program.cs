// Two tools for bench/serving/run.sh:
//   bare MODEL_ZIP PORT        the bare peer: a minimal API scoring with ML.NET PredictionEngines
//                              pooled by ObjectPool (Microsoft.Extensions.ML's PredictionEnginePool
//                              is not in the package list); no validation, logging or metrics.
//   rate URL BODY_FILE RATE SECONDS [spin]
//                              an open-loop load generator at a fixed rate (RateGenerator.cs; wrk2
//                              is not packaged): latency is measured from each request's scheduled
//                              start, so a slow server cannot hide its queueing (no coordinated
//                              omission); it also prints its own send lag and the time from the
//                              actual send. With `spin` it never yields its core: use that only when
//                              the generator has a core to itself (taskset), else it takes CPU from
//                              the server it measures.
//   scrape URL INTERVAL_MS [GATE_FILE]
//                              a Prometheus-like scraper: one long-lived process and one kept-alive
//                              connection, a GET of URL every INTERVAL_MS until stopped (SIGTERM);
//                              prints the scrape count and the slowest scrape when it stops. With
//                              GATE_FILE it scrapes only while that file exists (so one scraper process,
//                              started before the rounds, is there in rounds with and without scrapes),
//                              prints "ready" after a first warm-up scrape, and one line per gated scrape
//                              (its time in ms).
using System.Globalization;
using System.Text.Json.Serialization;
using Microsoft.Extensions.ObjectPool;
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length >= 3 && args[0] == "bare") return Bare(args[1], int.Parse(args[2], CultureInfo.InvariantCulture));
if (args.Length >= 5 && args[0] == "rate")
    return RateGenerator.Run(args[1], File.ReadAllBytes(args[2]), int.Parse(args[3], CultureInfo.InvariantCulture),
        int.Parse(args[4], CultureInfo.InvariantCulture), spin: args.Length >= 6 && args[5] == "spin");
if (args.Length >= 3 && args[0] == "scrape") return await Scrape(args[1], int.Parse(args[2], CultureInfo.InvariantCulture), args.Length >= 4 ? args[3] : null);
Console.Error.WriteLine("usage: bare MODEL_ZIP PORT | rate URL BODY_FILE RATE SECONDS [spin] | scrape URL INTERVAL_MS [GATE_FILE]");
return 2;

static async Task<int> Scrape(string url, int intervalMs, string? gate)
{
    using var stop = new CancellationTokenSource();
    using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(
        System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
    using var http = new HttpClient(new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromMinutes(10) });
    using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(intervalMs));
    var count = 0;
    var slowest = TimeSpan.Zero;
    async Task<TimeSpan> GetAsync()
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        using (var response = await http.GetAsync(url, stop.Token))
        {
            response.EnsureSuccessStatusCode();
            await response.Content.CopyToAsync(Stream.Null, stop.Token);
        }
        return System.Diagnostics.Stopwatch.GetElapsedTime(started);
    }
    try
    {
        if (gate is not null)
        {
            // The client's own first request (JIT, connection) is not a scrape the server is measured by.
            await GetAsync();
            Console.WriteLine("ready");
            Console.Out.Flush();
        }
        do
        {
            if (gate is not null && !File.Exists(gate)) continue;
            var took = await GetAsync();
            if (took > slowest) slowest = took;
            count++;
            if (gate is not null)
            {
                Console.WriteLine(took.TotalMilliseconds.ToString("F2", CultureInfo.InvariantCulture));
                Console.Out.Flush();
            }
        }
        while (await timer.WaitForNextTickAsync(stop.Token));
    }
    catch (OperationCanceledException) when (stop.IsCancellationRequested)
    {
    }
    if (gate is null) Console.WriteLine(FormattableString.Invariant($"scrapes={count} slowest={slowest.TotalMilliseconds:F1}ms"));
    return 0;
}

static int Bare(string modelPath, int port)
{
    var builder = WebApplication.CreateSlimBuilder();
    builder.Logging.ClearProviders();
    builder.WebHost.ConfigureKestrel(k => k.ListenLocalhost(port));
    builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, BareJson.Default));
    var ml = new MLContext(0);
    var model = ml.Model.Load(modelPath, out _);
    var pool = new DefaultObjectPool<PredictionEngine<Features, Output>>(new EnginePolicy(ml, model), Environment.ProcessorCount * 4);
    var app = builder.Build();
    app.MapPost("/predict", (Features f) =>
    {
        var engine = pool.Get();
        try
        {
            var o = engine.Predict(f);
            return TypedResults.Ok(new Answer(o.PredictedLabel ? 1 : 0, o.Probability));
        }
        finally { pool.Return(engine); }
    });
    app.MapPost("/predict-batch", (Features[] rows) =>
    {
        var engine = pool.Get();
        try
        {
            var answers = new Answer[rows.Length];
            for (var i = 0; i < rows.Length; i++) { var o = engine.Predict(rows[i]); answers[i] = new Answer(o.PredictedLabel ? 1 : 0, o.Probability); }
            return TypedResults.Ok(answers);
        }
        finally { pool.Return(engine); }
    });
    app.Run();
    return 0;
}

/// <summary>The three float features of the seed article's model.</summary>
public sealed class Features
{
    [ColumnName("f0")] public float F0 { get; set; }

    [ColumnName("f1")] public float F1 { get; set; }

    [ColumnName("f2")] public float F2 { get; set; }
}

public sealed class Output
{
    public bool PredictedLabel { get; set; }

    public float Probability { get; set; }
}

public sealed record Answer(int Prediction, float Probability);

internal sealed class EnginePolicy(MLContext ml, ITransformer model) : IPooledObjectPolicy<PredictionEngine<Features, Output>>
{
    public PredictionEngine<Features, Output> Create() => ml.Model.CreatePredictionEngine<Features, Output>(model);

    public bool Return(PredictionEngine<Features, Output> obj) => true;
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(Features))]
[JsonSerializable(typeof(Features[]))]
[JsonSerializable(typeof(Answer))]
[JsonSerializable(typeof(Answer[]))]
internal sealed partial class BareJson : JsonSerializerContext;
