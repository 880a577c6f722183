using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Vectors;
using Kiln.Vectors.Embeddings;
using Kiln.Vectors.Filtering;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>kiln vectors: collections in a local vector store directory (the same files kiln server --vectors serves).</summary>
internal static class VectorCommands
{
    private static Option<string> DirOption() => new("--dir")
    {
        Description = "The vector store directory (the one kiln server --vectors serves; not while that server runs)",
        DefaultValueFactory = _ => Path.Combine(".kiln", "vectors"),
    };

    private static readonly Option<string?> Db = new("--db")
    {
        Description = "The metadata database holding the collections' catalog, the one kiln server --db uses (docs/cli.md#locations): "
            + "a directory (kiln.db inside), sqlite:///FILE or postgresql://...; default $KILN_TRACKING_URI, else ./.kiln",
        Recursive = true,
    };

    /// <summary>The store of --dir with its catalog in --db; the store owns the database it opens.</summary>
    private static Task<VectorStore> OpenAsync(ParseResult parse, Option<string> dir, CancellationToken ct)
    {
        var location = parse.GetValue(Db) ?? (Environment.GetEnvironmentVariable("KILN_TRACKING_URI") is { Length: > 0 } env ? env : Kiln.Tracking.TrackingStores.DefaultUri);
        return VectorStore.OpenAsync(parse.GetValue(dir)!, location, ct);
    }

    public static Command Create()
    {
        var command = new Command("vectors", "Vector collections: create, import points, search with filters, inspect, snapshot, export and restore, delete.");
        command.Subcommands.Add(CreateCollection());
        command.Subcommands.Add(Import());
        command.Subcommands.Add(Search());
        command.Subcommands.Add(Info());
        command.Subcommands.Add(Snapshot());
        command.Subcommands.Add(Export());
        command.Subcommands.Add(Restore());
        command.Subcommands.Add(Delete());
        command.Options.Add(Db);
        return command;
    }

    private static Command CreateCollection()
    {
        var name = new Argument<string>("name") { Description = "Collection name" };
        var size = new Option<int>("--size") { Description = "Vector dimension", Required = true };
        var distance = new Option<string>("--distance") { Description = "Cosine, Dot or Euclid", DefaultValueFactory = _ => "Cosine" };
        var datatype = new Option<string>("--datatype") { Description = "How the graph stores components: float32; float16 or bfloat16 (half the memory; bfloat16 is Kiln's extension, fastest on CPUs with AVX-512 BF16)", DefaultValueFactory = _ => "float32" };
        var m = new Option<int>("--m") { Description = "HNSW links per node", DefaultValueFactory = _ => 16 };
        var efConstruct = new Option<int>("--ef-construct") { Description = "HNSW candidate list size while building", DefaultValueFactory = _ => 100 };
        var noFsync = new Option<bool>("--no-fsync") { Description = "Acknowledge writes before the write-ahead log reaches the disk (faster; a machine crash may lose the last writes)" };
        var dir = DirOption();
        var command = new Command("create", "Create a collection.") { name, size, distance, datatype, m, efConstruct, noFsync, dir };
        command.SetHandler(async (parse, ct) =>
        {
            await using var store = await OpenAsync(parse, dir, ct);
            await store.CreateAsync(parse.GetValue(name)!, new CollectionConfig
            {
                Dimension = parse.GetValue(size),
                Distance = CollectionConfig.ParseDistance(parse.GetValue(distance), "--distance"),
                Datatype = CollectionConfig.ParseDatatype(parse.GetValue(datatype), "--datatype"),
                Hnsw = new HnswParameters(parse.GetValue(m), parse.GetValue(efConstruct)),
                WalFsync = !parse.GetValue(noFsync),
            }, ct);
            Cli.Err.MarkupLineInterpolated($"[green]created[/] {parse.GetValue(name)} in {store.Directory}");
            return 0;
        });
        return command;
    }

