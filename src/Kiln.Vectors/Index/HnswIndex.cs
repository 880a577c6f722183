using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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

    public HnswIndex(int dimension, Distance distance, VectorDatatype datatype, HnswParameters parameters)
    {
        Dimension = dimension;
        var options = new USearchNative.InitOptions
        {
            MetricKind = (uint)(distance switch
            {
                Distance.Cosine => MetricKind.Cos,
                Distance.Dot => MetricKind.Ip,
                _ => MetricKind.L2sq,
            }),
            Quantization = (uint)(datatype == VectorDatatype.Float16 ? ScalarKind.Float16 : ScalarKind.Float32),
            Dimensions = (nuint)dimension,
            Connectivity = (nuint)parameters.M,
            ExpansionAdd = (nuint)parameters.EfConstruct,
            ExpansionSearch = (nuint)parameters.Ef,
        };
        _handle = USearchNative.Init(ref options, out var error);
        USearchNative.Check(error);
    }

    public int Dimension { get; }

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
    }

    public void Reserve(long points)
    {
        if ((ulong)points <= _capacity) return;
        USearchNative.Reserve(_handle, (nuint)points, out var error);
        USearchNative.Check(error);
        _capacity = (ulong)points;
    }

    public void Add(ulong slot, ReadOnlySpan<float> vector)
    {
        if (_slotsAdded + 1 > _capacity)
        {
            Reserve((long)Math.Max(1024, _capacity * 2));
        }
        fixed (float* v = vector)
        {
            USearchNative.Add(_handle, slot, v, ScalarKind.Float32, out var error);
            USearchNative.Check(error);
        }
        _slotsAdded++;
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
        USearchNative.Check(error);
        return (int)found;
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
    }
}
