using System.Runtime.InteropServices;

namespace Kiln.Edge;

/// <summary>
/// What kiln-score does before ONNX Runtime loads, so that its start to the first prediction stays short
/// (docs/benchmarks.md#edge-scorer has the measurements behind each step).
/// </summary>
internal static partial class StartUp
{
    private const int MallocTopPad = -2; // glibc's M_TOP_PAD
    private const int MallocMmapThreshold = -3; // M_MMAP_THRESHOLD
    private const int MadviseHugePage = 14; // MADV_HUGEPAGE
    private const long HugePage = 2 << 20;
    private const int HeapReserve = 64 << 20;

    /// <summary>Both steps below; each is skipped where it does not apply, and neither can fail the run.</summary>
    public static void Prepare()
    {
        QuietOnnxRuntimeTelemetry();
        HugePagesForTheHeap();
    }

    /// <summary>
    /// ONNX Runtime 1.31 on Linux starts its usage telemetry when its environment is created: a SQLite file under
    /// ~/.cache/Microsoft/DeveloperTools, a device id, /etc/os-release read, and a thread that the exit waits for
    /// (25-45 ms of wall time measured). A scorer on a device has no business sending usage data, so it is off unless
    /// ORT_DISABLE_TELEMETRY is already set. The variable goes into the C library's environment (setenv), where
    /// ONNX Runtime reads it; .NET's own environment block is not seen by native code on Unix.
    /// </summary>
    private static void QuietOnnxRuntimeTelemetry()
    {
        const string Variable = "ORT_DISABLE_TELEMETRY";
        if (Environment.GetEnvironmentVariable(Variable) is not null) return;
        if (OperatingSystem.IsLinux()) _ = SetEnv(Variable, "1", 0);
        else Environment.SetEnvironmentVariable(Variable, "1");
    }

    /// <summary>
    /// ONNX Runtime's start is mostly small allocations: its operator schemas and kernel registry (about 9 MB of
    /// malloc'd memory), then the session. On Linux each new 4 KB page of that heap is a page fault, and on virtual
    /// machines a page fault is expensive: about 2,300 of them were a third of the start's CPU time. So the C heap is
    /// grown 64 MB at a time and that range marked for transparent huge pages (2 MB pages, the same as glibc's
    /// glibc.malloc.hugetlb=1 tunable, which must be set before the process starts); allocations up to 32 MB come
    /// from that heap rather than their own mappings. Where the kernel has transparent huge pages off, the advice
    /// is ignored and pages fault in as before; the scorer's resident memory grows by a few MB (the 2 MB pages).
    /// </summary>
    private static void HugePagesForTheHeap()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            if (MallOpt(MallocTopPad, HeapReserve) == 0) return;
            _ = MallOpt(MallocMmapThreshold, 32 << 20);
            // An allocation below the mmap threshold that does not fit the heap makes malloc grow it by the reserve.
            var block = Malloc(120_000);
            if (block == 0) return;
            var top = (long)SBrk(0);
            var start = ((long)block + HugePage - 1) & ~(HugePage - 1);
            if (top > start) _ = MAdvise((nint)start, (nint)(top - start), MadviseHugePage);
            // The block is kept: freeing it would let malloc trim the heap's end it just grew.
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Another C library (musl has no mallopt): the heap stays as it is.
        }
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);

    [LibraryImport("libc", EntryPoint = "malloc")]
    private static partial nint Malloc(nint size);

    [LibraryImport("libc", EntryPoint = "sbrk")]
    private static partial nint SBrk(nint increment);

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int MAdvise(nint address, nint length, int advice);
}
