using System.CommandLine;
using Kiln.Batch;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Tracking;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>kiln batch: score files or tables in bulk with a model package.</summary>
internal static class BatchCommands
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "The model: a package directory, models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH (through the registry at $KILN_TRACKING_URI, default ./.kiln).", Required = true };
        var input = new Option<string>("--input", "-i") { Description = "CSV/Parquet file, directory or glob; sqlite:///path.db?table=T|query=...; postgresql://user@host:port/db?table=T[&key=COL]|query=...", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "A directory for Parquet parts, s3://BUCKET/PREFIX (the standard AWS settings; docs/batch.md), or sqlite:///path.db?table=T / postgresql://...?table=T.", Required = true };
        var keep = new Option<string[]>("--keep") { Description = "Input columns to copy to the output (comma-separated or repeated), e.g. ids.", AllowMultipleArgumentsPerToken = true };
        var key = new Option<string?>("--key") { Description = "For a table output: upsert by this --keep column." };
        var shard = new Option<string>("--shard") { Description = "Score only shard i of N (i/N): partitions whose (file index + partition index) mod N = i.", DefaultValueFactory = _ => "0/1" };
        var onBadRow = new Option<string>("--on-bad-row") { Description = "fail: stop at the first bad row; skip: write it with the reason to _rejects/ and go on.", DefaultValueFactory = _ => "fail" };
        onBadRow.AcceptOnlyFromAmong("fail", "skip");
        var onBadFile = new Option<string>("--on-bad-file") { Description = "fail: stop before scoring when an input file cannot be read or lacks the model's columns; skip: leave it out, list it (stderr, --json, _manifest.json) and score the rest.", DefaultValueFactory = _ => "fail" };
        onBadFile.AcceptOnlyFromAmong("fail", "skip");
        var resume = new Option<bool>("--resume") { Description = "Finish an interrupted job: score only the parts the output lacks." };
        var batchRows = new Option<int>("--batch-rows") { Description = "Rows per scoring slice and output row group.", DefaultValueFactory = _ => 65_536 };
        var partitionRows = new Option<int>("--partition-rows") { Description = "Rows per partition of a CSV file, table or query (a Parquet row group is one partition).", DefaultValueFactory = _ => 1_000_000 };
        var threads = new Option<int>("--threads") { Description = "Scoring threads (0: one per core).", DefaultValueFactory = _ => 0 };
        var rejects = new Option<string?>("--rejects") { Description = "Directory for rejected rows (default: OUTPUT/_rejects, or ./_rejects/TABLE for a table)." };
        var json = new Option<bool>("--json") { Description = "Print the summary as JSON on stdout." };
        var distributed = new Option<bool>("--distributed") { Description = "Plan the input into partitions and run them on kiln worker processes through Kiln's PostgreSQL (--db); the exit status is the job's." };
        var db = new Option<string?>("--db") { Description = "With --distributed: Kiln's PostgreSQL database (postgresql://…) the workers serve." };
        var partitions = new Option<int?>("--partitions") { Description = "With --distributed: partitions for the CSV input (byte ranges at line starts; default one per 32 MiB). A Parquet file's partitions are its row groups." };

        var command = new Command("batch", "Score a CSV/Parquet/SQL input with a model package into Parquet parts or a table; resumable and shardable.");
        foreach (var o in new Option[] { model, input, output, keep, key, shard, onBadRow, onBadFile, resume, batchRows, partitionRows, threads, rejects, json, distributed, db, partitions })
            command.Options.Add(o);

        command.SetHandler(async (parse, ct) =>
        {
            var modelUri = parse.GetValue(model)!;
            // Only a registry URI opens the tracking store ($KILN_TRACKING_URI, default ./.kiln): a package directory needs none.
            await using var stores = DirectoryModelLocator.IsRegistryUri(modelUri) ? TrackingStores.Open(null) : null;
            var options = new BatchOptions
            {
                Model = modelUri,
                Input = parse.GetValue(input)!,
                Output = parse.GetValue(output)!,
                Keep = [.. (parse.GetValue(keep) ?? []).SelectMany(k => k.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))],
                Key = parse.GetValue(key),
                Shard = ShardSpec.Parse(parse.GetValue(shard)!),
                OnBadRow = parse.GetValue(onBadRow) == "skip" ? BadRowPolicy.Skip : BadRowPolicy.Fail,
                OnBadFile = parse.GetValue(onBadFile) == "skip" ? BadFilePolicy.Skip : BadFilePolicy.Fail,
                Resume = parse.GetValue(resume),
                BatchRows = parse.GetValue(batchRows),
                PartitionRows = parse.GetValue(partitionRows),
                Threads = parse.GetValue(threads),
                RejectsDirectory = parse.GetValue(rejects),
                Locator = stores is null ? new DirectoryModelLocator() : new RegistryModelLocator(stores),
            };
            if (parse.GetValue(distributed))
            {
                if (parse.GetValue(shard) != "0/1") throw new KilnException("--shard does not apply to --distributed: the workers share the partitions");
                var location = parse.GetValue(db) ?? throw new KilnException("--distributed needs --db postgresql://… (the database the kiln workers serve)");
                return await DistributedBatchCommand.RunAsync(options, location, parse.GetValue(partitions), parse.GetValue(json), ct);
            }
            if (parse.GetValue(db) is not null || parse.GetValue(partitions) is not null)
                throw new KilnException("--db and --partitions apply to --distributed only");
            var job = new BatchJob(options);
            var run = job.RunAsync(ct);
            await ShowProgressAsync(job.Status, run);
            var result = await run;
            WarnSkipped(result.SkippedFiles);
            if (parse.GetValue(json)) Console.Out.WriteLine(result.ToJson());
            Cli.Err.MarkupLineInterpolated(
                $"[green]done[/]: {result.Rows:N0} rows in {result.PartsWritten} parts ({result.PartsResumed} already done) in {result.Seconds:0.0} s -> {result.Output}");
            if (result.Rejected > 0) Cli.Err.MarkupLineInterpolated($"[yellow]{result.Rejected:N0} rows rejected[/]: see {result.RejectsDirectory}");
            if (result.UnseenCategories > 0) Cli.Err.MarkupLineInterpolated($"{result.UnseenCategories:N0} values were categories unseen in training (scored as unknown)");
            return 0;
        });
        return command;
    }

    /// <summary>One warning line per input file left out by --on-bad-file skip.</summary>
    internal static void WarnSkipped(IReadOnlyList<SkippedFile>? skipped)
    {
        foreach (var s in skipped ?? []) Cli.Err.MarkupLineInterpolated($"[yellow]warning[/]: skipped {s.File}: {s.Reason}");
    }

    /// <summary>Rows, rows/s and time left, as a bar on a terminal or a line every few seconds otherwise (logs, CI).</summary>
    private static Task ShowProgressAsync(BatchStatus status, Task run) => ProgressDisplay.ShowAsync(run, "scoring",
        (task, elapsed) =>
        {
            var rows = status.RowsDone;
            task.Description = $"{rows:N0} rows, {ProgressDisplay.Rate(rows, elapsed):N0} rows/s";
            if (status.RowsTotal is { } total)
            {
                task.IsIndeterminate = false;
                task.MaxValue = Math.Max(1, total);
                task.Value = rows;
            }
            else task.IsIndeterminate = true;
        },
        elapsed =>
        {
            if (!status.Scoring) return null;
            var rows = status.RowsDone;
            var rate = ProgressDisplay.Rate(rows, elapsed);
            var line = $"kiln batch: {rows:N0} rows, {status.PartsDone} parts, {rate:N0} rows/s";
            if (status.RowsTotal is { } total && total > 0)
            {
                var eta = rate > 0 ? TimeSpan.FromSeconds((total - rows) / rate) : TimeSpan.Zero;
                line += $", {100.0 * rows / total:0.0}%, ETA {eta:hh\\:mm\\:ss}";
            }
            if (status.Rejected > 0) line += $", {status.Rejected:N0} rejected";
            return line;
        });
}
