// Vector search against hnswlib (Debian's python3-hnswlib), both on one thread, in one run:
// 200,000 x 128 float32 vectors with a 16-dimensional latent structure (x = z·A + 0.1·noise, seed 3), 1,000 queries,
// exact top-10 by numpy. Builds are timed once each (peer first); query sweeps over ef alternate peer / Kiln per round.
//   dotnet run -c Release --project bench/Kiln.Bench.Vectors -- [--n 200000] [--queries 1000] [--rounds 3] [--datatype float32|float16] [--threads 1]
// --memory-only 1 builds Kiln's collection alone and prints its memory (USearch's graph, the managed heap, the process).
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Kiln.Vectors;

var opts = new Dictionary<string, string>();
for (var i = 0; i + 1 < args.Length; i += 2) opts[args[i].TrimStart('-')] = args[i + 1];
int Opt(string k, int d) => opts.TryGetValue(k, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : d;
var n = Opt("n", 200_000);
var queries = Opt("queries", 1000);
var rounds = Opt("rounds", 3);
var threads = Opt("threads", 1);
var memoryOnly = Opt("memory-only", 0) == 1;
var profile = Opt("profile", 0) == 1;
var datatype = opts.GetValueOrDefault("datatype", "float32") == "float16" ? VectorDatatype.Float16 : VectorDatatype.Float32;
const int Dim = 128;
int[] efs = [16, 32, 64, 128, 256];
var peer = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "vectors", "hnswlib_peer.py");
if (!File.Exists(peer)) peer = Path.Combine("bench", "vectors", "hnswlib_peer.py");
var dir = Path.Combine(Path.GetTempPath(), "kiln-bench-vectors-" + Guid.NewGuid().ToString("N")[..8]);
Directory.CreateDirectory(dir);
Console.WriteLine($"machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}; n={n} dim={Dim} queries={queries} datatype={datatype}; data in {dir}");
try
{
    Python(["data", dir, n.ToString(CultureInfo.InvariantCulture), Dim.ToString(CultureInfo.InvariantCulture), "16", queries.ToString(CultureInfo.InvariantCulture), "3"]);
    var base_ = ReadFloats(Path.Combine(dir, "base.f32"), n);
    var q = ReadFloats(Path.Combine(dir, "queries.f32"), queries);
    var gtBytes = File.ReadAllBytes(Path.Combine(dir, "gt.i32"));
    var gt = new HashSet<ulong>[queries];
    for (var i = 0; i < queries; i++)
    {
        gt[i] = [];
        for (var j = 0; j < 10; j++) gt[i].Add((ulong)BitConverter.ToInt32(gtBytes, (i * 10 + j) * 4));
    }

    var peerBuild = memoryOnly ? double.NaN : JsonNode.Parse(Python(["build", dir, "16", "200", threads.ToString(CultureInfo.InvariantCulture)]).Trim())!["build_seconds"]!.GetValue<double>();
    await using var store = await VectorStore.OpenAsync(Path.Combine(dir, "kiln"), Path.Combine(dir, "kiln.db"));
    var c = await store.CreateAsync("bench", new CollectionConfig
    {
        Dimension = Dim,
        Distance = Distance.Euclid,
        Datatype = datatype,
        Hnsw = new HnswParameters(16, 200, 64),
        FullScanThreshold = 0,
        WalFsync = false,
    });
    c.SnapshotEvery = 0;
    c.BuildThreads = threads;
    var clock = Stopwatch.StartNew();
    for (var s = 0; s < n; s += 10_000)
    {
        c.Upsert([.. Enumerable.Range(s, Math.Min(10_000, n - s)).Select(i => new PointInput(PointId.Of((ulong)i), base_[i], null))]);
    }
    var kilnBuild = clock.Elapsed.TotalSeconds;
    Console.WriteLine($"build ({threads} thread(s), M=16, ef_construction=200): hnswlib {peerBuild:0.0} s, Kiln {kilnBuild:0.0} s (ratio {kilnBuild / peerBuild:0.00}; Kiln's includes its write-ahead log)");
    // The raw vectors and the bench's own copy of them are dropped first, so the heap holds what the collection holds.
    base_ = [];
    var managed = GC.GetTotalMemory(forceFullCollection: true);
    using (var self = Process.GetCurrentProcess())
    {
        Console.WriteLine($"memory: graph (USearch) {c.IndexMemoryBytes / 1048576.0:0.0} MiB, managed heap {managed / 1048576.0:0.0} MiB, process working set {self.WorkingSet64 / 1048576.0:0.0} MiB; raw vectors {(long)n * Dim * 4 / 1048576.0:0.0} MiB");
    }
    if (memoryOnly) return;

    var bestPeer = new Dictionary<int, (double Recall, double Qps)>();
    var bestKiln = new Dictionary<int, (double Recall, double Qps)>();
    for (var r = 1; r <= rounds; r++)
    {
        foreach (var line in Python(["query", dir, string.Join(',', efs)]).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var o = JsonNode.Parse(line)!;
            var ef = o["ef"]!.GetValue<int>();
            var point = (o["recall"]!.GetValue<double>(), o["qps"]!.GetValue<double>());
            if (!bestPeer.TryGetValue(ef, out var b) || point.Item2 > b.Qps) bestPeer[ef] = point;
        }
        foreach (var ef in efs)
        {
            c.SetSearchExpansion(ef);
            var hits = 0;
            clock.Restart();
            for (var i = 0; i < queries; i++)
            {
                foreach (var h in c.Search(new SearchRequest(q[i], 10))) if (gt[i].Contains(h.Point.Id.Number)) hits++;
            }
            var point = (hits / (10.0 * queries), queries / clock.Elapsed.TotalSeconds);
            if (!bestKiln.TryGetValue(ef, out var b) || point.Item2 > b.Qps) bestKiln[ef] = point;
        }
        Console.WriteLine($"round {r} done");
    }
    Console.WriteLine();
    Console.WriteLine("| ef | hnswlib recall@10 | hnswlib QPS | Kiln recall@10 | Kiln QPS | Kiln / hnswlib QPS at Kiln's recall |");
    Console.WriteLine("|---|---|---|---|---|---|");
    var curve = bestPeer.Values.OrderBy(p => p.Recall).ToList();
    foreach (var ef in efs)
    {
        var (pr, pq) = bestPeer[ef];
        var (kr, kq) = bestKiln[ef];
        var atEqual = Interpolate(curve, kr);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {ef} | {pr:0.0000} | {pq:N0} | {kr:0.0000} | {kq:N0} | {(atEqual is { } e ? (kq / e).ToString("0.00", CultureInfo.InvariantCulture) : "outside the peer's range")} |"));
    }
    if (profile) SearchProfile.Run(c, q, [16, 64]);
}
finally
{
    Directory.Delete(dir, true);
}

static double? Interpolate(List<(double Recall, double Qps)> curve, double recall)
{
    for (var i = 0; i + 1 < curve.Count; i++)
    {
        var (r0, q0) = curve[i];
        var (r1, q1) = curve[i + 1];
        if (recall >= r0 && recall <= r1) return r1 == r0 ? Math.Max(q0, q1) : q0 + (q1 - q0) * (recall - r0) / (r1 - r0);
    }
    return null;
}

static float[][] ReadFloats(string path, int rows)
{
    var bytes = File.ReadAllBytes(path);
    var dim = bytes.Length / 4 / rows;
    var result = new float[rows][];
    for (var i = 0; i < rows; i++)
    {
        result[i] = new float[dim];
        Buffer.BlockCopy(bytes, i * dim * 4, result[i], 0, dim * 4);
    }
    return result;
}

string Python(string[] arguments)
{
    var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, UseShellExecute = false };
    psi.ArgumentList.Add(peer);
    foreach (var a in arguments) psi.ArgumentList.Add(a);
    using var p = Process.Start(psi)!;
    var output = p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0) throw new InvalidOperationException($"hnswlib_peer.py {arguments[0]} failed with exit {p.ExitCode}");
    return output;
}
