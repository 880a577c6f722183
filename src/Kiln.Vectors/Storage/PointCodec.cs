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
        var text = payload is null ? "" : payload.ToJsonString();
        var bytes = Encoding.UTF8.GetBytes(text);
        w.Write(bytes.Length);
        w.Write(bytes);
    }

    public static (PointId Id, float[] Vector, JsonObject? Payload) ReadPoint(BinaryReader r)
    {
        var id = ReadId(r);
        var n = r.ReadInt32();
        var vector = new float[n];
        for (var i = 0; i < n; i++) vector[i] = r.ReadSingle();
        var length = r.ReadInt32();
        var payload = length == 0 ? null : JsonNode.Parse(r.ReadBytes(length))!.AsObject();
        return (id, vector, payload);
    }
}
