using System.Text.Json.Nodes;
using Kiln.Core;

namespace Kiln.Vectors;

/// <summary>How two vectors are compared; the names are Qdrant's.</summary>
public enum Distance
{
    Cosine,
    Dot,
    Euclid,
}

/// <summary>How the HNSW graph stores vector components.</summary>
public enum VectorDatatype
{
    Float32,
    /// <summary>IEEE half precision (Qdrant's "float16"): 2 bytes, 11 significant bits, range ±65,504.</summary>
    Float16,
    /// <summary>bfloat16 (Kiln's extension, "bfloat16"; Qdrant has no such datatype): 2 bytes, float32's range with 8
    /// significant bits. USearch compares it with AVX-512 BF16 dot products where the CPU has them.</summary>
    BFloat16,
}

/// <summary>The kinds of payload field a collection can index (Qdrant's field_schema names).</summary>
public enum PayloadSchemaType
{
    Keyword,
    Integer,
    Float,
    Bool,
    Datetime,
    Text,
}

/// <summary>HNSW build and search parameters (Qdrant's hnsw_config: m, ef_construct; ef at search time).</summary>
public sealed record HnswParameters(int M = 16, int EfConstruct = 100, int Ef = 64);

/// <summary>Everything fixed when a collection is created, plus its payload indexes.</summary>
public sealed record CollectionConfig
{
    public required int Dimension { get; init; }
    public Distance Distance { get; init; } = Distance.Cosine;
    public VectorDatatype Datatype { get; init; } = VectorDatatype.Float32;
    public HnswParameters Hnsw { get; init; } = new();

    /// <summary>Below this many points a search scans every vector exactly instead of walking the graph.</summary>
    public int FullScanThreshold { get; init; } = 1000;

    /// <summary>Whether an acknowledged write has been fsynced to the write-ahead log (Qdrant: wal_config).</summary>
    public bool WalFsync { get; init; } = true;

    public Dictionary<string, PayloadSchemaType> PayloadIndexes { get; init; } = new(StringComparer.Ordinal);

    public static string DistanceName(Distance d) => d.ToString();

    public static Distance ParseDistance(string? text, string field) => text switch
    {
        "Cosine" or "cosine" => Distance.Cosine,
        "Dot" or "dot" => Distance.Dot,
        "Euclid" or "euclid" or "euclidean" => Distance.Euclid,
        _ => throw new VectorInputException($"{field}: unknown distance '{text}' (expected Cosine, Dot or Euclid)"),
    };

    public static VectorDatatype ParseDatatype(string? text, string field) => text switch
    {
        null or "float32" => VectorDatatype.Float32,
        "float16" => VectorDatatype.Float16,
        "bfloat16" => VectorDatatype.BFloat16,
        _ => throw new VectorInputException($"{field}: unknown datatype '{text}' (expected float32, float16 or bfloat16)"),
    };

    /// <summary>The name <see cref="ParseDatatype"/> reads: float32, float16 or bfloat16.</summary>
    public static string DatatypeName(VectorDatatype d) => d switch
    {
        VectorDatatype.Float16 => "float16",
        VectorDatatype.BFloat16 => "bfloat16",
        _ => "float32",
    };

    public static PayloadSchemaType ParseSchemaType(string? text, string field) => text switch
    {
        "keyword" => PayloadSchemaType.Keyword,
        "integer" => PayloadSchemaType.Integer,
        "float" => PayloadSchemaType.Float,
        "bool" => PayloadSchemaType.Bool,
        "datetime" => PayloadSchemaType.Datetime,
        "text" => PayloadSchemaType.Text,
        _ => throw new VectorInputException($"{field}: unknown field schema '{text}' (expected keyword, integer, float, bool, datetime or text)"),
    };

    public JsonObject ToJson()
    {
        var indexes = new JsonObject();
        foreach (var (k, v) in PayloadIndexes) indexes[k] = v.ToString().ToLowerInvariant();
        return new JsonObject
        {
            ["size"] = Dimension,
            ["distance"] = Distance.ToString(),
            ["datatype"] = DatatypeName(Datatype),
            ["hnsw"] = new JsonObject { ["m"] = Hnsw.M, ["ef_construct"] = Hnsw.EfConstruct, ["ef"] = Hnsw.Ef },
            ["full_scan_threshold"] = FullScanThreshold,
            ["wal_fsync"] = WalFsync,
            ["payload_indexes"] = indexes,
        };
    }

    public static CollectionConfig FromJson(JsonObject o)
    {
        var h = o["hnsw"]!.AsObject();
        var indexes = new Dictionary<string, PayloadSchemaType>(StringComparer.Ordinal);
        foreach (var (k, v) in o["payload_indexes"]!.AsObject()) indexes[k] = ParseSchemaType(v!.GetValue<string>(), k);
        return new CollectionConfig
        {
            Dimension = o["size"]!.GetValue<int>(),
            Distance = ParseDistance(o["distance"]!.GetValue<string>(), "distance"),
            Datatype = ParseDatatype(o["datatype"]!.GetValue<string>(), "datatype"),
            Hnsw = new HnswParameters(h["m"]!.GetValue<int>(), h["ef_construct"]!.GetValue<int>(), h["ef"]!.GetValue<int>()),
            FullScanThreshold = o["full_scan_threshold"]!.GetValue<int>(),
            WalFsync = o["wal_fsync"]!.GetValue<bool>(),
            PayloadIndexes = indexes,
        };
    }
}

/// <summary>A client mistake (HTTP 400): the message names the field at fault.</summary>
public class VectorInputException(string message) : KilnException(message);

/// <summary>An unknown collection or point (HTTP 404).</summary>
public sealed class VectorNotFoundException(string message) : KilnException(message);

/// <summary>A collection that already exists (HTTP 409).</summary>
public sealed class VectorConflictException(string message) : KilnException(message);
