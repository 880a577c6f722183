using System.Diagnostics;
using System.Runtime.InteropServices;
using Kiln.Vectors;

/// <summary>Where one unfiltered Search call's time goes: each step of it timed alone over the same queries
/// (--profile 1), against the whole call.</summary>
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
        var slots = new ulong[K];
        var distances = new float[K];
        var vector = new float[dim];
        var gate = new ReaderWriterLockSlim(LockRecursionPolicy.NoRecursion);
        foreach (var ef in efs)
        {
            c.SetSearchExpansion(ef);
            var steps = new (string Name, Action<float[]> Step)[]
            {
                ("whole Search call (hits with their vectors)", q => c.Search(new SearchRequest(q, K))),
                ("whole Search call (WithVector = false)", q => c.Search(new SearchRequest(q, K) { WithVector = false })),
                ("read lock enter + exit", _ => { gate.EnterReadLock(); gate.ExitReadLock(); }),
                ("query check (PrepareVector)", q => c.PrepareVector(q, "vector")),
                ("usearch_search (P/Invoke, k=10)", q => c.Graph.Search(q, K, slots, distances, null)),
                ("usearch_get x10 + rescore", q =>
                {
                    for (var j = 0; j < K; j++)
                    {
                        c.Graph.TryGet(slots[j], vector);
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
