using System.Diagnostics;
using System.Threading.Channels;
using Kiln.Batch.Sinks;
using Kiln.Batch.Sources;
using Kiln.Batch.Validation;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring;

namespace Kiln.Batch;

/// <summary>Live counters of a running job, safe to read from another thread (progress display).</summary>
public sealed class BatchStatus
{
    private long _rowsDone;
    private long _rejected;
    private int _partsDone;

    /// <summary>Input rows of this run's partitions, when the source knows it up front; null otherwise.</summary>
    public long? RowsTotal { get; internal set; }

    public long RowsDone => Interlocked.Read(ref _rowsDone);

    public long Rejected => Interlocked.Read(ref _rejected);

    public int PartsDone => Volatile.Read(ref _partsDone);

    /// <summary>Parts found finished by an earlier run and not scored again.</summary>
    public int PartsResumed { get; internal set; }

    /// <summary>Set once the schema has been checked and scoring starts.</summary>
    public bool Scoring { get; internal set; }

    internal void AddRows(long rows, long rejected)
    {
        Interlocked.Add(ref _rowsDone, rows);
        Interlocked.Add(ref _rejected, rejected);
    }

    internal void PartDone() => Interlocked.Increment(ref _partsDone);
}

/// <summary>What a finished job did.</summary>
public sealed class BatchResult
{
    public required string Output { get; init; }

    public required string Model { get; init; }

    public required string Shard { get; init; }

    /// <summary>Rows written by this run (rejected rows excluded).</summary>
    public required long Rows { get; init; }

    public required long Rejected { get; init; }

    public required long UnseenCategories { get; init; }

    public required int PartsWritten { get; init; }

    public required int PartsResumed { get; init; }

    public required double Seconds { get; init; }

    public string? RejectsDirectory { get; init; }

    /// <summary>Input files left out as bad (<see cref="BadFilePolicy.Skip"/>), with the reason; null when none.</summary>
    public IReadOnlyList<SkippedFile>? SkippedFiles { get; init; }

    /// <summary>The parts committed (a Parquet directory output), with their files and row counts.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public IReadOnlyList<PartRecord>? Parts { get; init; }

    public string ToJson() => System.Text.Json.JsonSerializer.Serialize(this, BatchJsonContext.Default.BatchResult);
}

/// <summary>
/// Scores a source with a model package into a sink: a reader streams the wanted partitions, every
/// core validates and scores slices of them, and a writer puts each partition's rows, in input order,
/// into one atomically committed part. Channels between the stages are bounded, so memory stays flat
/// whatever the input's size.
/// </summary>
public sealed class BatchJob(BatchOptions options)
{
    public BatchStatus Status { get; } = new();