    private static Command Import()
    {
        var name = new Argument<string>("name") { Description = "Collection name" };
        var file = new Argument<string>("file") { Description = "JSONL, CSV or Parquet file (in CSV and Parquet the vector column holds a JSON list)" };
        var idColumn = new Option<string>("--id-column") { Description = "Column of point ids (unsigned integers or UUIDs)", DefaultValueFactory = _ => "id" };
        var vectorColumn = new Option<string>("--vector-column") { Description = "Column of vectors (lists of numbers)", DefaultValueFactory = _ => "vector" };
        var payload = new Option<string?>("--payload") { Description = "Comma-separated payload columns (default: every other column)" };
        var embed = new Option<string?>("--embed")
        {
            Description = $"Embed this text column with {TextEmbedder.ModelName} (shipped with Kiln, {TextEmbedder.Dimension} dimensions) instead of reading a vector column; the text stays in the payload",
        };
        var batch = new Option<int>("--batch") { Description = "Points per logged write", DefaultValueFactory = _ => 1000 };
        var dir = DirOption();
        var command = new Command("import", "Insert or replace points read from a file, with a progress bar.") { name, file, idColumn, vectorColumn, embed, payload, batch, dir };
        command.SetHandler(async (parse, ct) =>
        {
            if (parse.GetValue(batch) < 1) throw new KilnException($"--batch must be at least 1; got {parse.GetValue(batch)}");
            await using var store = await OpenAsync(parse, dir, ct);
            var collection = store.Get(parse.GetValue(name)!);
            var path = parse.GetValue(file)!;
            var options = new ImportOptions
            {
                IdColumn = parse.GetValue(idColumn)!,
                VectorColumn = parse.GetValue(vectorColumn)!,
                PayloadColumns = parse.GetValue(payload)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                BatchSize = parse.GetValue(batch),
                EmbedColumn = parse.GetValue(embed),
            };
            if (options.EmbedColumn is { Length: 0 }) throw new KilnException("--embed: name the text column to embed");
            if (options.EmbedColumn is not null && parse.GetResult(vectorColumn) is { Implicit: false }) throw new KilnException("--embed and --vector-column: give one (the vectors are read or embedded, not both)");
            var started = DateTime.UtcNow;
            long rows = 0;
            if (!Console.IsErrorRedirected)
            {
                var total = new FileInfo(path).Exists ? new FileInfo(path).Length : 0;
                await Cli.Err.Progress().AutoClear(false)
                    .Columns(new TaskDescriptionColumn(), new SpinnerColumn(), new ElapsedTimeColumn())
                    .StartAsync(async ctx =>
                    {
                        var task = ctx.AddTask("importing");
                        task.IsIndeterminate = true;
                        var progress = new Progress<long>(n => task.Description = $"{n:N0} points, {n / Math.Max(0.001, (DateTime.UtcNow - started).TotalSeconds):N0}/s");
                        rows = await VectorImport.ImportAsync(collection, path, options, progress, ct);
                        task.StopTask();
                    });
            }
            else
            {
                var last = DateTime.UtcNow;
                var progress = new Progress<long>(n =>
                {
                    if ((DateTime.UtcNow - last).TotalSeconds < 5) return;
                    last = DateTime.UtcNow;
                    Console.Error.WriteLine($"{n:N0} points");
                });
                rows = await VectorImport.ImportAsync(collection, path, options, progress, ct);
            }
            Cli.Err.MarkupLineInterpolated($"[green]imported[/] {rows:N0} points into {collection.Name} in {(DateTime.UtcNow - started).TotalSeconds:0.0} s ({collection.Count:N0} in the collection)");
            return 0;
        });
        return command;
    }

