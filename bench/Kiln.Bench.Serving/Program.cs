// Two tools for bench/serving/run.sh:
//   bare MODEL_ZIP PORT        the bare peer: a minimal API scoring with ML.NET PredictionEngines
//                              pooled by ObjectPool (Microsoft.Extensions.ML's PredictionEnginePool
//                              is not in the package list); no validation, logging or metrics.
//   rate URL BODY_FILE RATE SECONDS [spin]
//                              an open-loop load generator at a fixed rate (wrk2 is not packaged):
//                              latency is measured from each request's scheduled start, so a slow
//                              server cannot hide its queueing (no coordinated omission); it also
//                              prints its own send lag and the time from the actual send. With
//                              `spin` it busy-waits for each send time on a thread of its own: use
//                              that only when the generator has a core to itself (taskset), else it
//                              takes CPU from the server it measures.
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json.Serialization;
using Microsoft.Extensions.ObjectPool;
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length >= 3 && args[0] == "bare") return Bare(args[1], int.Parse(args[2], CultureInfo.InvariantCulture));
if (args.Length >= 5 && args[0] == "rate")
    return await RateAsync(args[1], File.ReadAllText(args[2]), int.Parse(args[3], CultureInfo.InvariantCulture),
        int.Parse(args[4], CultureInfo.InvariantCulture), spin: args.Length >= 6 && args[5] == "spin");
Console.Error.WriteLine("usage: bare MODEL_ZIP PORT | rate URL BODY_FILE RATE SECONDS [spin]");
return 2;

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

static async Task<int> RateAsync(string url, string body, int rate, int seconds, bool spin)
{
    using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 256, PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
    using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
    // The first second warms the generator (JIT, connections) and is not counted.
    var warm = rate;
    var total = warm + rate * seconds;
    var latencies = new double[total];
    var lags = new double[total];     // how late the generator sent each request (its own delay)
    var services = new double[total]; // from the actual send to the answer
    var failures = 0;
    var tasks = new Task[total];
    var payload = System.Text.Encoding.UTF8.GetBytes(body);
    var start = Stopwatch.GetTimestamp();
    // A request sent late is still timed from its scheduled start, so the generator's own delays
    // count against the result, never for it.
    if (spin)
    {
        // A thread of its own waits for each send time by spinning (yielding to the thread pool's
        // threads, which do the sends on the same core), so requests leave close to their schedule.
        var sender = new Thread(() =>
        {
            for (var i = 0; i < total; i++)
            {
                var scheduled = start + (long)(i * (double)Stopwatch.Frequency / rate);
                while (Stopwatch.GetTimestamp() < scheduled) Thread.Yield();
                var index = i;
                tasks[index] = Task.Run(() => SendAsync(index, scheduled));
            }
        }) { IsBackground = true };
        sender.Start();
        sender.Join();
    }
    else
    {
        // Every millisecond (or as soon as the generator gets the CPU back), send every request
        // whose scheduled time has come. No spinning: on a machine whose cores the server shares,
        // a spinning generator takes CPU from the server it measures.
        var next = 0;
        while (next < total)
        {
            var now = Stopwatch.GetTimestamp();
            while (next < total && start + (long)(next * (double)Stopwatch.Frequency / rate) <= now)
            {
                var scheduled = start + (long)(next * (double)Stopwatch.Frequency / rate);
                tasks[next] = SendAsync(next, scheduled);
                next++;
            }
            if (next < total) await Task.Delay(1);
        }
    }

    async Task SendAsync(int index, long scheduled)
    {
        var sent = Stopwatch.GetTimestamp();
        lags[index] = Stopwatch.GetElapsedTime(scheduled, sent).TotalMilliseconds;
        using var content = new ByteArrayContent(payload);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        try
        {
            using var response = await http.PostAsync(url, content);
            await response.Content.ReadAsByteArrayAsync();
            if (!response.IsSuccessStatusCode) Interlocked.Increment(ref failures);
        }
        catch (HttpRequestException) { Interlocked.Increment(ref failures); }
        catch (TaskCanceledException) { Interlocked.Increment(ref failures); }
        var done = Stopwatch.GetTimestamp();
        latencies[index] = Stopwatch.GetElapsedTime(scheduled, done).TotalMilliseconds;
        services[index] = Stopwatch.GetElapsedTime(sent, done).TotalMilliseconds;
    }
    await Task.WhenAll(tasks);
    var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds - 1;
    latencies = latencies[warm..];
    lags = lags[warm..];
    services = services[warm..];
    Array.Sort(latencies);
    Array.Sort(lags);
    Array.Sort(services);
    static double P(double[] sorted, double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"rate={rate}/s requests={latencies.Length} achieved={latencies.Length / elapsed:F0}/s failures={failures} p50={P(latencies, 0.50):F2}ms p90={P(latencies, 0.90):F2}ms p99={P(latencies, 0.99):F2}ms max={latencies[^1]:F2}ms"
        + $" | send lag p50={P(lags, 0.50):F2}ms p99={P(lags, 0.99):F2}ms | from send p50={P(services, 0.50):F2}ms p99={P(services, 0.99):F2}ms"));
    return failures == 0 ? 0 : 1;
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
