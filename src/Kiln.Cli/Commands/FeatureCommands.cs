using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Kiln.Core;
using Kiln.Features.Definitions;
using Kiln.Features.Offline;
using Kiln.Features.Online;
using Kiln.Features.Registry;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln features ...</c>: plan, apply and list definitions, build training sets, materialize the online store.</summary>
internal static class FeatureCommands
{
    private static readonly Option<string> _registry = new("--feature-registry")
    {
        Description = "Metadata store holding applied definitions (docs/cli.md#locations): a SQLite path or directory, sqlite:///FILE, a postgresql:// URI, or a kiln server http(s)://HOST:PORT (default $KILN_FEATURE_REGISTRY, else .kiln/kiln.db)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("KILN_FEATURE_REGISTRY") ?? ".kiln/kiln.db",
        Recursive = true,
    };

    // The name before train, serve and server settled on --feature-registry; still read, with a warning.
    private static readonly Option<string?> _oldRegistry = new("--registry") { Hidden = true, Recursive = true };

    private static readonly Option<string> _onlineStore = new("--online-store")
    {
        Description = "Online store: a SQLite path or redis://host:port",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("KILN_ONLINE_STORE") ?? OnlineStores.DefaultPath,
    };

    public static Command Create()
    {
        var features = new Command("features", "Feature store: definitions, point-in-time training sets, online store.");
        features.Options.Add(_registry);
        features.Options.Add(_oldRegistry);
        features.Subcommands.Add(Plan());
        features.Subcommands.Add(Apply());
        features.Subcommands.Add(List());
        features.Subcommands.Add(GetHistorical());
        features.Subcommands.Add(Materialize());
        features.Subcommands.Add(MaterializeIncremental());
        return features;
    }

    /// <summary>--feature-registry, or the old --registry with a warning.</summary>
    private static string Registry(ParseResult parse)
    {
        if (parse.GetValue(_oldRegistry) is not { } old) return parse.GetValue(_registry)!;
        if (parse.GetResult(_registry) is { Implicit: false }) throw new KilnException("give --feature-registry only (--registry is its old name)");
        Cli.WarnRenamed("--registry", "--feature-registry");
        return old;
    }

    private static Argument<string> RepoArgument() => new("REPO") { Description = "Feature repository: a folder of YAML files" };

    private static async Task<FeatureRepository> LoadAndValidate(string path, CancellationToken ct)
    {
        var repo = RepositoryLoader.Load(path);
        await RepositoryValidator.ValidateAsync(repo, ct);
        return repo;
    }

    private static Command Plan()
    {
        var repoArg = RepoArgument();
        var json = new Option<bool>("--json") { Description = "Print the plan as JSON on stdout" };
        var command = new Command("plan", "Show what apply would record: definitions added, changed, removed.") { repoArg, json };
        command.SetHandler(async (parse, ct) =>
        {
            var repo = await LoadAndValidate(parse.GetValue(repoArg)!, ct);
            await using var registry = await FeatureRegistry.OpenAsync(Registry(parse), ct);
            var plan = await registry.PlanAsync(repo, ct);
            PrintPlan(plan);
            if (parse.GetValue(json)) Console.WriteLine(PlanJson(plan));
            return 0;
        });
        return command;
    }

    private static Command Apply()
    {
        var repoArg = RepoArgument();
        var command = new Command("apply", "Validate the repository against its data and record it as a new version.") { repoArg };
        command.SetHandler(async (parse, ct) =>
        {
            var path = parse.GetValue(repoArg)!;
            var repo = await LoadAndValidate(path, ct);
            await using var registry = await FeatureRegistry.OpenAsync(Registry(parse), ct);
            var (version, plan) = await registry.ApplyAsync(repo, path, ct);
            PrintPlan(plan);
            Cli.Err.MarkupLine(plan.HasChanges
                ? $"applied project [bold]{Markup.Escape(repo.Project)}[/] as version [bold]{version}[/]"
                : $"no changes; project [bold]{Markup.Escape(repo.Project)}[/] stays at version {version}");
            Console.WriteLine(version.ToString(CultureInfo.InvariantCulture));
            return 0;
        });
        return command;
    }

