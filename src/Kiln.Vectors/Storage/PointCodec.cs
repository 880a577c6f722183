using System.Text;
using System.Text.Json.Nodes;

namespace Kiln.Vectors.Storage;

/// <summary>A point as stored in the write-ahead log and in snapshots: id, float32 components, payload as JSON text.</summary>
internal static class PointCodec
{
    public static void WriteId(BinaryWriter w, PointId id)
    {
        if (id.IsUuid)
        {
            w.Write((byte)1);
            w.Write(id.Uuid.ToByteArray());
        }
        else
        {
            w.Write((byte)0);
            w.Write(id.Number);
        }
    }

    public static PointId ReadId(BinaryReader r) =>
        r.ReadByte() == 1 ? PointId.Of(new Guid(r.ReadBytes(16))) : PointId.Of(r.ReadUInt64());

    public static void WritePoint(BinaryWriter w, PointId id, float[] vector, JsonObject? payload)
    {
        WriteId(w, id);
        w.Write(vector.Length);
        foreach (var x in vector) w.Write(x);
        WritePayload(w, payload);
    }

    /// <summary>A point without its vector (snapshots, where the vectors are in the graph's file).</summary>
    public static void WriteEntry(BinaryWriter w, PointId id, JsonObject? payload)
    {
        WriteId(w, id);
        WritePayload(w, payload);
    }

    public static (PointId Id, JsonObject? Payload) ReadEntry(BinaryReader r) => (ReadId(r), ReadPayload(r));

    private static void WritePayload(BinaryWriter w, JsonObject? payload)
    {
        var bytes = payload is null ? [] : Encoding.UTF8.GetBytes(payload.ToJsonString());
        w.Write(bytes.Length);
        w.Write(bytes);
    }

    private static JsonObject? ReadPayload(BinaryReader r)
    {
        var length = r.ReadInt32();
        return length == 0 ? null : JsonNode.Parse(r.ReadBytes(length))!.AsObject();
    }

    public static (PointId Id, float[] Vector, JsonObject? Payload) ReadPoint(BinaryReader r)
    {
        var id = ReadId(r);
        var n = r.ReadInt32();
        var vector = new float[n];
        for (var i = 0; i < n; i++) vector[i] = r.ReadSingle();
        return (id, vector, ReadPayload(r));
    }
}