    public async Task<BatchResult> RunAsync(CancellationToken ct = default)
    {
        options.Validate();
        var clock = Stopwatch.StartNew();
        var resolved = options.Resolved ?? await options.Locator.ResolveAsync(options.Model, ct).ConfigureAwait(false);
        var package = options.Scorer?.Package ?? ModelPackage.Load(resolved.PackageDirectory);
        var only = options.Partition;
        var source = BatchSources.Open(options.Input, options.PartitionRows, only);
        await using var sourceScope = source.ConfigureAwait(false);
        var skipped = new List<SkippedFile>();
        var schemas = SchemaCheck.Screen(package.Signature, await source.InspectAsync(ct).ConfigureAwait(false), options.Keep, options.OnBadFile, skipped);
        if (skipped.Count > 0) ((FileSource)source).Skip(skipped.Select(s => s.File)); // only files can be bad one by one
        var plan = SchemaCheck.Check(package.Signature, schemas, options.Keep, source.Untyped, options.OnBadRow);

        using var opened = options.Scorer is null ? Scorers.Open(package) : null;
        var scorer = options.Scorer ?? opened!;
        var sink = BatchSinks.Open(options.Output, options.Key, partitionOnly: only is not null);
        await using var sinkScope = sink.ConfigureAwait(false);
        var job = new JobIdentity(options.Model, package.Name, resolved.RegistryVersion?.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ModelPackage.Sha256OfFile(Path.Combine(package.Directory, PackageManifest.FileName)),
            source.Uri, await source.FingerprintAsync(ct).ConfigureAwait(false), options.Shard, skipped);
        var done = await sink.OpenAsync(job, plan.Output, options.Resume, ct).ConfigureAwait(false);
        var shard = options.Shard;
        bool Wanted(PartitionId p) => only is not null ? p == only.Id : shard.Owns(p) && !done.Contains(p);
        Status.PartsResumed = done.Count(shard.Owns);
        Status.RowsTotal = await source.CountRowsAsync(Wanted, ct).ConfigureAwait(false);
        var rejectsDirectory = options.RejectsDirectory ?? sink.DefaultRejectsDirectory;
        Status.Scoring = true;

        var pipeline = new Pipeline(options, plan, scorer, new RowValidator(package.Signature, options.OnBadRow), sink, rejectsDirectory, Status);
        var (parts, rows, rejected, unseen) = await pipeline.RunAsync(source, Wanted, ct).ConfigureAwait(false);
        await sink.FinishAsync(complete: true, ct).ConfigureAwait(false);
        return new BatchResult
        {
            Output = sink.Uri,
            Model = package.Name,
            Shard = shard.ToString(),
            Rows = rows,
            Rejected = rejected,
            UnseenCategories = unseen,
            PartsWritten = parts,
            PartsResumed = Status.PartsResumed,
            Seconds = Math.Round(clock.Elapsed.TotalSeconds, 3),
            RejectsDirectory = rejected > 0 ? sink.RejectsLocation(rejectsDirectory) : null,
            SkippedFiles = skipped.Count > 0 ? skipped : null,
            Parts = sink switch { ParquetDirectorySink directory => directory.Committed, S3ParquetSink s3 => s3.Committed, _ => null },
        };
    }

    /// <summary>A slice of a chunk to validate and score, and (once done) its output.</summary>
    private sealed class WorkItem(SourceChunk chunk, int start, int count, bool last)
    {
        public SourceChunk Chunk { get; } = chunk;

        public int Start { get; } = start;

        public int Count { get; } = count;

        /// <summary>The last slice of its partition.</summary>
        public bool Last { get; } = last;

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public DataTable? Output { get; set; }

        public ValidatedRows? Validated { get; set; }
    }

