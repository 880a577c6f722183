using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Cloud.Unum.USearch;

namespace Kiln.Vectors.Index;

/// <summary>
/// One USearch HNSW graph keyed by Kiln's internal slot numbers. Not thread-safe for writes: the collection
/// serialises adds and removes and lets searches run side by side.
/// </summary>
internal sealed unsafe class HnswIndex : IDisposable
{
    private nint _handle;
    private ulong _slotsAdded;
    private ulong _capacity;
    private int _threadsAdd = 1;

    // USearch keeps one search context per thread it was sized for and hands them out per call; a call that finds none
    // free fails. Searches therefore take one of these slots first (more callers than contexts wait their turn), and the
    // index is sized for this many after every reserve and load.
    private static readonly int SearchContexts = Math.Max(1, Environment.ProcessorCount);
    private readonly SemaphoreSlim _searchContexts = new(SearchContexts, SearchContexts);

    // The stored kind: a float16 or bfloat16 graph's vectors are read back as stored (a copy of 2 bytes a component) and
    // widened here, which is exact both ways and cheaper than USearch's scalar cast in usearch_get.
    private readonly VectorDatatype _datatype;

    public HnswIndex(int dimension, Distance distance, VectorDatatype datatype, HnswParameters parameters)
    {
        Dimension = dimension;
        _datatype = datatype;
        var options = new USearchNative.InitOptions
        {
            MetricKind = (uint)(distance switch
            {
                Distance.Cosine => MetricKind.Cos,
                Distance.Dot => MetricKind.Ip,
                _ => MetricKind.L2sq,
            }),
            Quantization = (uint)(datatype switch
            {
                VectorDatatype.Float16 => ScalarKind.Float16,
                VectorDatatype.BFloat16 => ScalarKind.BFloat16,
                _ => ScalarKind.Float32,
            }),
            Dimensions = (nuint)dimension,
            Connectivity = (nuint)parameters.M,
            ExpansionAdd = (nuint)parameters.EfConstruct,
            ExpansionSearch = (nuint)parameters.Ef,
        };
        _handle = USearchNative.Init(ref options, out var error);
        USearchNative.Check(error);
        SizeSearchContexts();
        ReadExpansionSearch();
    }

    /// <summary>usearch_reserve and usearch_load size the thread contexts to the machine's count; this sets them to
    /// <see cref="SearchContexts"/> explicitly. Call only while no search or add runs (the collection's write lock).</summary>
    private void SizeSearchContexts()
    {
        USearchNative.ChangeThreadsSearch(_handle, (nuint)SearchContexts, out var error);
        USearchNative.Check(error);
    }

    public int Dimension { get; }

    /// <summary>The SIMD target USearch's distance function runs on for this graph's metric and scalar kind
    /// (usearch_hardware_acceleration: e.g. "skylake" for AVX-512F, "genoa" for AVX-512 BF16, "serial" for none).</summary>
    public string HardwareAcceleration
    {
        get
        {
            var name = USearchNative.HardwareAcceleration(_handle, out var error);
            USearchNative.Check(error);
            return Marshal.PtrToStringUTF8(name) ?? "";
        }
    }

    public long Count
    {
        get
        {
            var size = USearchNative.Size(_handle, out var error);
            USearchNative.Check(error);
            return (long)size;
        }
    }

    public long MemoryBytes
    {
        get
        {
            var bytes = USearchNative.MemoryUsage(_handle, out var error);
            USearchNative.Check(error);
            return (long)bytes;
        }
    }

    /// <summary>The candidate list size of searches from now on (USearch's expansion_search, hnswlib's ef).</summary>
    public void SetExpansionSearch(int ef)
    {
        USearchNative.ChangeExpansionSearch(_handle, (nuint)ef, out var error);
        USearchNative.Check(error);
        ExpansionSearch = ef;
    }

    /// <summary>The candidate list size searches use now (USearch's expansion_search).</summary>
    public int ExpansionSearch { get; private set; }

    private void ReadExpansionSearch()
    {
        var ef = USearchNative.ExpansionSearch(_handle, out var error);
        USearchNative.Check(error);
        ExpansionSearch = (int)ef;
    }

    /// <summary>Makes room for <paramref name="points"/> vectors in all. Capacity is cheap in USearch (a slot table;
    /// nodes and vectors are allocated as they are added), so a batch reserves what it needs at once and single adds
    /// grow it by a quarter, instead of one slot per call.</summary>
    public void Reserve(long points)
    {
        if ((ulong)points <= _capacity) return;
        USearchNative.Reserve(_handle, (nuint)points, out var error);
        USearchNative.Check(error);
        _capacity = (ulong)points;
        // A reserve also resets the thread counts to the machine's.
        _threadsAdd = 1;
        SizeSearchContexts();
    }

    public void Add(ulong slot, ReadOnlySpan<float> vector)
    {
        if (_slotsAdded + 1 > _capacity)
        {
            Reserve((long)Math.Max(1024, _capacity + _capacity / 4));
        }
        AddReserved(slot, vector);
    }

    /// <summary>Adds a batch under consecutive-or-not slots, on up to <paramref name="threads"/> threads: USearch's adds
    /// may run side by side once the capacity is reserved (each thread takes its own search context).</summary>
    public void AddMany(IReadOnlyList<(ulong Slot, float[] Vector)> items, int threads)
    {
        if (items.Count == 0) return;
        Reserve((long)_slotsAdded + items.Count);
        threads = Math.Clamp(threads, 1, Environment.ProcessorCount);
        if (threads == 1 || items.Count < 64)
        {
            foreach (var (slot, vector) in items) AddReserved(slot, vector);
            return;
        }
        if (threads > _threadsAdd)
        {
            USearchNative.ChangeThreadsAdd(_handle, (nuint)threads, out var error);
            USearchNative.Check(error);
            _threadsAdd = threads;
        }
        Parallel.For(0, items.Count, new ParallelOptions { MaxDegreeOfParallelism = threads }, i => AddNative(items[i].Slot, items[i].Vector));
        _slotsAdded += (ulong)items.Count;
    }

