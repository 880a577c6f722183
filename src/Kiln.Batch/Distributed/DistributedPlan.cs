using System.Globalization;
using Kiln.Batch.Sinks;
using Kiln.Batch.Sources;
using Kiln.Batch.Validation;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Storage.Objects;

namespace Kiln.Batch.Distributed;

/// <summary>
/// A distributed batch job as planned by its coordinator: the model pinned to one version (and the SHA-256 of its
/// package, which every worker checks), the input's fingerprint, the output columns and one entry per partition.
/// </summary>
public sealed class DistributedPlan
{
    /// <summary>The model as every partition resolves it: <c>models:/NAME/VERSION</c>, a <c>runs:/</c> URI or a package directory.</summary>
    public required string PinnedModel { get; init; }

    public required string ModelUri { get; init; }

    public required string ModelName { get; init; }

    public string? ModelVersion { get; init; }

    public required string ModelSha256 { get; init; }

    public required string Input { get; init; }

    public required string InputFingerprint { get; init; }

    /// <summary>The output: a directory (absolute) or an S3 location (<c>s3://BUCKET/PREFIX</c>).</summary>
    public required string Output { get; init; }

    /// <summary>True when the output is an S3 location.</summary>
    public bool OutputIsS3 => S3Location.IsS3(Output);

    public required IReadOnlyList<OutputColumn> Columns { get; init; }

    public required IReadOnlyList<BatchPartition> Partitions { get; init; }

    /// <summary>Input rows when the input says so without being read (Parquet); null for CSV.</summary>
    public long? Rows { get; init; }

    /// <summary>Input files left out as bad (--on-bad-file skip); null when none.</summary>
    public IReadOnlyList<SkippedFile>? SkippedFiles { get; init; }
}

/// <summary>Plans a distributed batch job and commits its manifest; the job engine that runs the partitions is the caller's.</summary>
public static class DistributedBatch
{
    /// <summary>Bytes of CSV per partition when the caller does not say how many partitions.</summary>
    public const long DefaultCsvPartitionBytes = 32L << 20;

    /// <summary>
    /// Resolves the model once (an alias becomes the version it points at now), checks the input's columns
    /// against its signature, and splits the input: a Parquet file into its row groups, a CSV file into byte
    /// ranges at line starts (<paramref name="partitions"/> in all for the CSV files, shared by size; default one
    /// per 32 MiB). Nothing is written.
    /// </summary>
    public static async Task<DistributedPlan> PlanAsync(BatchOptions options, int? partitions, CancellationToken ct = default)
    {
        options.Validate();
        if (partitions is < 1) throw new KilnException($"--partitions {partitions}: must be at least 1");
        if (options.Resume) throw new KilnException("--resume does not apply to --distributed: a distributed job commits each partition once, and re-running it overwrites the same parts");
        var resolved = options.Resolved ?? await options.Locator.ResolveAsync(options.Model, ct).ConfigureAwait(false);
        var package = ModelPackage.Load(resolved.PackageDirectory);
        var sha = ModelPackage.Sha256OfFile(Path.Combine(package.Directory, PackageManifest.FileName));
        var pinned = resolved.Name is not null && resolved.RegistryVersion is { } v
            ? string.Create(CultureInfo.InvariantCulture, $"models:/{resolved.Name}/{v}")
            : resolved.Uri.StartsWith("runs:/", StringComparison.Ordinal) ? resolved.Uri : Path.GetFullPath(resolved.PackageDirectory);

        var probe = new BatchPartition(0, 0);  // a FileSource for planning; nothing is read through it
        var sink = BatchSinks.Open(options.Output, options.Key, partitionOnly: true); // refuses a table output
        await sink.DisposeAsync().ConfigureAwait(false);
        string output;
        if (S3Location.IsS3(options.Output))
        {
            // The bucket is checked here, before anything is enqueued: a missing one is one line and nothing runs.
            using var s3 = S3Storage.Open(options.Output, "--output");
            await s3.CheckAsync("--output", ct).ConfigureAwait(false);
            if ((await s3.ListAllAsync("", ct).ConfigureAwait(false)).Count > 0)
                throw new KilnException($"--output {s3.Location}: the prefix is not empty; a distributed job writes under an empty prefix");
            output = s3.Location.ToString();
        }
        else
        {
            output = Path.GetFullPath(options.Output.StartsWith("file://", StringComparison.Ordinal) ? new Uri(options.Output).LocalPath : options.Output);
            if (File.Exists(output)) throw new KilnException($"--output {output}: is a file; give a directory for Parquet parts");
            if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any(e => !Path.GetFileName(e).StartsWith('.')))
                throw new KilnException($"--output {output}: the directory is not empty; a distributed job writes into an empty directory");
        }

