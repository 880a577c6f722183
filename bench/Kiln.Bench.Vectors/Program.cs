// Vector search against hnswlib (Debian's python3-hnswlib), both on one thread, in one run:
// 200,000 x 128 float32 vectors with a 16-dimensional latent structure (x = z·A + 0.1·noise, seed 3), 1,000 queries,
// exact top-10 by numpy. Builds are timed once each (peer first); in each round every ef's queries run on the peer and
// on Kiln in turn, 100 at a time (--chunk), each side both one call per query and in one call; ratios are taken per round
// and their median reported.
//   dotnet run -c Release --project bench/Kiln.Bench.Vectors -- [--n 200000] [--queries 1000] [--rounds 3] [--datatype float32|float16|bfloat16] [--threads 1]
// --datatype takes a comma-separated list (e.g. float16,bfloat16): one collection is built per datatype, one after the
// other, and each round runs the peer's sweep and then every collection's, so the datatypes are compared in the same run.
// Builds print wall and CPU time (Kiln: the building thread's, one thread; hnswlib: its process's); --peer-build 1 with
// --data builds the peer's index again in this run (before Kiln's builds) instead of reusing it.
// --memory-only 1 builds Kiln's collection alone and prints its memory (USearch's graph, the managed heap, the process).
// --build-threads N imports the same points again into a second collection on N threads and times it.
// --ef-construct N sets Kiln's (USearch's expansion_add; the peer keeps ef_construction=200).
// --m N sets Kiln's connectivity (USearch's M; default 16, as the peer's), for the memory runs.
// --wait-for FILE waits for FILE before the query rounds (a peer index built beside the run, in --data DIR).
// --ef LIST sets the sweep (comma-separated, default 16,32,64,128,256). The peer runs as one long-lived process
// (hnswlib_peer.py serve) and a pass at one ef runs the queries in chunks of --chunk N (default 100) on every side in
// turn, the first side rotating from chunk to chunk, so that both sides meet the same load. Before round 1 one untimed
// round of the same passes warms both sides up (printed as round 0; --warmup 0 skips it). Each round prints every side's
// figures with its thread's counters (system time, page faults, preemptions, and Kiln's gen-0 collections).
// --profile 1 adds the time of each step of one Search call (SearchProfile.cs) after the rounds.
// --keep-kiln DIR (with --memory-only 1) builds the collection in DIR, snapshots it, writes a log tail (10,000 new points
// and 1,000 deletes) and leaves it there; --reopen DIR --data DATA then opens that store in a fresh process and prints the
// time to open it (recovery), the process's memory before and after, checks the tail (CheckTail), and recall@10.
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
var datatypes = opts.GetValueOrDefault("datatype", "float32").Split(',').Select(t => CollectionConfig.ParseDatatype(t, "--datatype")).ToArray();
var datatype = datatypes[0];
const int Dim = 128;
// --ef LIST: the sweep's ef values, comma-separated (both sides); --warmup 0 skips the untimed pass before round 1.
int[] efs = [.. opts.GetValueOrDefault("ef", "16,32,64,128,256").Split(',').Select(e => int.Parse(e, CultureInfo.InvariantCulture)).Order()];
var warmup = Opt("warmup", 1) == 1;
var peer = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "vectors", "hnswlib_peer.py");
if (!File.Exists(peer)) peer = Path.Combine("bench", "vectors", "hnswlib_peer.py");
// --data DIR reuses the data, ground truth and hnswlib index an earlier run left there (kept with --keep-data 1), so a
// rerun on a loaded machine does not redo the peer's build; Kiln's collection is always built afresh.
var reused = opts.GetValueOrDefault("data");
if (opts.GetValueOrDefault("reopen") is { } reopenDir)
{
    await Reopen(reopenDir, reused ?? throw new ArgumentException("--reopen needs --data DIR (the ground truth)"), queries);
    return;
}
var keepKiln = opts.GetValueOrDefault("keep-kiln");
var baselineRss = ProcStatus("VmRSS");
var dir = reused ?? Path.Combine(Path.GetTempPath(), "kiln-bench-vectors-" + Guid.NewGuid().ToString("N")[..8]);
var kilnDir = keepKiln ?? Path.Combine(Path.GetTempPath(), "kiln-bench-vectors-kiln-" + Guid.NewGuid().ToString("N")[..8]);
Directory.CreateDirectory(dir);
Console.WriteLine($"machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}; n={n} dim={Dim} queries={queries} datatype={string.Join(',', datatypes.Select(CollectionConfig.DatatypeName))}; data in {dir}; load average {File.ReadAllText("/proc/loadavg").Trim()}");
VectorStore? store = null;
try
{
    if (reused is null) Python(["data", dir, n.ToString(CultureInfo.InvariantCulture), Dim.ToString(CultureInfo.InvariantCulture), "16", queries.ToString(CultureInfo.InvariantCulture), "3"]);
    var base_ = ReadFloats(Path.Combine(dir, "base.f32"), n);
    var q = ReadFloats(Path.Combine(dir, "queries.f32"), queries);
    // The ground truth is read only for the query rounds (--memory-only may start before a subset's is written).
    var gt = new HashSet<ulong>[queries];
    if (!memoryOnly)
    {
        var gtBytes = File.ReadAllBytes(Path.Combine(dir, "gt.i32"));
        for (var i = 0; i < queries; i++)
        {
            gt[i] = [];
            for (var j = 0; j < 10; j++) gt[i].Add((ulong)BitConverter.ToInt32(gtBytes, (i * 10 + j) * 4));
        }
    }

    var peerBuilt = !memoryOnly && (reused is null || Opt("peer-build", 0) == 1);
    var peerJson = peerBuilt ? JsonNode.Parse(Python(["build", dir, "16", "200", threads.ToString(CultureInfo.InvariantCulture)]).Trim())! : null;
    var peerBuild = peerJson is null ? double.NaN : peerJson["build_seconds"]!.GetValue<double>();
    var peerBuildCpu = peerJson?["build_cpu_seconds"]?.GetValue<double>() ?? double.NaN;
    if (peerBuilt) Console.WriteLine($"build hnswlib (M=16, ef_construction=200, {threads} thread(s)): {peerBuild:0.0} s wall, {peerBuildCpu:0.0} s CPU; load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
    store = await VectorStore.OpenAsync(Path.Combine(kilnDir, "vectors"), Path.Combine(kilnDir, "kiln.db"));
    var clock = new Stopwatch();
    var kilnBuild = 0.0;
    // One collection per datatype, built one after the other; the first is "bench" (the one the profile, HTTP and
    // recovery runs use).
    var collections = new List<VectorCollection>();
    foreach (var (kind, index) in datatypes.Select((d, i) => (d, i)))
    {
        var built = await store.CreateAsync(index == 0 ? "bench" : "bench-" + CollectionConfig.DatatypeName(kind), new CollectionConfig
        {
            Dimension = Dim,
            Distance = Distance.Euclid,
            Datatype = kind,
            Hnsw = new HnswParameters(Opt("m", 16), Opt("ef-construct", 200), 64),
            FullScanThreshold = 0,
            WalFsync = false,
        });
        built.SnapshotEvery = 0;
        built.BuildThreads = threads;
        var buildCpu = SearchProfile.ThreadCpuMicroseconds();
        clock.Restart();
        for (var s = 0; s < n; s += 10_000)
        {
            built.Upsert([.. Enumerable.Range(s, Math.Min(10_000, n - s)).Select(i => new PointInput(PointId.Of((ulong)i), base_[i], null))]);
            if (n >= 500_000 && (s + 10_000) % 100_000 == 0)
            {
                Console.WriteLine($"  {s + 10_000:N0} points in {clock.Elapsed.TotalSeconds:0} s; graph (USearch) {built.IndexMemoryBytes / 1048576.0:0.0} MiB, VmRSS {ProcStatus("VmRSS") / 1024.0:0.0} MiB with the input's {(long)n * Dim * 4 / 1048576.0:0} MiB (load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]})");
            }
        }
        var seconds = clock.Elapsed.TotalSeconds;
        if (index == 0) kilnBuild = seconds;
        // The building thread's CPU time: with one build thread USearch's adds run on it (with more, on the pool's).
        var cpuSeconds = (SearchProfile.ThreadCpuMicroseconds() - buildCpu) / 1e6;
        var cpuNote = threads == 1 ? $", {cpuSeconds:0.0} s CPU{(peerBuilt ? $" (CPU ratio {cpuSeconds / peerBuildCpu:0.00})" : "")}" : "";
        Console.WriteLine($"build Kiln {CollectionConfig.DatatypeName(kind)} (M={built.Config.Hnsw.M}, expansion_add={built.Config.Hnsw.EfConstruct}, {threads} thread(s); distance on USearch's '{built.IndexHardwareAcceleration}' target): {seconds:0.0} s wall{(peerBuilt ? $" (ratio {seconds / peerBuild:0.00})" : "")}{cpuNote}; Kiln's includes its write-ahead log; load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        collections.Add(built);
    }
    var c = collections[0];
    if (Opt("build-threads", 0) is var more and > 0)
    {
        // The same import into a second collection on another number of threads, right after the first (same load).
        var other = await store.CreateAsync("bench-threads", c.Config);
        other.SnapshotEvery = 0;
        other.BuildThreads = more;
        clock.Restart();
        for (var s = 0; s < n; s += 10_000)
        {
            other.Upsert([.. Enumerable.Range(s, Math.Min(10_000, n - s)).Select(i => new PointInput(PointId.Of((ulong)i), base_[i], null))]);
        }
        var otherBuild = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"build on {more} thread(s): Kiln {otherBuild:0.0} s ({otherBuild / kilnBuild:0.00} of its build on {threads}{(peerBuilt ? $", {otherBuild / peerBuild:0.00} of hnswlib's on {threads}" : "")}); load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        await store.DeleteAsync("bench-threads");
    }
    // The raw vectors and the bench's own copy of them are dropped first, so the heap holds what the collection holds.
    base_ = [];
    var managed = GC.GetTotalMemory(forceFullCollection: true);
    using (var self = Process.GetCurrentProcess())
    {
        Console.WriteLine($"memory: graph (USearch) {c.IndexMemoryBytes / 1048576.0:0.0} MiB, managed heap {managed / 1048576.0:0.0} MiB, process working set {self.WorkingSet64 / 1048576.0:0.0} MiB (VmRSS {ProcStatus("VmRSS") / 1024.0:0.0} MiB, peak VmHWM {ProcStatus("VmHWM") / 1024.0:0.0} MiB, {baselineRss / 1024.0:0.0} MiB before the data was read); raw vectors {(long)n * Dim * 4 / 1048576.0:0.0} MiB");
    }
    if (keepKiln is not null)
    {
        clock.Restart();
        c.Snapshot();
        Console.WriteLine($"snapshot of {c.Count:N0} points: {clock.Elapsed.TotalSeconds:0.0} s");
        // The log tail: 10,000 new points (ids n.., each the vector of base point i scaled by 3, which puts them outside
        // the data's cloud so the recall figure still answers the data's ground truth) and 1,000 deletes of base points in
        // no query's exact top-10. tail.json tells --reopen what to check.
        var tail = Math.Min(n, 10_000);
        var gtIds = File.ReadAllBytes(Path.Combine(dir, "gt.i32")).Chunk(4).Select(b => (ulong)BitConverter.ToInt32(b)).ToHashSet();
        var deleted = Enumerable.Range(0, n).Select(i => (ulong)(n - 1 - i)).Where(id => !gtIds.Contains(id)).Take(Math.Min(1000, n / 10)).ToList();
        var again = ReadRows(Path.Combine(dir, "base.f32"), Dim, tail);
        for (var s = 0; s < tail; s += 1000)
        {
            c.Upsert([.. Enumerable.Range(s, Math.Min(1000, tail - s)).Select(i => new PointInput(PointId.Of((ulong)(n + i)), [.. again[i].Select(x => 3 * x)], null))]);
        }
        c.Delete([.. deleted.Select(PointId.Of)]);
        File.WriteAllText(Path.Combine(kilnDir, "tail.json"), new JsonObject
        {
            ["base"] = n,
            ["upserted"] = tail,
            ["deleted"] = new JsonArray([.. deleted.Select(id => JsonValue.Create(id))]),
        }.ToJsonString());
        Console.WriteLine($"log tail: {tail:N0} new points upserted and {deleted.Count:N0} deleted after the snapshot; the store stays in {kilnDir} (open it with --reopen {kilnDir} --data {dir})");
        return;
    }
    if (memoryOnly) return;

    // Per round and ef: the peer's sweep (all queries in one knn_query call, then one call per query), then Kiln's (one
    // Search call per query, then one SearchBatch call of all). Each Kiln figure is divided by the peer's QPS of the same
    // round interpolated at Kiln's recall; the table gives the medians over the rounds.
    // --wait-for FILE: the query rounds start once FILE exists (a peer index being built beside this run with --data).
    if (opts.GetValueOrDefault("wait-for") is { } waitFor && !File.Exists(waitFor))
    {
        Console.WriteLine($"waiting for {waitFor} (load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]})");
        while (!File.Exists(waitFor)) Thread.Sleep(5000);
    }
    var peerRuns = efs.ToDictionary(ef => ef, _ => new List<Side>());
    var kilnRunsOf = collections.Select(_ => efs.ToDictionary(ef => ef, _ => new List<Side>())).ToList();
    var requests = q.Select(v => new SearchRequest(v, 10) { WithVector = false }).ToArray();
    // The peer answers from one long-lived process (hnswlib_peer.py serve: the index loaded once, as Kiln's collections
    // stay open). A pass at one ef runs the queries in chunks of --chunk (default 100) on every side in turn: the peer's
    // chunk and each collection's run back to back, the side that goes first rotating from chunk to chunk, so that the
    // load of a shared machine, which moves within seconds, falls on every side alike (a ratio of two passes even a few
    // seconds apart measured the load as much as the code). Each side's chunk is answered one call per query and then in
    // one call (hnswlib's knn_query of the chunk, Kiln's SearchBatch); the times are summed over the chunks.
    var chunk = Opt("chunk", 100);
    using var peerProcess = StartPeer(dir);
    (Side[] Sides, string[] Notes) Pass(int ef)
    {
        foreach (var kc in collections) kc.SetSearchExpansion(ef);
        var sideCount = collections.Count + 1;
        var wallSingle = new double[sideCount];
        var cpuSingle = new double[sideCount];
        var wallBatch = new double[sideCount];
        var cpuBatch = new double[sideCount];
        var hits = new long[sideCount];
        var used = new ThreadCounters[sideCount];
        var chunkNo = 0;
        for (var start = 0; start < queries; start += chunk, chunkNo++)
        {
            var count = Math.Min(chunk, queries - start);
            for (var turn = 0; turn < sideCount; turn++)
            {
                var side = (turn + chunkNo) % sideCount;
                if (side == 0)
                {
                    peerProcess.StandardInput.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{ef} {start} {count}"));
                    peerProcess.StandardInput.Flush();
                    var o = JsonNode.Parse(peerProcess.StandardOutput.ReadLine() ?? throw new InvalidOperationException("hnswlib_peer.py serve ended early"))!;
                    wallSingle[0] += o["wall_single"]!.GetValue<double>();
                    cpuSingle[0] += o["cpu_single"]!.GetValue<double>();
                    wallBatch[0] += o["wall_batch"]!.GetValue<double>();
                    cpuBatch[0] += o["cpu_batch"]!.GetValue<double>();
                    hits[0] += o["hits"]!.GetValue<long>();
                    used[0] += new ThreadCounters(o["sys_single"]!.GetValue<double>() * 1e6, o["faults_single"]!.GetValue<long>(), o["involuntary_single"]!.GetValue<long>(), 0);
                    continue;
                }
                var kc = collections[side - 1];
                var before = SearchProfile.Counters();
                var cpu = SearchProfile.ThreadCpuMicroseconds();
                clock.Restart();
                var found = 0;
                for (var i = start; i < start + count; i++)
                {
                    foreach (var h in kc.Search(requests[i])) if (gt[i].Contains(h.Point.Id.Number)) found++;
                }
                wallSingle[side] += clock.Elapsed.TotalSeconds;
                cpuSingle[side] += (SearchProfile.ThreadCpuMicroseconds() - cpu) / 1e6;
                used[side] += SearchProfile.Counters() - before;
                cpu = SearchProfile.ThreadCpuMicroseconds();
                clock.Restart();
                var answers = kc.SearchBatch(new ArraySegment<SearchRequest>(requests, start, count));
                wallBatch[side] += clock.Elapsed.TotalSeconds;
                cpuBatch[side] += (SearchProfile.ThreadCpuMicroseconds() - cpu) / 1e6;
                var batchFound = 0;
                for (var i = 0; i < count; i++) foreach (var h in answers[i]) if (gt[start + i].Contains(h.Point.Id.Number)) batchFound++;
                if (batchFound != found) throw new InvalidOperationException($"ef={ef}: the batch found {batchFound} true neighbours, one call per query {found}");
                hits[side] += found;
            }
        }
        var sides = new Side[sideCount];
        var notes = new string[sideCount];
        for (var s = 0; s < sideCount; s++)
        {
            sides[s] = new Side(hits[s] / (10.0 * queries), new Qps(queries / wallSingle[s], queries / wallBatch[s]), new Qps(queries / cpuSingle[s], queries / cpuBatch[s]));
            notes[s] = string.Create(CultureInfo.InvariantCulture,
                $"{sides[s].Recall:0.0000} {sides[s].Cpu.Single:N0} qps (one call {sides[s].Cpu.Batch:N0}; sys {100 * used[s].SystemMicroseconds / 1e6 / cpuSingle[s]:0.0}%, {used[s].Faults} faults, {used[s].InvoluntarySwitches} preemptions{(s == 0 ? "" : $", {used[s].Gen0Collections} GCs")})");
        }
        return (sides, notes);
    }
    string SideName(int s) => s == 0 ? "hnswlib" : CollectionConfig.DatatypeName(collections[s - 1].Config.Datatype);
    if (warmup)
    {
        // Round 0: the same passes, not counted: the first touches of each side's memory since the build (or the
        // peer's load), and the JIT's tiers; its figures show how cold a first pass is.
        var lines = Enumerable.Range(0, collections.Count + 1).Select(_ => new List<string>()).ToList();
        foreach (var ef in efs)
        {
            var (_, notes) = Pass(ef);
            for (var s = 0; s < notes.Length; s++) lines[s].Add(notes[s]);
        }
        for (var s = 0; s < lines.Count; s++)
        {
            Console.WriteLine($"round 0 (warm-up, not counted) {SideName(s)}, CPU time, call per query at ef {string.Join('/', efs)}: {string.Join("; ", lines[s])}");
        }
    }
    for (var r = 1; r <= rounds; r++)
    {
        var lines = Enumerable.Range(0, collections.Count + 1).Select(_ => new List<string>()).ToList();
        foreach (var ef in efs)
        {
            var (sides, notes) = Pass(ef);
            peerRuns[ef].Add(sides[0]);
            for (var i = 0; i < collections.Count; i++) kilnRunsOf[i][ef].Add(sides[i + 1]);
            for (var s = 0; s < notes.Length; s++) lines[s].Add(notes[s]);
        }
        for (var s = 0; s < lines.Count; s++)
        {
            Console.WriteLine($"round {r} {SideName(s)}, CPU time, call per query at ef {string.Join('/', efs)}: {string.Join("; ", lines[s])}");
        }
        // This round's ratios at once (thread CPU time, Kiln's call per query against the peer's of this round at Kiln's
        // recall), so that a run stopped early still leaves its finished rounds.
        foreach (var (kc, kilnRuns) in collections.Zip(kilnRunsOf))
        {
            var curve = efs.Select(e => (peerRuns[e][r - 1].Recall, peerRuns[e][r - 1].Cpu.Single)).OrderBy(p => p.Recall).ToList();
            Console.WriteLine($"round {r} {CollectionConfig.DatatypeName(kc.Config.Datatype)}, CPU time, Kiln call per query / hnswlib call per query at ef {string.Join('/', efs)}: " +
                string.Join(", ", efs.Select(ef => string.Create(CultureInfo.InvariantCulture, $"{kilnRuns[ef][r - 1].Recall:0.0000} {kilnRuns[ef][r - 1].Cpu.Single:N0} qps {Ratio([kilnRuns[ef][r - 1].Cpu.Single / Interpolate(curve, kilnRuns[ef][r - 1].Recall)])}"))));
        }
        Console.WriteLine($"round {r} done (load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]})");
    }
    Console.WriteLine();
    Console.WriteLine("QPS are medians over the rounds; ratios are medians of the per-round ratios at Kiln's recall (the peer's QPS of the same round interpolated).");
    foreach (var (kc, kilnRuns) in collections.Zip(kilnRunsOf))
    foreach (var (title, pick) in new (string, Func<Side, Qps>)[] { ("wall clock", x => x.Wall), ("thread CPU time", x => x.Cpu) })
    {
        Console.WriteLine();
        Console.WriteLine($"queries per second of {title}, Kiln {CollectionConfig.DatatypeName(kc.Config.Datatype)}:");
        Console.WriteLine("| ef | hnswlib recall@10 | hnswlib, one call | hnswlib, call per query | Kiln recall@10 | Kiln, call per query | Kiln, batch | Kiln call per query / hnswlib one call | Kiln call per query / hnswlib call per query | Kiln batch / hnswlib one call |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var ef in efs)
        {
            var pr = peerRuns[ef];
            var kr = kilnRuns[ef];
            var perRound = Enumerable.Range(0, kr.Count).Select(i =>
            {
                var batchCurve = efs.Select(e => (peerRuns[e][i].Recall, pick(peerRuns[e][i]).Batch)).OrderBy(p => p.Recall).ToList();
                var singleCurve = efs.Select(e => (peerRuns[e][i].Recall, pick(peerRuns[e][i]).Single)).OrderBy(p => p.Recall).ToList();
                var k = pick(kr[i]);
                return (k.Single / Interpolate(batchCurve, kr[i].Recall), k.Single / Interpolate(singleCurve, kr[i].Recall), k.Batch / Interpolate(batchCurve, kr[i].Recall));
            }).ToList();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {ef} | {Median(pr.Select(p => p.Recall)):0.0000} | {Median(pr.Select(p => pick(p).Batch)):N0} | {Median(pr.Select(p => pick(p).Single)):N0} | {Median(kr.Select(k => k.Recall)):0.0000} | {Median(kr.Select(k => pick(k).Single)):N0} | {Median(kr.Select(k => pick(k).Batch)):N0} | {Ratio(perRound.Select(x => x.Item1))} | {Ratio(perRound.Select(x => x.Item2))} | {Ratio(perRound.Select(x => x.Item3))} |"));
        }
    }
    if (profile) SearchProfile.Run(c, q, [16, 64]);
    if (Opt("http", 0) is var httpSeconds and > 0)
    {
        c.SetSearchExpansion(64);
        await HttpSearchBench.RunAsync(store, "bench", q, httpSeconds, kilnDir);
    }
    if (Opt("recovery", 0) == 1)
    {
        // A snapshot, then a log tail of 10,000 new points, then the time to open the store again (snapshot loaded, tail replayed).
        clock.Restart();
        c.Snapshot();
        Console.WriteLine($"snapshot of {c.Count:N0} points: {clock.Elapsed.TotalSeconds:0.0} s");
        for (var s = 0; s < 10_000; s += 1000)
        {
            c.Upsert([.. Enumerable.Range(s, 1000).Select(i => new PointInput(PointId.Of((ulong)(n + i)), q[i % queries], null))]);
        }
        var expected = c.Count;
        await store.DisposeAsync();
        store = null;
        clock.Restart();
        store = await VectorStore.OpenAsync(Path.Combine(kilnDir, "vectors"), Path.Combine(kilnDir, "kiln.db"));
        var reopened = store.Get("bench").Count;
        Console.WriteLine($"recovery: reopened {reopened:N0} points (snapshot + a log tail of 10,000) in {clock.Elapsed.TotalSeconds:0.00} s");
        if (reopened != expected) throw new InvalidOperationException($"reopened {reopened} points, expected {expected}");
    }
}
finally
{
    if (store is not null) await store.DisposeAsync();
    if (keepKiln is null) Directory.Delete(kilnDir, true);
    if (reused is null && Opt("keep-data", 0) == 0) Directory.Delete(dir, true);
}

// A store left by --keep-kiln opened in this fresh process: the recovery time (snapshot loaded, log tail replayed), the
// process's resident memory before and after (/proc/self/status), and recall@10 against the data's exact top-10.
static async Task Reopen(string kilnDir, string dataDir, int queries)
{
    var before = ProcStatus("VmRSS");
    var clock = Stopwatch.StartNew();
    await using var store = await VectorStore.OpenAsync(Path.Combine(kilnDir, "vectors"), Path.Combine(kilnDir, "kiln.db"));
    var c = store.Get("bench");
    var seconds = clock.Elapsed.TotalSeconds;
    var managed = GC.GetTotalMemory(forceFullCollection: true);
    var after = ProcStatus("VmRSS");
    var n = c.Count;
    var dim = c.Config.Dimension;
    Console.WriteLine($"recovery: opened {n:N0} points ({c.Config.Datatype}, M={c.Config.Hnsw.M}, expansion_add={c.Config.Hnsw.EfConstruct}; snapshot + its log tail) in {seconds:0.00} s; load average {File.ReadAllText("/proc/loadavg").Trim()}");
    Console.WriteLine($"memory after open: VmRSS {after / 1024.0:0.0} MiB ({before / 1024.0:0.0} MiB before the open, so the collection holds {(after - before) / 1024.0:0.0} MiB), peak VmHWM {ProcStatus("VmHWM") / 1024.0:0.0} MiB, graph (USearch) {c.IndexMemoryBytes / 1048576.0:0.0} MiB, managed heap {managed / 1048576.0:0.0} MiB (slot table {c.SlotTableBytes / 1048576.0:0.0} MiB); raw float32 vectors {n * dim * 4 / 1048576.0:0.0} MiB: collection / raw = {(after - before) * 1024.0 / (n * dim * 4):0.00}");
    CheckTail(kilnDir, dataDir, c);
    var q = ReadFloats(Path.Combine(dataDir, "queries.f32"), queries);
    var gtBytes = File.ReadAllBytes(Path.Combine(dataDir, "gt.i32"));
    foreach (var ef in new[] { 16, 32, 64, 128 })
    {
        c.SetSearchExpansion(ef);
        var hits = 0;
        var cpu = SearchProfile.ThreadCpuMicroseconds();
        for (var i = 0; i < queries; i++)
        {
            var truth = new HashSet<ulong>();
            for (var j = 0; j < 10; j++) truth.Add((ulong)BitConverter.ToInt32(gtBytes, (i * 10 + j) * 4));
            foreach (var h in c.Search(new SearchRequest(q[i], 10) { WithVector = false })) if (truth.Contains(h.Point.Id.Number)) hits++;
        }
        Console.WriteLine($"ef {ef}: recall@10 {hits / (10.0 * queries):0.0000}, {queries / ((SearchProfile.ThreadCpuMicroseconds() - cpu) / 1e6):N0} queries per second of thread CPU time");
    }
}

// After the memory is read: the log tail written by --keep-kiln (tail.json) must be in the reopened collection. Every
// upserted point is there with its vector (exact for float32, to float16's rounding otherwise) and is its own nearest
// neighbour in a graph search (ef 64), every deleted point is gone from gets and from searches for its own vector, and
// the count is the base's plus the upserts less the deletes. Throws (exit code non-zero) when one is not.
static void CheckTail(string kilnDir, string dataDir, VectorCollection c)
{
    var tailFile = Path.Combine(kilnDir, "tail.json");
    if (!File.Exists(tailFile)) throw new InvalidOperationException($"{tailFile} is missing: the store was not left by --keep-kiln");
    var tail = JsonNode.Parse(File.ReadAllText(tailFile))!;
    var n = tail["base"]!.GetValue<int>();
    var upserted = tail["upserted"]!.GetValue<int>();
    var deleted = tail["deleted"]!.AsArray().Select(d => d!.GetValue<ulong>()).ToList();
    var dim = c.Config.Dimension;
    var rows = ReadRows(Path.Combine(dataDir, "base.f32"), dim, upserted);
    var tolerance = c.Config.Datatype == VectorDatatype.Float32 ? 0f : 0.01f;
    if (c.Count != n + upserted - deleted.Count) throw new InvalidOperationException($"reopened {c.Count} points, expected {n} + {upserted} - {deleted.Count}");
    var got = c.Get(Enumerable.Range(0, upserted).Select(i => PointId.Of((ulong)(n + i)))).ToDictionary(p => p.Id.Number);
    var selfFound = 0;
    c.SetSearchExpansion(64);
    for (var i = 0; i < upserted; i++)
    {
        if (!got.TryGetValue((ulong)(n + i), out var p)) throw new InvalidOperationException($"point {n + i} of the log tail is missing after reopen");
        var expected = rows[i].Select(x => 3 * x).ToArray();
        for (var j = 0; j < dim; j++)
        {
            if (Math.Abs(p.Vector[j] - expected[j]) > tolerance * Math.Max(1, Math.Abs(expected[j]))) throw new InvalidOperationException($"point {n + i}: component {j} is {p.Vector[j]}, logged {expected[j]}");
        }
        if (c.Search(new SearchRequest(expected, 1) { WithVector = false }) is [var top] && top.Point.Id.Number == (ulong)(n + i)) selfFound++;
    }
    if (c.Get(deleted.Select(PointId.Of)).Count is var back and > 0) throw new InvalidOperationException($"{back} deleted points came back after reopen");
    foreach (var id in deleted.Take(200))
    {
        var hits = c.Search(new SearchRequest(ReadRows(Path.Combine(dataDir, "base.f32"), dim, 1, (long)id)[0], 10) { WithVector = false });
        if (hits.Any(h => deleted.Contains(h.Point.Id.Number))) throw new InvalidOperationException($"a search for deleted point {id}'s vector returned a deleted point");
    }
    Console.WriteLine($"log tail checked: {upserted:N0} upserted points back with their vectors ({selfFound:N0} their own top hit at ef 64), {deleted.Count:N0} deleted points absent from gets and from 200 searches for their own vectors, count {c.Count:N0}");
}

// Rows of a float32 file of rows of dim floats (from row first), read without the rest of the file.
static float[][] ReadRows(string path, int dim, int rows, long first = 0)
{
    using var f = File.OpenRead(path);
    f.Position = first * dim * 4;
    var buffer = new byte[dim * 4];
    var result = new float[rows][];
    for (var i = 0; i < rows; i++)
    {
        f.ReadExactly(buffer);
        result[i] = new float[dim];
        Buffer.BlockCopy(buffer, 0, result[i], 0, buffer.Length);
    }
    return result;
}

// A line of /proc/self/status in KiB (VmRSS: resident now, VmHWM: the peak).
static long ProcStatus(string name) =>
    long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(name + ":", StringComparison.Ordinal))[(name.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);

static double Median(IEnumerable<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

// The median of the rounds whose recall fell inside the peer's curve; the count of rounds when some did not.
static string Ratio(IEnumerable<double?> perRound)
{
    var all = perRound.ToList();
    var known = all.Where(r => r is not null).Select(r => r!.Value).ToList();
    if (known.Count == 0) return "outside the peer's range";
    var median = Median(known).ToString("0.00", CultureInfo.InvariantCulture);
    return known.Count == all.Count ? median : $"{median} ({known.Count} of {all.Count} rounds)";
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

// hnswlib_peer.py serve DIR: the peer's index loaded once; each "ef start count" line written to its input is answered
// with one JSON line (the chunk's times and true neighbours found).
Process StartPeer(string dataDir)
{
    var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
    psi.ArgumentList.Add(peer);
    psi.ArgumentList.Add("serve");
    psi.ArgumentList.Add(dataDir);
    return Process.Start(psi)!;
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

/// <summary>Queries per second answered one call per query (Single) and all in one call (Batch).</summary>
internal readonly record struct Qps(double Single, double Batch);

/// <summary>One side's sweep point in one round: recall@10, and its QPS by wall clock and by thread CPU time.</summary>
internal readonly record struct Side(double Recall, Qps Wall, Qps Cpu);