    private static Command Search()
    {
        var name = new Argument<string>("name") { Description = "Collection name" };
        var vector = new Option<string?>("--vector") { Description = "The query vector as a JSON list, e.g. \"[0.2, 0.1, 0.9, 0.7]\"" };
        var text = new Option<string?>("--text") { Description = $"Query text, embedded with {TextEmbedder.ModelName} (for collections imported with --embed)" };
        var limit = new Option<int>("--limit") { Description = "Number of results", DefaultValueFactory = _ => 10 };
        var filter = new Option<string?>("--filter") { Description = "A Qdrant filter as JSON, e.g. '{\"must\":[{\"key\":\"city\",\"match\":{\"value\":\"London\"}}]}'" };
        var exact = new Option<bool>("--exact") { Description = "Scan every vector instead of walking the graph" };
        var json = Cli.JsonOption("the results");
        var dir = DirOption();
        var command = new Command("search", "Search a collection for the nearest points to a vector or to a text's embedding.") { name, vector, text, limit, filter, exact, json, dir };
        command.SetHandler(async (parse, ct) =>
        {
            await using var store = await OpenAsync(parse, dir, ct);
            var collection = store.Get(parse.GetValue(name)!);
            if ((parse.GetValue(vector) is null) == (parse.GetValue(text) is null)) throw new KilnException("--vector or --text: give one of them");
            float[] query;
            if (parse.GetValue(text) is { } queryText)
            {
                if (string.IsNullOrWhiteSpace(queryText)) throw new KilnException("--text: no text to embed");
                if (collection.Config.Dimension != TextEmbedder.Dimension)
                    throw new KilnException($"--text: collection '{collection.Name}' has vectors of size {collection.Config.Dimension}, but {TextEmbedder.ModelName} embeds text in {TextEmbedder.Dimension} dimensions");
                query = TextEmbedder.Shared.Embed(queryText, ct);
            }
            else
            {
                try
                {
                    query = (JsonNode.Parse(parse.GetValue(vector)!) as JsonArray ?? throw new KilnException("--vector: a JSON list of numbers"))
                        .Select(x => x is JsonValue v && v.TryGetValue<double>(out var d) ? (float)d : throw new KilnException("--vector: a JSON list of numbers")).ToArray();
                }
                catch (System.Text.Json.JsonException e)
                {
                    throw new KilnException($"--vector: not JSON ({e.Message})");
                }
            }
            PointFilter? parsedFilter;
            try
            {
                parsedFilter = parse.GetValue(filter) is { } f ? PointFilter.Parse(JsonNode.Parse(f), "--filter") : null;
            }
            catch (System.Text.Json.JsonException e)
            {
                throw new KilnException($"--filter: not JSON ({e.Message})");
            }
            var hits = collection.Search(new SearchRequest(query, parse.GetValue(limit)) { Filter = parsedFilter, Exact = parse.GetValue(exact) }, parse.GetValue(text) is null ? "--vector" : "--text");
            if (parse.GetValue(json))
            {
                var array = new JsonArray([.. hits.Select(h => (JsonNode)new JsonObject { ["id"] = h.Point.Id.ToJson(), ["score"] = h.Score, ["payload"] = h.Point.Payload?.DeepClone() })]);
                Console.Out.WriteLine(array.ToJsonString());
                return 0;
            }
            var table = new Table().AddColumns("id", "score", "payload");
            foreach (var h in hits) table.AddRow(Markup.Escape(h.Point.Id.ToString()), h.Score.ToString("0.0000", CultureInfo.InvariantCulture), Markup.Escape(h.Point.Payload?.ToJsonString() ?? ""));
            Cli.Out.Write(table);
            return 0;
        });
        return command;
    }

    private static Command Info()
    {
        var name = new Argument<string?>("name") { Description = "Collection name (omit to list the collections)", Arity = ArgumentArity.ZeroOrOne };
        var json = Cli.JsonOption("the collection's configuration and counts");
        var dir = DirOption();
        var command = new Command("info", "Show a collection's configuration and counts, or list the collections.") { name, json, dir };
        command.SetHandler(async (parse, ct) =>
        {
            await using var store = await OpenAsync(parse, dir, ct);
            var names = parse.GetValue(name) is { } n ? [n] : store.Names;
            var result = new JsonArray();
            var table = new Table().AddColumns("name", "points", "deleted slots", "size", "distance", "datatype", "payload indexes");
            foreach (var each in names)
            {
                var c = store.Get(each);
                var o = c.Config.ToJson();
                o["name"] = each;
                o["points_count"] = c.Count;
                o["deleted_slots"] = c.DeletedSlots;
                result.Add(o);
                table.AddRow(Markup.Escape(each), c.Count.ToString("N0", CultureInfo.InvariantCulture), c.DeletedSlots.ToString("N0", CultureInfo.InvariantCulture),
                    c.Config.Dimension.ToString(CultureInfo.InvariantCulture), c.Config.Distance.ToString(), o["datatype"]!.GetValue<string>(),
                    Markup.Escape(string.Join(", ", c.Config.PayloadIndexes.Select(p => $"{p.Key}:{p.Value.ToString().ToLowerInvariant()}"))));
            }
            if (parse.GetValue(json)) Console.Out.WriteLine(parse.GetValue(name) is null ? result.ToJsonString() : result[0]!.ToJsonString());
            else Cli.Out.Write(table);
            return 0;
        });
        return command;
    }

