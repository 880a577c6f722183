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

    /// <summary>A manifest for a job starting on an empty output.</summary>
    internal static BatchManifest Start(JobIdentity job, IReadOnlyList<OutputColumn> columns) => new()
    {
        ModelUri = job.ModelUri,
        ModelName = job.ModelName,
        ModelVersion = job.ModelVersion,
        ModelSha256 = job.ModelSha256,
        InputUri = job.InputUri,
        InputFingerprint = job.InputFingerprint,
        Shard = job.Shard.ToString(),
        Columns = [.. columns],
        StartedAt = DateTimeOffset.UtcNow,
    };

    /// <summary>
    /// --resume of this manifest (found at <paramref name="where"/>) by <paramref name="job"/>: a KilnException naming
    /// it when another model wrote it, the input changed (<paramref name="startAgain"/> says where to start afresh) or the
    /// output columns differ. Then the parts whose file <paramref name="present"/> does not find are dropped, the rest
    /// are returned as done, and the manifest is marked not complete.
    /// </summary>
    internal IReadOnlySet<PartitionId> Resume(JobIdentity job, IReadOnlyList<OutputColumn> columns, string where, string startAgain, Func<string, bool> present)
    {
        if (ModelSha256 != job.ModelSha256)
            throw new KilnException($"{where}: the output was written by another model ({ModelUri}); --resume needs the same model");
        if (InputFingerprint != job.InputFingerprint)
            throw new KilnException($"{where}: the input changed since the output was started ({InputUri}); {startAgain}");
        if (!Columns.Select(c => c.Name).SequenceEqual(columns.Select(c => c.Name)))
            throw new KilnException($"{where}: the output columns ({string.Join(", ", Columns.Select(c => c.Name))}) differ from this run's; pass the same --keep");
        // A part counts as done only if its file is really there.
        Parts.RemoveAll(p => p.File is null || !present(p.File));
        Complete = false;
        return Parts.Select(p => new PartitionId(p.FileIndex, p.Partition)).ToHashSet();
    }

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