        var source = BatchSources.Open(options.Input, options.PartitionRows, probe);
        await using var scope = source.ConfigureAwait(false);
        var files = ((FileSource)source).Files;
        var skipped = new List<SkippedFile>();
        var schemas = SchemaCheck.Screen(package.Signature, await source.InspectAsync(ct).ConfigureAwait(false), options.Keep, options.OnBadFile, skipped);
        var plan = SchemaCheck.Check(package.Signature, schemas, options.Keep, source.Untyped, options.OnBadRow);
        var bad = skipped.Select(s => s.File).ToHashSet(StringComparer.Ordinal);

        var list = new List<BatchPartition>();
        long rows = 0;
        var allParquet = true;
        long csvBytes = 0;
        foreach (var f in files) if (DataSources.IsCsv(f) && !bad.Contains(f)) csvBytes += new FileInfo(f).Length;
        var csvParts = partitions ?? (int)Math.Clamp((csvBytes + DefaultCsvPartitionBytes - 1) / DefaultCsvPartitionBytes, 1, 100_000);
        for (var f = 0; f < files.Count; f++)
        {
            if (bad.Contains(files[f])) continue; // a skipped bad file has no partitions
            if (DataSources.IsParquet(files[f]))
            {
                var sizes = await ParquetTable.ReadRowGroupSizesAsync(files[f], ct).ConfigureAwait(false);
                if (sizes.Length == 0) list.Add(new BatchPartition(f, 0, File: files[f]));
                for (var g = 0; g < sizes.Length; g++)
                {
                    list.Add(new BatchPartition(f, g, File: files[f]));
                    rows += sizes[g];
                }
                continue;
            }
            allParquet = false;
            var share = csvBytes == 0 ? 1 : (int)Math.Max(1, Math.Round((double)csvParts * new FileInfo(files[f]).Length / csvBytes));
            var ranges = CsvRanges.Split(files[f], share);
            for (var i = 0; i < ranges.Count; i++) list.Add(new BatchPartition(f, i, ranges[i].Start, ranges[i].End, files[f]));
        }
        return new DistributedPlan
        {
            PinnedModel = pinned,
            ModelUri = options.Model,
            ModelName = package.Name,
            ModelVersion = resolved.RegistryVersion?.ToString(CultureInfo.InvariantCulture),
            ModelSha256 = sha,
            Input = options.Input,
            InputFingerprint = await source.FingerprintAsync(ct).ConfigureAwait(false),
            Output = output,
            Columns = plan.Output,
            Partitions = list,
            Rows = allParquet ? rows : null,
            SkippedFiles = skipped.Count > 0 ? skipped : null,
        };
    }

    /// <summary>
    /// Writes <c>_manifest.json</c> (complete, every part) once every partition has committed, and removes temporary
    /// files left by runs that were killed. The manifest is the job's commit: a reader that finds it finds every part.
    /// On S3 every part is checked in one listing and the manifest is one PUT (an object appears whole or not at all).
    /// </summary>
    public static async Task CommitAsync(DistributedPlan plan, IReadOnlyList<PartRecord> parts, DateTimeOffset startedAt, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var byId = new Dictionary<PartitionId, PartRecord>();
        foreach (var p in parts) byId[new PartitionId(p.FileIndex, p.Partition)] = p;
        var missing = plan.Partitions.Where(p => !byId.ContainsKey(p.Id)).Select(p => p.ToString()).ToList();
        if (missing.Count > 0) throw new KilnException($"partitions {string.Join(", ", missing.Take(5))} have no committed part");
        var ordered = byId.Values.OrderBy(p => new PartitionId(p.FileIndex, p.Partition)).ToList();
        var manifest = new BatchManifest
        {
            ModelUri = plan.PinnedModel,
            ModelName = plan.ModelName,
            ModelVersion = plan.ModelVersion,
            ModelSha256 = plan.ModelSha256,
            InputUri = plan.Input,
            InputFingerprint = plan.InputFingerprint,
            Shard = ShardSpec.All.ToString(),
            Columns = [.. plan.Columns],
            Parts = ordered,
            SkippedFiles = plan.SkippedFiles is { Count: > 0 } skipped ? [.. skipped] : null,
            Complete = true,
            Rows = ordered.Sum(p => p.Rows),
            Rejected = ordered.Sum(p => p.Rejected),
            UnseenCategories = ordered.Sum(p => p.UnseenCategories),
            StartedAt = startedAt,
            UpdatedAt = DateTimeOffset.UtcNow,
        };
        var name = BatchManifest.FileName(ShardSpec.All);
        if (plan.OutputIsS3)
        {
            using var s3 = S3Storage.Open(plan.Output, "--output");
            var present = (await s3.ListAsync("", ct).ConfigureAwait(false)).Objects.Select(o => o.Key).ToHashSet(StringComparer.Ordinal);
            foreach (var p in ordered)
            {
                if (p.File is null || !present.Contains(p.File))
                    throw new KilnException($"{plan.Output}: part {p.File} of partition {p.FileIndex}-{p.Partition} is missing");
            }
            using var body = new MemoryStream(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(manifest, BatchJsonContext.Default.BatchManifest));
            await s3.PutAsync(name, body, long.MaxValue, () => new KilnException("manifest too large"), ct).ConfigureAwait(false);
            return;
        }
        foreach (var p in ordered)
        {
            if (p.File is null || !File.Exists(Path.Combine(plan.Output, p.File)))
                throw new KilnException($"{plan.Output}: part {p.File} of partition {p.FileIndex}-{p.Partition} is missing");
        }
        foreach (var tmp in Directory.EnumerateFiles(plan.Output, ".part-*.tmp-*")) File.Delete(tmp);
        manifest.WriteAtomically(Path.Combine(plan.Output, name));
    }

    /// <summary>Removes what a failed job committed (its planned parts, rejects and temporary files), so a failed job leaves no partial output.</summary>
    public static async Task AbandonAsync(DistributedPlan plan, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.OutputIsS3)
        {
            using var s3 = S3Storage.Open(plan.Output, "--output");
            // Only what this job's partitions write: parts and their rejects (an upload never leaves a partial object).
            var mine = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in plan.Partitions)
            {
                mine.Add(p.Id.PartName + ".parquet");
                mine.Add("_rejects/" + p.Id.PartName + ".csv");
            }
            foreach (var o in await s3.ListAllAsync("", ct).ConfigureAwait(false))
            {
                if (mine.Contains(o.Key)) await s3.DeleteAsync(o.Key, ct).ConfigureAwait(false);
            }
            return;
        }
        if (!Directory.Exists(plan.Output)) return;
        foreach (var p in plan.Partitions)
        {
            var part = Path.Combine(plan.Output, p.Id.PartName + ".parquet");
            if (File.Exists(part)) File.Delete(part);
            var rejects = RejectsWriter.PathFor(Path.Combine(plan.Output, "_rejects"), p.Id);
            if (File.Exists(rejects)) File.Delete(rejects);
        }
        foreach (var tmp in Directory.EnumerateFiles(plan.Output, ".part-*.tmp-*")) File.Delete(tmp);
    }
}
