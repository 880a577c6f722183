using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Kiln.Vectors.Tests;

/// <summary>Vectors with a low-dimensional latent structure (x = z·A + 0.1·noise), as real embeddings have.</summary>
internal static class TestData
{
    public static float[][] Latent(int n, int dimension, int latent, int seed)
    {
        var rng = new Random(seed);
        var a = new float[latent, dimension];
        for (var i = 0; i < latent; i++) for (var j = 0; j < dimension; j++) a[i, j] = Gaussian(rng);
        var result = new float[n][];
        var z = new float[latent];
        for (var r = 0; r < n; r++)
        {
            for (var i = 0; i < latent; i++) z[i] = Gaussian(rng);
            var x = new float[dimension];
            for (var j = 0; j < dimension; j++)
            {
                var s = 0f;
                for (var i = 0; i < latent; i++) s += z[i] * a[i, j];
                x[j] = s + 0.1f * Gaussian(rng);
            }
            result[r] = x;
        }
        return result;
    }

    /// <summary>x rounded to bfloat16 (the top 16 bits of float32) to nearest, ties to even, and widened back: what a
    /// bfloat16 graph stores. Written from the format's definition, not from USearch's code.</summary>
    public static float BFloat16(float x)
    {
        var bits = BitConverter.SingleToUInt32Bits(x);
        bits += 0x7FFF + ((bits >> 16) & 1);
        return BitConverter.UInt32BitsToSingle(bits & 0xFFFF_0000);
    }

    public static float Gaussian(Random rng) =>
        (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));

    /// <summary>Payload of point i: group = i % 100, tag = "ten" for every tenth point, nested city, a price.</summary>
    public static JsonObject Payload(int i) => new()
    {
        ["group"] = i % 100,
        ["tag"] = i % 10 == 0 ? "ten" : "other",
        ["address"] = new JsonObject { ["city"] = i % 3 == 0 ? "Berlin" : "Paris" },
        ["price"] = i * 0.5,
        ["colors"] = i % 4 == 0 ? new JsonArray("red", "blue") : new JsonArray(),
    };

    public static List<PointInput> Points(float[][] vectors) =>
        vectors.Select((v, i) => new PointInput(PointId.Of((ulong)i), v, Payload(i))).ToList();

    public static string Csv(float[][] rows)
    {
        var sb = new StringBuilder();
        foreach (var r in rows) sb.AppendLine(string.Join(',', r.Select(x => x.ToString("R", CultureInfo.InvariantCulture))));
        return sb.ToString();
    }
}

/// <summary>How the tests open a store: its catalog in a SQLite kiln.db inside the store directory unless told otherwise.</summary>
internal static class Stores
{
    public static Task<VectorStore> OpenAsync(string directory, string? database = null) =>
        VectorStore.OpenAsync(directory, database ?? Path.Combine(directory, "kiln.db"));
}