    private void AddReserved(ulong slot, ReadOnlySpan<float> vector)
    {
        AddNative(slot, vector);
        _slotsAdded++;
    }

    private void AddNative(ulong slot, ReadOnlySpan<float> vector)
    {
        fixed (float* v = vector)
        {
            USearchNative.Add(_handle, slot, v, ScalarKind.Float32, out var error);
            USearchNative.Check(error);
        }
    }

    /// <summary>Copies the slot's vector out of the graph as float32 (float16 and bfloat16 graphs give the stored, rounded values).</summary>
    public bool TryGet(ulong slot, Span<float> vector)
    {
        if (_datatype == VectorDatatype.Float32)
        {
            fixed (float* v = vector) return GetNative(slot, v, ScalarKind.Float32);
        }
        // The stored 2-byte components, widened to float32 here (exact: every float16 and bfloat16 value is a float32).
        Span<ushort> stored = Dimension <= 2048 ? stackalloc ushort[Dimension] : new ushort[Dimension];
        fixed (ushort* s = stored)
        {
            if (!GetNative(slot, s, _datatype == VectorDatatype.Float16 ? ScalarKind.Float16 : ScalarKind.BFloat16)) return false;
        }
        if (_datatype == VectorDatatype.Float16) TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ushort, Half>(stored), vector);
        else WidenBFloat16(stored, vector);
        return true;
    }

    /// <summary>The vector as USearch's usearch_get casts it to float32 (its scalar conversion; what <see cref="TryGet"/>
    /// did before it read the stored kind): kept for bench/Kiln.Bench.Vectors' --profile, which times both.</summary>
    internal bool TryGetCast(ulong slot, Span<float> vector)
    {
        fixed (float* v = vector) return GetNative(slot, v, ScalarKind.Float32);
    }

    /// <summary>usearch_get of one vector in <paramref name="kind"/> (USearch copies it when that is the stored kind).</summary>
    private bool GetNative(ulong slot, void* destination, ScalarKind kind)
    {
        var found = USearchNative.Get(_handle, slot, 1, (float*)destination, kind, out var error);
        USearchNative.Check(error);
        return found > 0;
    }

    /// <summary>bfloat16 to float32: each value is the upper half of its float32, so widening is a shift.</summary>
    internal static void WidenBFloat16(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("the destination is shorter than the source", nameof(destination));
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref var from = ref MemoryMarshal.GetReference(source);
            ref var to = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(destination));
            for (; i + 16 <= source.Length; i += 16)
            {
                var (lower, upper) = Vector256.Widen(Vector256.LoadUnsafe(ref from, (nuint)i));
                (lower << 16).StoreUnsafe(ref to, (nuint)i);
                (upper << 16).StoreUnsafe(ref to, (nuint)(i + 8));
            }
        }
        for (; i < source.Length; i++) destination[i] = BitConverter.UInt32BitsToSingle((uint)source[i] << 16);
    }

    public void Remove(ulong slot)
    {
        USearchNative.Remove(_handle, slot, out var error);
        USearchNative.Check(error);
    }

    /// <summary>The nearest slots; with <paramref name="accept"/>, the graph is walked with the predicate so that
    /// rejected slots do not take places among the results.</summary>
    public int Search(ReadOnlySpan<float> query, int count, Span<ulong> slots, Span<float> distances, Func<ulong, bool>? accept)
    {
        nuint found;
        nint error;
        _searchContexts.Wait();
        try
        {
            found = SearchNative(query, count, slots, distances, accept, out error);
        }
        finally
        {
            _searchContexts.Release();
        }
        USearchNative.Check(error);
        return (int)found;
    }

    private nuint SearchNative(ReadOnlySpan<float> query, int count, Span<ulong> slots, Span<float> distances, Func<ulong, bool>? accept, out nint error)
    {
        nuint found;
        fixed (float* q = query)
        fixed (ulong* k = slots)
        fixed (float* d = distances)
        {
            if (accept is null)
            {
                found = USearchNative.Search(_handle, q, ScalarKind.Float32, (nuint)count, k, d, out error);
            }
            else
            {
                var state = GCHandle.Alloc(accept);
                try
                {
                    found = USearchNative.FilteredSearch(_handle, q, ScalarKind.Float32, (nuint)count,
                        &Accept, GCHandle.ToIntPtr(state), k, d, out error);
                }
                finally
                {
                    state.Free();
                }
            }
        }
        return found;
    }

    public void Save(string path)
    {
        USearchNative.Save(_handle, path, out var error);
        USearchNative.Check(error);
    }

    public void Load(string path)
    {
        USearchNative.Load(_handle, path, out var error);
        USearchNative.Check(error);
        var capacity = USearchNative.Capacity(_handle, out error);
        USearchNative.Check(error);
        _capacity = capacity;
        _slotsAdded = (ulong)Count;
        _threadsAdd = 1;
        SizeSearchContexts();
        ReadExpansionSearch();
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Accept(ulong key, nint state)
    {
        var accept = (Func<ulong, bool>)GCHandle.FromIntPtr(state).Target!;
        try
        {
            return accept(key) ? 1 : 0;
        }
        catch
        {
            return 0;
        }
    }

    public void Dispose()
    {
        if (_handle != 0)
        {
            USearchNative.Free(_handle, out _);
            _handle = 0;
        }
        _searchContexts.Dispose();
    }
}
