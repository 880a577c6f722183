using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Kiln.Core;
using Kiln.Tracking;
using Kiln.Tracking.Mlflow;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>kiln runs … and kiln models …: read runs, manage the registry, move and roll back aliases.</summary>
internal static class TrackingCommands
{
    public static readonly Option<string?> TrackingUri = new("--tracking-uri")
    {
        Description = $"Where runs and models live: a directory (default {TrackingStores.DefaultUri}, or ${TrackingStores.EnvironmentVariable}), "
            + "sqlite:FILE, postgresql://…, or http(s)://host:port of a kiln server",
        Recursive = true,
    };

    private static readonly Option<bool> Json = new("--json") { Description = "Print JSON (MLflow's message shapes) on stdout", Recursive = true };

    private static TrackingStores Open(ParseResult parse) => TrackingStores.Open(parse.GetValue(TrackingUri));

    private static void PrintJson<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info) =>
        Console.Out.WriteLine(JsonSerializer.Serialize(value, info));

    private static string Time(long? ms) => ms is null or 0 ? "" :
        DateTimeOffset.FromUnixTimeMilliseconds(ms.Value).UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

    private static string Num(double v) => v.ToString("G6", CultureInfo.InvariantCulture);

    // ---- runs ----

    public static Command CreateRuns()
    {
        var runs = new Command("runs", "List, show and compare tracked runs.");
        runs.Options.Add(TrackingUri);
        runs.Options.Add(Json);

        var experiment = new Option<string?>("--experiment", "-e") { Description = "Experiment name or id (default: every active experiment)" };
        var filter = new Option<string?>("--filter") { Description = "MLflow filter, e.g. \"metrics.auc > 0.8 AND params.trees = '100'\"" };
        var orderBy = new Option<string[]>("--order-by") { Description = "Order, e.g. \"metrics.auc DESC\" (repeatable)", AllowMultipleArgumentsPerToken = false };
        var max = new Option<int>("--max") { Description = "Most runs to list", DefaultValueFactory = _ => 50 };
        var list = new Command("list", "List runs, newest first, optionally filtered and ordered.") { experiment, filter, orderBy, max };
        list.SetHandler(async (parse, ct) =>
        {
            await using var stores = Open(parse);
            var ids = await ExperimentIdsAsync(stores.Tracking, parse.GetValue(experiment), ct);
            var page = await stores.Tracking.SearchRunsAsync(new RunQuery(ids, parse.GetValue(filter), parse.GetValue(orderBy), parse.GetValue(max)), ct);
            if (parse.GetValue(Json))
            {
                PrintJson(new SearchRunsResponse { Runs = page.Items.Select(r => r.ToDto()).ToList(), NextPageToken = page.NextPageToken }, MlflowJson.Default.SearchRunsResponse);
                return 0;
            }
            var experiments = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var id in page.Items.Select(r => r.Info.ExperimentId).Distinct(StringComparer.Ordinal))
                experiments[id] = await ExperimentLabelAsync(stores.Tracking, id, ct);
            var metricKeys = page.Items.SelectMany(r => r.Data.Metrics.Select(m => m.Key)).Distinct().Order(StringComparer.Ordinal).Take(4).ToList();
            var table = new Table().AddColumns("run id", "name", "experiment", "status", "started");
            foreach (var k in metricKeys) table.AddColumn(Markup.Escape(k));
            foreach (var r in page.Items)
            {
                var cells = new List<string> { r.RunId, Markup.Escape(r.Info.RunName), Markup.Escape(experiments[r.Info.ExperimentId]), r.Info.Status, Time(r.Info.StartTime) };
                cells.AddRange(metricKeys.Select(k => r.Metric(k) is { } v ? Num(v) : ""));
                table.AddRow(cells.ToArray());
            }
            Cli.Err.Write(table);
            Cli.Err.MarkupLine($"{page.Items.Count} run(s){(page.NextPageToken is null ? "" : " (more: raise --max)")}");
            return 0;
        });
        runs.Subcommands.Add(list);

        var runId = new Argument<string>("run-id") { Description = "The run's id" };
        var show = new Command("show", "Show one run: its info, params, latest metrics and tags.") { runId };
        show.SetHandler(async (parse, ct) =>
        {
            await using var stores = Open(parse);
            var run = await stores.Tracking.GetRunAsync(parse.GetValue(runId)!, ct);
            if (parse.GetValue(Json))
            {
                PrintJson(new RunResponse { Run = run.ToDto() }, MlflowJson.Default.RunResponse);
                return 0;
            }
            var info = new Table().AddColumns("field", "value").HideHeaders();
            info.AddRow("run id", run.RunId).AddRow("name", Markup.Escape(run.Info.RunName)).AddRow("experiment", Markup.Escape(await ExperimentLabelAsync(stores.Tracking, run.Info.ExperimentId, ct)))
                .AddRow("status", run.Info.Status).AddRow("started", Time(run.Info.StartTime)).AddRow("ended", Time(run.Info.EndTime))
                .AddRow("user", Markup.Escape(run.Info.UserId)).AddRow("artifacts", Markup.Escape(run.Info.ArtifactUri));
            Cli.Err.Write(info);
            Section("params", run.Data.Params.Select(p => (p.Key, p.Value)));
            Section("metrics", run.Data.Metrics.Select(m => (m.Key, $"{Num(m.Value)} (step {m.Step})")));
            Section("tags", run.Data.Tags.Select(t => (t.Key, t.Value)));
            return 0;
        });
        runs.Subcommands.Add(show);

        var runIds = new Argument<string[]>("run-ids") { Description = "Two or more run ids", Arity = ArgumentArity.OneOrMore };
        var compare = new Command("compare", "Compare runs side by side: params and latest metrics.") { runIds };
        compare.SetHandler(async (parse, ct) =>
        {
            var ids = parse.GetValue(runIds)!;
            if (ids.Length < 2) throw new KilnException("runs compare needs at least two run ids");
            await using var stores = Open(parse);
            var all = new List<Run>();
            foreach (var id in ids) all.Add(await stores.Tracking.GetRunAsync(id, ct));
            if (parse.GetValue(Json))
            {
                PrintJson(new SearchRunsResponse { Runs = all.Select(r => r.ToDto()).ToList() }, MlflowJson.Default.SearchRunsResponse);
                return 0;
            }
            var table = new Table().AddColumn("");
            foreach (var r in all) table.AddColumn(Markup.Escape($"{r.Info.RunName} ({r.RunId[..8]})"));
            foreach (var key in all.SelectMany(r => r.Data.Params.Select(p => p.Key)).Distinct().Order(StringComparer.Ordinal))
            {
                var values = all.Select(r => r.Param(key) ?? "").ToList();
                var differs = values.Distinct().Count() > 1;
                table.AddRow([Markup.Escape("params." + key), .. values.Select(v => differs ? $"[yellow]{Markup.Escape(v)}[/]" : Markup.Escape(v))]);
            }
            foreach (var key in all.SelectMany(r => r.Data.Metrics.Select(m => m.Key)).Distinct().Order(StringComparer.Ordinal))
            {
                var values = all.Select(r => r.Metric(key)).ToList();
                var best = values.Where(v => v is not null).Select(v => v!.Value).DefaultIfEmpty().Max();
                table.AddRow([Markup.Escape("metrics." + key), .. values.Select(v => v is null ? "" : v == best && all.Count > 1 ? $"[bold]{Num(v.Value)}[/]" : Num(v.Value))]);
            }
            Cli.Err.Write(table);
            return 0;
        });
        runs.Subcommands.Add(compare);
        return runs;
    }

    private static void Section(string title, IEnumerable<(string Key, string Value)> rows)
    {
        var table = new Table().AddColumns(title, "value");
        foreach (var (k, v) in rows) table.AddRow(Markup.Escape(k), Markup.Escape(v));
        if (table.Rows.Count > 0) Cli.Err.Write(table);
    }

    /// <summary>"NAME (ID)": the name a user gave, the id that --experiment and the API also take.</summary>
    private static async Task<string> ExperimentLabelAsync(ITrackingStore store, string id, CancellationToken ct)
    {
        var name = (await store.GetExperimentAsync(id, ct)).Name;
        return string.IsNullOrEmpty(name) ? id : $"{name} ({id})";
    }

    private static async Task<List<string>> ExperimentIdsAsync(ITrackingStore store, string? experiment, CancellationToken ct)
    {
        if (experiment is not null)
        {
            var byName = await store.GetExperimentByNameAsync(experiment, ct);
            if (byName is not null) return [byName.ExperimentId];
            if (long.TryParse(experiment, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                return [(await store.GetExperimentAsync(experiment, ct)).ExperimentId];
            throw new KilnException($"no experiment named '{experiment}' (--experiment)");
        }
        var ids = new List<string>();
        string? token = null;
        do
        {
            var page = await store.SearchExperimentsAsync(new ExperimentQuery(PageToken: token), ct);
            ids.AddRange(page.Items.Select(e => e.ExperimentId));
            token = page.NextPageToken;
        }
        while (token is not null);
        return ids;
    }

    // ---- models ----

    public static Command CreateModels()
    {
        var models = new Command("models", "The model registry: models, versions, aliases, their history and rollback.");
        models.Options.Add(TrackingUri);
        models.Options.Add(Json);
        var name = new Argument<string>("name") { Description = "Registered model name" };

        var list = new Command("list", "List registered models.");
        list.SetHandler(async (parse, ct) =>
        {
            await using var stores = Open(parse);
            var all = new List<RegisteredModel>();
            string? token = null;
            do
            {
                var page = await stores.Registry.SearchRegisteredModelsAsync(null, 1000, token, ct);
                all.AddRange(page.Items);
                token = page.NextPageToken;
            }
            while (token is not null);
            if (parse.GetValue(Json))
            {
                PrintJson(new RegisteredModelsResponse { RegisteredModels = all.Select(m => m.ToDto()).ToList() }, MlflowJson.Default.RegisteredModelsResponse);
                return 0;
            }
            var table = new Table().AddColumns("name", "latest version", "aliases", "updated", "description");
            foreach (var m in all)
            {
                table.AddRow(Markup.Escape(m.Name), m.LatestVersions.Count == 0 ? "" : m.LatestVersions.Max(v => v.Version).ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(string.Join(", ", m.Aliases.Select(a => $"{a.Alias}→v{a.Version}"))), Time(m.LastUpdatedTimestamp), Markup.Escape(m.Description ?? ""));
            }
            Cli.Err.Write(table);
            return 0;
        });
        models.Subcommands.Add(list);

        var show = new Command("show", "Show a registered model: description, tags, aliases, latest versions.") { name };
        show.SetHandler(async (parse, ct) =>
        {
            await using var stores = Open(parse);
            var m = await stores.Registry.GetRegisteredModelAsync(parse.GetValue(name)!, ct);
            if (parse.GetValue(Json))
            {
                PrintJson(new RegisteredModelResponse { RegisteredModel = m.ToDto() }, MlflowJson.Default.RegisteredModelResponse);
                return 0;
            }
            Cli.Err.MarkupLine($"[bold]{Markup.Escape(m.Name)}[/] {Markup.Escape(m.Description ?? "")}");
            Section("aliases", m.Aliases.Select(a => (a.Alias, $"version {a.Version}")));
            Section("tags", m.Tags.Select(t => (t.Key, t.Value)));
            Section("latest versions", m.LatestVersions.Select(v => ($"version {v.Version}", $"{v.CurrentStage}, {v.Source}")));
            return 0;
        });
        models.Subcommands.Add(show);

        var versions = new Command("versions", "List a model's versions, newest first.") { name };
        versions.SetHandler(async (parse, ct) =>
        {
            await using var stores = Open(parse);
            var n = parse.GetValue(name)!;
            await stores.Registry.GetRegisteredModelAsync(n, ct);
            var page = await stores.Registry.SearchModelVersionsAsync(n, null, 10000, null, ct);
            if (parse.GetValue(Json))
            {
                PrintJson(new ModelVersionsResponse { ModelVersions = page.Items.Select(v => v.ToDto()).ToList() }, MlflowJson.Default.ModelVersionsResponse);
                return 0;
            }
            var table = new Table().AddColumns("version", "aliases", "stage", "created", "run", "source");
            foreach (var v in page.Items)
            {
                table.AddRow(v.Version.ToString(CultureInfo.InvariantCulture), Markup.Escape(string.Join(", ", v.Aliases)), v.CurrentStage,
                    Time(v.CreationTimestamp), v.RunId ?? "", Markup.Escape(v.Source));
            }
            Cli.Err.Write(table);
            return 0;
        });
        models.Subcommands.Add(versions);

        var aliasOption = new Option<string?>("--alias") { Description = "Only this alias's moves" };
        var history = new Command("history", "The audit history of alias moves: who moved which alias, when, from which version to which.") { name, aliasOption };
        history.SetHandler(async (parse, ct) =>
        {
            await using var stores = Open(parse);
            var events = await stores.Registry.GetAliasHistoryAsync(parse.GetValue(name)!, parse.GetValue(aliasOption), ct);
            if (parse.GetValue(Json))
            {
                PrintJson(new AliasHistoryResponse { Events = events.Select(e => e.ToDto()).ToList() }, MlflowJson.Default.AliasHistoryResponse);
                return 0;
            }
            var table = new Table().AddColumns("when (UTC)", "alias", "action", "from", "to", "by");
            foreach (var e in events)
            {
                table.AddRow(Time(e.Timestamp), Markup.Escape(e.Alias), e.Action, e.FromVersion?.ToString(CultureInfo.InvariantCulture) ?? "-",
                    e.ToVersion?.ToString(CultureInfo.InvariantCulture) ?? "-", Markup.Escape(e.UserId));
            }
            Cli.Err.Write(table);
            return 0;
        });
        models.Subcommands.Add(history);

        var aliasName = new Argument<string>("alias") { Description = "Alias, e.g. production or challenger" };
        var version = new Argument<int>("version") { Description = "Version number the alias should point at" };
        var set = new Command("set", "Point an alias at a version (recorded in the history).") { name, aliasName, version };
        set.SetHandler(async (parse, ct) =>
        {
            await using var stores = Open(parse);
            var (n, a, v) = (parse.GetValue(name)!, parse.GetValue(aliasName)!, parse.GetValue(version));
            await stores.Registry.SetAliasAsync(n, a, v, Environment.UserName, ct);
            Cli.Err.MarkupLine($"{Markup.Escape(n)}@{Markup.Escape(a)} → version {v}");
            Console.Out.WriteLine(v.ToString(CultureInfo.InvariantCulture));
            return 0;
        });
        var delete = new Command("delete", "Remove an alias (recorded in the history; rollback restores it).") { name, aliasName };
        delete.SetHandler(async (parse, ct) =>
        {
            await using var stores = Open(parse);
            await stores.Registry.DeleteAliasAsync(parse.GetValue(name)!, parse.GetValue(aliasName)!, Environment.UserName, ct);
            Cli.Err.MarkupLine($"removed alias {Markup.Escape(parse.GetValue(aliasName)!)}");
            return 0;
        });
        var alias = new Command("alias", "Set or delete a model alias.") { set, delete };
        models.Subcommands.Add(alias);

        var rollback = new Command("rollback", "Move an alias back to the version it held before its last move (no artifact is copied).") { name, aliasName };
        rollback.SetHandler(async (parse, ct) =>
        {
            await using var stores = Open(parse);
            var e = await stores.Registry.RollbackAliasAsync(parse.GetValue(name)!, parse.GetValue(aliasName)!, Environment.UserName, ct);
            Cli.Err.MarkupLine($"{Markup.Escape(e.Name)}@{Markup.Escape(e.Alias)}: version {e.FromVersion?.ToString(CultureInfo.InvariantCulture) ?? "-"} → version {e.ToVersion}");
            if (parse.GetValue(Json)) PrintJson(e.ToDto(), MlflowJson.Default.AliasEventDto);
            else Console.Out.WriteLine(e.ToVersion?.ToString(CultureInfo.InvariantCulture));
            return 0;
        });
        models.Subcommands.Add(rollback);
        return models;
    }
}