    private static Command Snapshot()
    {
        var name = new Argument<string>("name") { Description = "Collection name" };
        var compact = new Option<bool>("--compact") { Description = "Rebuild the graph without the slots of deleted points first" };
        var dir = DirOption();
        var command = new Command("snapshot", "Write the collection's graph and points to a snapshot and drop the log it covers.") { name, compact, dir };
        command.SetHandler(async (parse, ct) =>
        {
            await using var store = await OpenAsync(parse, dir, ct);
            var c = store.Get(parse.GetValue(name)!);
            if (parse.GetValue(compact)) c.Compact();
            else c.Snapshot();
            Cli.Err.MarkupLineInterpolated($"[green]snapshot[/] of {c.Name}: {c.Count:N0} points");
            return 0;
        });
        return command;
    }

    private static Command Export()
    {
        var name = new Argument<string>("name") { Description = "Collection name" };
        var file = new Argument<string>("file") { Description = "The file to write (a zip of the configuration, the graph and the points)" };
        var dir = DirOption();
        var command = new Command("export", "Write a collection to one file that kiln vectors restore (or PUT /collections/NAME/restore) reads.") { name, file, dir };
        command.SetHandler(async (parse, ct) =>
        {
            await using var store = await OpenAsync(parse, dir, ct);
            var c = store.Get(parse.GetValue(name)!);
            var path = Path.GetFullPath(parse.GetValue(file)!);
            // Written beside the target and renamed, so a failed export leaves no half-written file.
            var tmp = path + ".tmp";
            try
            {
                using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write)) c.Export(f);
                File.Move(tmp, path, overwrite: true);
            }
            finally
            {
                if (File.Exists(tmp)) File.Delete(tmp);
            }
            Cli.Err.MarkupLineInterpolated($"[green]exported[/] {c.Name}: {c.Count:N0} points to {path} ({new FileInfo(path).Length / 1048576.0:0.0} MiB)");
            return 0;
        });
        return command;
    }

    private static Command Restore()
    {
        var name = new Argument<string>("name") { Description = "Name of the new collection" };
        var file = new Argument<string>("file") { Description = "A file written by kiln vectors export (or GET /collections/NAME/export)" };
        var dir = DirOption();
        var command = new Command("restore", "Make a new collection from an exported file.") { name, file, dir };
        command.SetHandler(async (parse, ct) =>
        {
            var path = parse.GetValue(file)!;
            if (!File.Exists(path)) throw new KilnException($"{path}: no such file");
            await using var store = await OpenAsync(parse, dir, ct);
            await using var f = File.OpenRead(path);
            var c = await store.RestoreAsync(parse.GetValue(name)!, f, path, ct);
            Cli.Err.MarkupLineInterpolated($"[green]restored[/] {c.Name}: {c.Count:N0} points from {path}");
            return 0;
        });
        return command;
    }

    private static Command Delete()
    {
        var name = new Argument<string>("name") { Description = "Collection name" };
        var dir = DirOption();
        var command = new Command("delete", "Delete a collection and its files.") { name, dir };
        command.SetHandler(async (parse, ct) =>
        {
            await using var store = await OpenAsync(parse, dir, ct);
            if (!await store.DeleteAsync(parse.GetValue(name)!, ct)) throw new KilnException($"collection '{parse.GetValue(name)}' does not exist in {store.Directory}");
            Cli.Err.MarkupLineInterpolated($"[green]deleted[/] {parse.GetValue(name)}");
            return 0;
        });
        return command;
    }
}
