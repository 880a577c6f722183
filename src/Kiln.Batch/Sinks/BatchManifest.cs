using System.Text.Json;
using System.Text.Json.Serialization;
using Kiln.Batch.Validation;
using Kiln.Core;

namespace Kiln.Batch.Sinks;

/// <summary>_manifest.json of a Parquet output directory: the job's identity and every finished part.</summary>
public sealed class BatchManifest
{
    public const int CurrentFormatVersion = 1;

    public int FormatVersion { get; init; } = CurrentFormatVersion;

    public required string ModelUri { get; init; }

    public required string ModelName { get; init; }

    public string? ModelVersion { get; init; }

    /// <summary>SHA-256 of the package's kiln.json (which holds every other file's checksum).</summary>
    public required string ModelSha256 { get; init; }

    public required string InputUri { get; init; }

    public required string InputFingerprint { get; init; }

    /// <summary>"i/N": this manifest covers the partitions of shard i of N.</summary>
    public required string Shard { get; init; }

    public required List<OutputColumn> Columns { get; init; }

    public List<PartRecord> Parts { get; init; } = [];

    /// <summary>Input files left out as bad (--on-bad-file skip), with the reason; absent when none.</summary>
    public List<SkippedFile>? SkippedFiles { get; set; }

    /// <summary>True once every partition of the shard has its part.</summary>
    public bool Complete { get; set; }

    public long Rows { get; set; }

    public long Rejected { get; set; }

    public long UnseenCategories { get; set; }

    public DateTimeOffset StartedAt { get; init; }

    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>The manifest's file name for a shard: _manifest.json for an unsharded job, _manifest-i-of-N.json otherwise.</summary>
    public static string FileName(ShardSpec shard) => shard.Count == 1 ? "_manifest.json" : $"_manifest-{shard.Index}-of-{shard.Count}.json";

    public static BatchManifest? Read(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            using var s = File.OpenRead(path);
            return JsonSerializer.Deserialize(s, BatchJsonContext.Default.BatchManifest);
        }
        catch (JsonException e)
        {
            throw new KilnException($"{path}: invalid manifest ({e.Message})", e);
        }
    }

    /// <summary>Writes to a temporary file and renames it over the old manifest, so a reader never sees half of one.</summary>
    public void WriteAtomically(string path)
    {
        var tmp = path + ".tmp";
        using (var s = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(s, this, BatchJsonContext.Default.BatchManifest);
            s.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true)]
[JsonSerializable(typeof(BatchManifest))]
[JsonSerializable(typeof(BatchResult))]
internal sealed partial class BatchJsonContext : JsonSerializerContext;
