using System.Diagnostics;
using System.Runtime.InteropServices;
using Kiln.Vectors;

/// <summary>Where one unfiltered Search call's time goes: each step of it timed alone over the same queries
/// (--profile 1), against the whole call.</summary>
internal readonly record struct ThreadCounters(double SystemMicroseconds, long Faults, long InvoluntarySwitches, int Gen0Collections)
{
    public static ThreadCounters operator +(ThreadCounters a, ThreadCounters b) =>
        new(a.SystemMicroseconds + b.SystemMicroseconds, a.Faults + b.Faults, a.InvoluntarySwitches + b.InvoluntarySwitches, a.Gen0Collections + b.Gen0Collections);

    public static ThreadCounters operator -(ThreadCounters a, ThreadCounters b) =>
        new(a.SystemMicroseconds - b.SystemMicroseconds, a.Faults - b.Faults, a.InvoluntarySwitches - b.InvoluntarySwitches, a.Gen0Collections - b.Gen0Collections);
}

internal static class SearchProfile
{
    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);

    [StructLayout(LayoutKind.Sequential)]
    private struct RUsage
    {
        public long UserSeconds, UserMicroseconds, SystemSeconds, SystemMicroseconds;
        public long MaxRss, IxRss, IdRss, IsRss, MinorFaults, MajorFaults, Swaps, InBlocks, OutBlocks, MessagesSent, MessagesReceived, Signals, VoluntarySwitches, InvoluntarySwitches;
    }

    [DllImport("libc", EntryPoint = "getrusage")]
    private static extern int GetRUsage(int who, out RUsage usage);

    /// <summary>The calling thread's counters (getrusage RUSAGE_THREAD): system CPU time, page faults (minor + major)
    /// and involuntary context switches (the scheduler taking the CPU away: a loaded machine).</summary>
    public static ThreadCounters Counters()
    {
        GetRUsage(1, out var u);
        return new ThreadCounters(u.SystemSeconds * 1e6 + u.SystemMicroseconds, u.MinorFaults + u.MajorFaults, u.InvoluntarySwitches, GC.CollectionCount(0));
    }

    /// <summary>CLOCK_THREAD_CPUTIME_ID (Linux): the CPU time of the calling thread.</summary>
    public static double ThreadCpuMicroseconds()
    {
        ClockGetTime(3, out var t);
        return t.Seconds * 1e6 + t.Nanoseconds / 1e3;
    }

    public static void Run(VectorCollection c, float[][] queries, int[] efs)
    {
        const int K = 10;
        var dim = queries[0].Length;
        var slots = new ulong[2 * K];
        var distances = new float[2 * K];
        var vector = new float[dim];
        var gate = new ReaderWriterLockSlim(LockRecursionPolicy.NoRecursion);
        foreach (var ef in efs)
        {
            c.SetSearchExpansion(ef);
            // As GraphSearch: float16 and bfloat16 graphs are asked for up to twice the limit (at most ef) and every
            // candidate is read back and scored again; float32 graphs for the limit alone, none read back.
            var take = c.Config.Datatype == VectorDatatype.Float32 ? K : Math.Max(K, Math.Min(2 * K, ef));
            var rescored = c.Config.Datatype == VectorDatatype.Float32 ? 0 : take;
            var steps = new (string Name, Action<float[]> Step)[]
            {
                ("whole Search call (hits with their vectors)", q => c.Search(new SearchRequest(q, K))),
                ("whole Search call (WithVector = false)", q => c.Search(new SearchRequest(q, K) { WithVector = false })),
                ("read lock enter + exit", _ => { gate.EnterReadLock(); gate.ExitReadLock(); }),
                ("query check (PrepareVector)", q => c.PrepareVector(q, "vector")),
                ($"usearch_search (P/Invoke, k={take})", q => c.Graph.Search(q, take, slots, distances, null)),
                ($"usearch_get x{rescored} (stored kind, widened in C#) + rescore", q =>
                {
                    for (var j = 0; j < rescored; j++)
                    {
                        c.Graph.TryGet(slots[j], vector);
                        c.Score(q, vector);
                    }
                }),
                ($"usearch_get x{rescored} as float32 (USearch's cast, the read before 2026-12-08) + rescore", q =>
                {
                    for (var j = 0; j < rescored; j++)
                    {
                        c.Graph.TryGetCast(slots[j], vector);
                        c.Score(q, vector);
                    }
                }),
                ("result objects x10 (vector copy, StoredPoint, ScoredPoint)", q =>
                {
                    var list = new List<ScoredPoint>(K);
                    for (var j = 0; j < K; j++)
                    {
                        var v = new float[dim];
                        c.Graph.TryGet(slots[j], v);
                        list.Add(new ScoredPoint(new StoredPoint(PointId.Of(slots[j]), v, null, slots[j]), distances[j]));
                    }
                }),
            };
            Console.WriteLine($"ef={ef}: microseconds per query, best of 5 passes over {queries.Length} queries: wall clock, and this thread's CPU time (less sensitive to a loaded machine)");
            // The steps take turns within each pass, so a change in the machine's load falls on all of them alike.
            var best = new double[steps.Length];
            var bestCpu = new double[steps.Length];
            Array.Fill(best, double.MaxValue);
            Array.Fill(bestCpu, double.MaxValue);
            for (var pass = 0; pass < 5; pass++)
            {
                for (var s = 0; s < steps.Length; s++)
                {
                    var cpu = ThreadCpuMicroseconds();
                    var clock = Stopwatch.StartNew();
                    foreach (var q in queries) steps[s].Step(q);
                    best[s] = Math.Min(best[s], clock.Elapsed.TotalMicroseconds / queries.Length);
                    bestCpu[s] = Math.Min(bestCpu[s], (ThreadCpuMicroseconds() - cpu) / queries.Length);
                }
            }
            for (var s = 0; s < steps.Length; s++) Console.WriteLine($"  {steps[s].Name,-60} {best[s],9:0.00} {bestCpu[s],9:0.00}");
        }
    }
}