    private static Command List()
    {
        var project = new Option<string?>("--project") { Description = "Project (default: the most recently applied)" };
        var json = new Option<bool>("--json") { Description = "Print the definitions as JSON on stdout" };
        var command = new Command("list", "List the applied entities, sources, feature views and feature services.") { project, json };
        command.SetHandler(async (parse, ct) =>
        {
            await using var registry = await FeatureRegistry.OpenAsync(Registry(parse), ct);
            var (version, repo) = await registry.RequireLatestAsync(parse.GetValue(project), ct);
            Cli.Err.MarkupLine($"project [bold]{Markup.Escape(repo.Project)}[/] version {version.Version}, applied {version.AppliedAt:u} from {Markup.Escape(version.RepoPath)}");
            var table = new Table().AddColumns("kind", "name", "detail");
            foreach (var e in repo.Entities.Values) table.AddRow("entity", Markup.Escape(e.Name), Markup.Escape($"join keys: {string.Join(", ", e.JoinKeys)}"));
            foreach (var s in repo.Sources.Values) table.AddRow("source", Markup.Escape(s.Name), Markup.Escape($"{s.Format.ToString().ToLowerInvariant()} {s.Path} (time: {s.TimestampField})"));
            foreach (var s in repo.PushSources.Values) table.AddRow("push source", Markup.Escape(s.Name), Markup.Escape($"batch source: {s.BatchSource}"));
            foreach (var v in repo.FeatureViews.Values)
            {
                table.AddRow("feature view", Markup.Escape(v.Name), Markup.Escape(
                    $"entities: {string.Join(", ", v.Entities)}; ttl {Duration.Format(v.Ttl)}; {(v.Online ? "online" : "offline only")}; " +
                    string.Join(", ", v.Schema.Select(f => $"{f.Name}:{f.Dtype.Name()}"))));
            }
            foreach (var s in repo.FeatureServices.Values) table.AddRow("feature service", Markup.Escape(s.Name), Markup.Escape(string.Join(", ", s.Features)));
            Cli.Err.Write(table);
            if (parse.GetValue(json))
            {
                using var doc = new MemoryStream();
                using (var w = new Utf8JsonWriter(doc, new JsonWriterOptions { Indented = true }))
                {
                    w.WriteStartObject();
                    w.WriteString("project", repo.Project);
                    w.WriteNumber("version", version.Version);
                    w.WriteStartArray("feature_views");
                    foreach (var v in repo.FeatureViews.Values)
                    {
                        w.WriteStartObject();
                        w.WriteString("name", v.Name);
                        w.WriteStartArray("features");
                        foreach (var f in v.Schema) w.WriteStringValue(f.Name);
                        w.WriteEndArray();
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteStartArray("feature_services");
                    foreach (var s in repo.FeatureServices.Values) w.WriteStringValue(s.Name);
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                Console.WriteLine(System.Text.Encoding.UTF8.GetString(doc.ToArray()));
            }
            return 0;
        });
        return command;
    }

    private static Command GetHistorical()
    {
        var entities = new Option<string>("--entities") { Description = "Entity table (join keys + event timestamp), .parquet or .csv", Required = true };
        var featureList = new Option<string?>("--features") { Description = "Features: view:feature,view:feature,... (a bare view name means all its features)" };
        var service = new Option<string?>("--service") { Description = "A feature service instead of --features" };
        var output = new Option<string>("--out") { Description = "Output file, .parquet or .csv", Required = true };
        var fullNames = new Option<bool>("--full-names") { Description = "Name feature columns view__feature" };
        var repoOption = new Option<string?>("--repo") { Description = "Read definitions from this YAML repository instead of the registry" };
        var project = new Option<string?>("--project") { Description = "Project in the registry (default: the most recently applied)" };
        var tsColumn = new Option<string>("--timestamp-column") { Description = "The entity table's event time column", DefaultValueFactory = _ => "event_timestamp" };
        var command = new Command("get-historical", "Build a point-in-time correct training set: the entity rows with features as of each row's time.")
        {
            entities, featureList, service, output, fullNames, repoOption, project, tsColumn,
        };
        command.SetHandler(async (parse, ct) =>
        {
            var features = parse.GetValue(featureList);
            var serviceName = parse.GetValue(service);
            if ((features is null) == (serviceName is null)) throw new KilnException("give either --features or --service");
            FeatureRepository repo;
            if (parse.GetValue(repoOption) is { } repoPath)
            {
                repo = RepositoryLoader.Load(repoPath);
            }
            else
            {
                await using var registry = await FeatureRegistry.OpenAsync(Registry(parse), ct);
                repo = (await registry.RequireLatestAsync(parse.GetValue(project), ct)).Repository;
            }
            var refs = serviceName is not null ? repo.ServiceFeatures(serviceName) : repo.ResolveFeatures(features!.Split(','), "--features");
            var outPath = parse.GetValue(output)!;
            var started = DateTime.UtcNow;
            var rows = await Cli.Err.Status().StartAsync("joining features point-in-time...", _ =>
                HistoricalRetrieval.ToFileAsync(repo, parse.GetValue(entities)!, refs, outPath,
                    new RetrievalOptions { FullNames = parse.GetValue(fullNames), TimestampColumn = parse.GetValue(tsColumn)! }, ct));
            Cli.Err.MarkupLine($"wrote {rows:N0} rows with {refs.Count} features to {Markup.Escape(outPath)} in {(DateTime.UtcNow - started).TotalSeconds:F1}s");
            Console.WriteLine(Path.GetFullPath(outPath));
            return 0;
        });
        return command;
    }

    private static Option<string?> ViewsOption() => new("--views") { Description = "Only these feature views (comma-separated); default all online views" };

    private static DateTime ParseTime(string text, string option)
    {
        if (text.Equals("now", StringComparison.OrdinalIgnoreCase)) return DateTime.UtcNow;
        return DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var t)
            ? t
            : throw new KilnException($"{option}: '{text}' is not a time (ISO 8601, e.g. 2024-05-01T00:00:00Z, or now)");
    }

    private static Command Materialize()
    {
        var repoArg = RepoArgument();
        var start = new Option<string>("--start") { Description = "Start of the event time window (ISO 8601)", Required = true };
        var end = new Option<string>("--end") { Description = "End of the event time window (ISO 8601 or now)", Required = true };
        var views = ViewsOption();
        var json = MaterializeJsonOption();
        var command = new Command("materialize", "Load the latest value per entity with event time in [start, end] into the online store.")
        {
            repoArg, start, end, views, _onlineStore, json,
        };
        command.SetHandler(async (parse, ct) =>
        {
            var repo = await LoadAndValidate(parse.GetValue(repoArg)!, ct);
            await using var registry = await FeatureRegistry.OpenAsync(Registry(parse), ct);
            await using var store = await OnlineStores.OpenAsync(parse.GetValue(_onlineStore), ct);
            var results = await Materializer.MaterializeAsync(repo, store, registry, SplitViews(parse.GetValue(views)),
                ParseTime(parse.GetValue(start)!, "--start"), ParseTime(parse.GetValue(end)!, "--end"), new Progress(), ct);
            if (parse.GetValue(json)) Console.WriteLine(MaterializeJson(results));
            return 0;
        });
        return command;
    }

    private static Command MaterializeIncremental()
    {
        var repoArg = RepoArgument();
        var end = new Option<string>("--end") { Description = "End of the window (ISO 8601 or now); each view starts where it last ended", Required = true };
        var views = ViewsOption();
        var json = MaterializeJsonOption();
        var command = new Command("materialize-incremental", "Materialize each online view from where its last materialization ended up to --end.")
        {
            repoArg, end, views, _onlineStore, json,
        };
        command.SetHandler(async (parse, ct) =>
        {
            var repo = await LoadAndValidate(parse.GetValue(repoArg)!, ct);
            await using var registry = await FeatureRegistry.OpenAsync(Registry(parse), ct);
            await using var store = await OnlineStores.OpenAsync(parse.GetValue(_onlineStore), ct);
            var results = await Materializer.MaterializeIncrementalAsync(repo, store, registry, SplitViews(parse.GetValue(views)),
                ParseTime(parse.GetValue(end)!, "--end"), new Progress(), ct);
            if (parse.GetValue(json)) Console.WriteLine(MaterializeJson(results));
            return 0;
        });
        return command;
    }

    private static string[]? SplitViews(string? views) =>
        views?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static Option<bool> MaterializeJsonOption() => Cli.JsonOption("one object per view (view, start, end, entities, written)");

    // The progress lines on stderr already name each view with its window and counts: the human output.
    private static string MaterializeJson(IReadOnlyList<MaterializeResult> results)
    {
        using var doc = new MemoryStream();
        using (var w = new Utf8JsonWriter(doc, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartArray();
            foreach (var r in results)
            {
                w.WriteStartObject();
                w.WriteString("view", r.View);
                w.WriteString("start", r.Start.ToString("O", CultureInfo.InvariantCulture));
                w.WriteString("end", r.End.ToString("O", CultureInfo.InvariantCulture));
                w.WriteNumber("entities", r.Rows);
                w.WriteNumber("written", r.Written);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(doc.ToArray());
    }

    private sealed class Progress : IProgress<string>
    {
        public void Report(string value) => Cli.Err.MarkupLine(Markup.Escape(value));
    }

    private static void PrintPlan(RepositoryPlan plan)
    {
        Cli.Err.MarkupLine($"project [bold]{Markup.Escape(plan.Project)}[/], recorded version: {(plan.CurrentVersion?.ToString(CultureInfo.InvariantCulture) ?? "none")}");
        var table = new Table().AddColumns("change", "kind", "name", "detail");
        foreach (var c in plan.Changes)
        {
            var change = c.Change switch
            {
                ChangeType.Added => "[green]+ add[/]",
                ChangeType.Changed => "[yellow]~ change[/]",
                ChangeType.Removed => "[red]- remove[/]",
                _ => "  same",
            };
            table.AddRow(change, c.Kind, Markup.Escape(c.Name), Markup.Escape(c.Detail ?? ""));
        }
        Cli.Err.Write(table);
        if (!plan.HasChanges) Cli.Err.MarkupLine("no changes");
    }

    private static string PlanJson(RepositoryPlan plan)
    {
        using var doc = new MemoryStream();
        using (var w = new Utf8JsonWriter(doc))
        {
            w.WriteStartObject();
            w.WriteString("project", plan.Project);
            if (plan.CurrentVersion is { } v) w.WriteNumber("current_version", v);
            else w.WriteNull("current_version");
            w.WriteStartArray("changes");
            foreach (var c in plan.Changes)
            {
                w.WriteStartObject();
                w.WriteString("kind", c.Kind);
                w.WriteString("name", c.Name);
                w.WriteString("change", c.Change.ToString().ToLowerInvariant());
                if (c.Detail is not null) w.WriteString("detail", c.Detail);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(doc.ToArray());
    }
}
