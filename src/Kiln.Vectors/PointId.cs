using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln.Vectors;

/// <summary>A point's id: an unsigned 64-bit integer or a UUID, as in Qdrant.</summary>
public readonly record struct PointId(ulong Number, Guid Uuid) : IComparable<PointId>
{
    public bool IsUuid => Uuid != Guid.Empty;

    public static PointId Of(ulong number) => new(number, Guid.Empty);

    public static PointId Of(Guid uuid) => new(0, uuid);

    /// <summary>Reads an id from JSON; <paramref name="field"/> names it in the error.</summary>
    public static PointId Parse(JsonNode? node, string field)
    {
        if (node is JsonValue v)
        {
            var kind = v.GetValueKind();
            if (kind == JsonValueKind.Number && v.TryGetValue<ulong>(out var n)) return Of(n);
            if (kind == JsonValueKind.Number && ulong.TryParse(v.ToJsonString(), NumberStyles.None, CultureInfo.InvariantCulture, out n)) return Of(n);
            if (kind == JsonValueKind.String && Guid.TryParse(v.GetValue<string>(), out var g) && g != Guid.Empty) return Of(g);
        }
        throw new VectorInputException($"{field}: a point id is an unsigned integer or a UUID, got {node?.ToJsonString() ?? "null"}");
    }

    public static PointId ParseText(string text, string field) =>
        ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? Of(n)
        : Guid.TryParse(text, out var g) && g != Guid.Empty ? Of(g)
        : throw new VectorInputException($"{field}: a point id is an unsigned integer or a UUID, got '{text}'");

    public JsonNode ToJson() => IsUuid ? JsonValue.Create(Uuid.ToString("D")) : JsonValue.Create(Number);

    public override string ToString() => IsUuid ? Uuid.ToString("D") : Number.ToString(CultureInfo.InvariantCulture);

    /// <summary>Numbers before UUIDs, each in natural order (the scroll order).</summary>
    public int CompareTo(PointId other) =>
        IsUuid != other.IsUuid ? (IsUuid ? 1 : -1)
        : IsUuid ? Uuid.CompareTo(other.Uuid) : Number.CompareTo(other.Number);
}