    private sealed class Pipeline(BatchOptions options, ReadPlan plan, IScorer scorer, RowValidator validator, IBatchSink sink,
        string rejectsDirectory, BatchStatus status)
    {
        public async Task<(int Parts, long Rows, long Rejected, long Unseen)> RunAsync(IBatchSource source, Func<PartitionId, bool> wanted, CancellationToken ct)
        {
            var threads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
            var spare = new OutputSpares();
            var work = Channel.CreateBounded<WorkItem>(new BoundedChannelOptions(threads * 2) { SingleWriter = true });
            var ordered = Channel.CreateBounded<WorkItem>(new BoundedChannelOptions(threads * 4) { SingleWriter = true, SingleReader = true });
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var token = cts.Token;
            Exception? failure = null;

            async Task Guard(Func<Task> body)
            {
                try { await body().ConfigureAwait(false); }
                catch (Exception e)
                {
                    lock (cts)
                    {
                        // Keep the first real error; a cancellation it caused elsewhere must not hide it.
                        if (failure is null || (failure is OperationCanceledException && e is not OperationCanceledException)) failure = e;
                    }
                    await cts.CancelAsync().ConfigureAwait(false);
                }
            }

            var reader = Guard(async () =>
            {
                try
                {
                    await foreach (var chunk in source.ReadAsync(plan.Requests, wanted, options.BatchRows, token).ConfigureAwait(false))
                    {
                        var rows = chunk.Table.RowCount;
                        var start = 0;
                        do
                        {
                            var count = Math.Min(options.BatchRows, rows - start);
                            var item = new WorkItem(chunk, start, count, chunk.EndOfPartition && start + count >= rows);
                            await ordered.Writer.WriteAsync(item, token).ConfigureAwait(false);
                            await work.Writer.WriteAsync(item, token).ConfigureAwait(false);
                            start += count;
                        }
                        while (start < rows);
                    }
                }
                finally
                {
                    work.Writer.TryComplete();
                    ordered.Writer.TryComplete();
                }
            });

            var workers = new Task[threads];
            for (var w = 0; w < threads; w++)
            {
                workers[w] = Guard(() => Task.Run(async () =>
                {
                    // This worker's predictions, reused slice after slice (the output columns are copied out of it).
                    Prediction[] predictions = [];
                    while (await work.Reader.WaitToReadAsync(token).ConfigureAwait(false))
                    {
                        while (work.Reader.TryRead(out var item))
                        {
                            try
                            {
                                Process(item, ref predictions, spare);
                                item.Done.TrySetResult();
                            }
                            catch (Exception e)
                            {
                                item.Done.TrySetException(e);
                                throw;
                            }
                        }
                    }
                }, token));
            }

            var parts = 0;
            long rowsWritten = 0, rejectedTotal = 0, unseenTotal = 0;
            var writer = Guard(async () =>
            {
                IPartWriter? part = null;
                PartitionId current = default;
                long partRows = 0, partRejected = 0, partUnseen = 0, firstRow = 0;
                List<RejectedRow> rejects = [];
                try
                {
                    await foreach (var item in ordered.Reader.ReadAllAsync(token).ConfigureAwait(false))
                    {
                        await item.Done.Task.WaitAsync(token).ConfigureAwait(false);
                        if (part is null)
                        {
                            current = item.Chunk.Partition;
                            part = await sink.BeginPartAsync(current, token).ConfigureAwait(false);
                            partRows = partRejected = partUnseen = 0;
                            firstRow = item.Chunk.FirstRow + item.Start;
                            rejects = [];
                        }
                        else if (item.Chunk.Partition != current)
                        {
                            throw new InvalidOperationException($"partition {current} ended without its last chunk");
                        }
                        var v = item.Validated!;
                        await part.WriteAsync(item.Output!, token).ConfigureAwait(false);
                        var rejected = v.Rejects?.Count ?? 0;
                        if (v.Rejects is not null) rejects.AddRange(v.Rejects);
                        partRows += v.Count;
                        partRejected += rejected;
                        partUnseen += v.UnseenCategories;
                        status.AddRows(item.Count, rejected);
                        // Written (the sinks copy a slice before WriteAsync returns): its new arrays go back for the next
                        // slices and, after the chunk's last slice (slices are written in order), the chunk's to its source.
                        spare.Return(item.Output!, plan.Keep.Count);
                        if (item.Start + item.Count >= item.Chunk.Table.RowCount) item.Chunk.Release?.Invoke();
                        item.Output = null;
                        item.Validated = null;
                        if (!item.Last) continue;

                        await RejectsWriter.WriteAsync(rejectsDirectory, current, plan.Requests, rejects, token).ConfigureAwait(false);
                        await part.CommitAsync(new PartRecord
                        {
                            FileIndex = current.FileIndex,
                            Partition = current.Index,
                            Source = item.Chunk.Source,
                            FirstRow = firstRow,
                            Rows = partRows,
                            Rejected = partRejected,
                            UnseenCategories = partUnseen,
                        }, token).ConfigureAwait(false);
                        await part.DisposeAsync().ConfigureAwait(false);
                        part = null;
                        parts++;
                        rowsWritten += partRows;
                        rejectedTotal += partRejected;
                        unseenTotal += partUnseen;
                        status.PartDone();
                    }
                }
                finally
                {
                    if (part is not null) await part.DisposeAsync().ConfigureAwait(false);
                }
            });

            await Task.WhenAll([reader, writer, .. workers]).ConfigureAwait(false);
            if (failure is not null)
            {
                if (failure is OperationCanceledException && ct.IsCancellationRequested) ct.ThrowIfCancellationRequested();
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
            }
            return (parts, rowsWritten, rejectedTotal, unseenTotal);
        }

        private void Process(WorkItem item, ref Prediction[] buffer, OutputSpares spare)
        {
            var chunk = item.Chunk;
            var v = validator.Check(chunk.Table, item.Start, item.Count, chunk.Source, chunk.FirstRow);
            if (buffer.Length < v.Count) buffer = new Prediction[v.Count];
            var predictions = buffer.AsSpan(0, v.Count);
            if (v.Count > 0) scorer.Score(v.Table, v.Start, predictions);
            item.Output = OutputBuilder.Build(plan, scorer.Package.Signature, v.Table, v.Start, v.Count, predictions, spare);
            item.Validated = v;
        }
    }
}
