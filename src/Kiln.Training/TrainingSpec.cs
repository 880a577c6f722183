using System.Globalization;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Core.Yaml;
using YamlDotNet.RepresentationModel;

namespace Kiln.Training;

/// <summary>How a categorical feature becomes numbers.</summary>
public enum CategoricalEncoding
{
    OneHot,
    Hash,
}

/// <summary>One feature of a spec: its kind and, for categories, the encoding.</summary>
public sealed record FeatureSpec(string Name, ColumnKind Kind, CategoricalEncoding Encoding = CategoricalEncoding.OneHot);

/// <summary>
/// The estimator and its hyper-parameters. <paramref name="CalibrationFolds"/>: a binary fast_forest's probabilities
/// are calibrated on out-of-fold scores of this many folds of the training rows (0: on the training rows' own scores).
/// </summary>
public sealed record TrainerSpec(string Kind, int Trees, int Leaves, int MinSamplesLeaf, double LearningRate, int Iterations, int CalibrationFolds = 3)
{
    public static readonly string[] Kinds = ["fast_forest", "fast_tree", "lightgbm", "linear"];
}

/// <summary>
/// <c>features_from</c>: build the training set from a feature service and an entity table (point-in-time join) in
/// place of a flat <c>data</c> file. Paths are as written; <see cref="TrainingSpec.BaseDirectory"/> resolves them.
/// </summary>
public sealed record FeatureServiceSource
{
    /// <summary>The feature service whose features are joined.</summary>
    public required string Service { get; init; }

    /// <summary>The entity table (Parquet or CSV): join keys, event time, label and any request-time fields.</summary>
    public required string Entities { get; init; }

    /// <summary>The feature registry (SQLite path or PostgreSQL URI); null: $KILN_FEATURE_REGISTRY, else .kiln/kiln.db.</summary>
    public string? Registry { get; init; }

    /// <summary>The feature-store project; null: the most recently applied one.</summary>
    public string? Project { get; init; }

    /// <summary>The entity table's event time column.</summary>
    public string TimestampColumn { get; init; } = "event_timestamp";

    /// <summary>Name feature columns <c>view__feature</c> (then the spec's features use those names).</summary>
    public bool FullNames { get; init; }

    /// <summary>Keep the built training set here (Parquet or CSV); null: a temporary file, deleted after training.</summary>
    public string? Out { get; init; }
}

/// <summary>
/// A training spec (YAML): what to learn from which data. Every error names the file, the line
/// and the key at fault.
/// </summary>
public sealed record TrainingSpec
{
    public required string Name { get; init; }

    public required ModelTask Task { get; init; }

    /// <summary>The data location as written (a file, a directory or a glob); empty when <see cref="FeaturesFrom"/> is given.</summary>
    public required string Data { get; init; }

    /// <summary>Build the training set from a feature service instead of reading <see cref="Data"/>.</summary>
    public FeatureServiceSource? FeaturesFrom { get; init; }

    /// <summary>The directory relative paths are resolved against (the spec file's directory).</summary>
    public required string BaseDirectory { get; init; }

    public required string Label { get; init; }

    /// <summary>The positive class of a binary label, when the user names it.</summary>
    public string? Positive { get; init; }

    public required IReadOnlyList<FeatureSpec> Features { get; init; }

    public required TrainerSpec Trainer { get; init; }

    public double Holdout { get; init; } = 0.2;

    public int Seed { get; init; } = 42;

    /// <summary>The spec's text, kept in the package's metadata.</summary>
    public string Text { get; init; } = "";

    /// <summary>Where the spec came from, for messages.</summary>
    public string Source { get; init; } = "spec";

    public static TrainingSpec Load(string path)
    {
        if (!File.Exists(path)) throw new KilnException($"{path}: no such spec file");
        var text = File.ReadAllText(path);
        return Parse(text, path, Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    public static TrainingSpec Parse(string text, string source, string baseDirectory)
    {
        if (YamlFiles.ParseMapping(text, source) is not { } root)
            throw new KilnException($"{source}: the spec must be a YAML mapping (name, task, data, label, features, ...)");
        var r = new Reader(source);
        var known = new HashSet<string> { "name", "task", "data", "features_from", "label", "positive", "features", "trainer", "holdout", "seed", "description" };
        foreach (var key in root.Children.Keys)
        {
            var k = ((YamlScalarNode)key).Value ?? "";
            if (!known.Contains(k)) throw r.Fail(key, YamlFiles.UnknownKey(k, known.Order()));
        }

        var name = r.RequiredString(root, "name");
        if (name.Length == 0 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            throw r.Error(root, "name", $"'{name}' must be letters, digits, '-', '_' or '.'");
        var taskText = r.RequiredString(root, "task");
        var task = taskText switch
        {
            "binary" => ModelTask.Binary,
            "multiclass" => ModelTask.Multiclass,
            "regression" => ModelTask.Regression,
            _ => throw r.Error(r.Node(root, "task")!, "task", $"'{taskText}' is not a task (expected binary, multiclass or regression)"),
        };
        var label = r.RequiredString(root, "label");
        var features = ParseFeatures(r, root, label);
        var trainer = ParseTrainer(r, root);
        var holdout = r.OptionalDouble(root, "holdout") ?? 0.2;
        if (holdout is <= 0 or >= 1) throw r.Error(r.Node(root, "holdout")!, "holdout", $"{holdout.ToString(CultureInfo.InvariantCulture)} must be between 0 and 1 (exclusive)");
        var featuresFrom = ParseFeaturesFrom(r, root);
        var data = r.OptionalString(root, "data");
        if (data is not null && featuresFrom is not null)
            throw r.Error(r.Node(root, "features_from")!, "features_from", "cannot be given together with 'data' (use one: a flat file, or a feature service and an entity table)");
        if (data is null && featuresFrom is null)
            throw r.Error(root, "data", "is required (a CSV/Parquet file, directory or glob), or give features_from: {service, entities}");
        return new TrainingSpec
        {
            Name = name,
            Task = task,
            Data = data ?? "",
            FeaturesFrom = featuresFrom,
            BaseDirectory = baseDirectory,
            Label = label,
            Positive = r.OptionalString(root, "positive"),
            Features = features,
            Trainer = trainer,
            Holdout = holdout,
            Seed = r.OptionalInt(root, "seed") ?? 42,
            Text = text,
            Source = source,
        };
    }

    private static List<FeatureSpec> ParseFeatures(Reader r, YamlMappingNode root, string label)
    {
        var node = r.Node(root, "features") ?? throw r.Error(root, "features", "is required: a mapping of column name to numeric or categorical");
        if (node is not YamlMappingNode map || map.Children.Count == 0)
            throw r.Error(node, "features", "must be a non-empty mapping of column name to numeric or categorical");
        var list = new List<FeatureSpec>();
        foreach (var (keyNode, valueNode) in map.Children)
        {
            var name = ((YamlScalarNode)keyNode).Value ?? "";
            var key = $"features.{name}";
            if (name == label) throw r.Error(keyNode, key, "the label cannot also be a feature");
            string type;
            var encoding = CategoricalEncoding.OneHot;
            switch (valueNode)
            {
                case YamlScalarNode s:
                    type = s.Value ?? "";
                    break;
                case YamlMappingNode m:
                    type = r.RequiredString(m, "type", key);
                    var enc = r.OptionalString(m, "encoding", key);
                    encoding = enc switch
                    {
                        null or "onehot" or "one_hot" => CategoricalEncoding.OneHot,
                        "hash" => CategoricalEncoding.Hash,
                        _ => throw r.Error(m, $"{key}.encoding", $"'{enc}' is not an encoding (expected onehot or hash)"),
                    };
                    break;
                default:
                    throw r.Error(valueNode, key, "must be numeric, categorical or a mapping with type");
            }
            var kind = type switch
            {
                "numeric" => ColumnKind.Numeric,
                "categorical" => ColumnKind.Categorical,
                _ => throw r.Error(valueNode, key, $"'{type}' is not a feature type (expected numeric or categorical)"),
            };
            list.Add(new FeatureSpec(name, kind, encoding));
        }
        return list;
    }

    private static FeatureServiceSource? ParseFeaturesFrom(Reader r, YamlMappingNode root)
    {
        if (r.Node(root, "features_from") is not { } node) return null;
        if (node is not YamlMappingNode m) throw r.Error(node, "features_from", "must be a mapping with service and entities (and optionally registry, project, timestamp_column, full_names, out)");
        var known = new HashSet<string> { "service", "entities", "registry", "project", "timestamp_column", "full_names", "out" };
        foreach (var key in m.Children.Keys)
        {
            var k = ((YamlScalarNode)key).Value ?? "";
            if (!known.Contains(k)) throw r.Fail(key, $"features_from: {YamlFiles.UnknownKey(k, known.Order())}");
        }
        var fullNames = r.OptionalString(m, "full_names", "features_from");
        return new FeatureServiceSource
        {
            Service = r.RequiredString(m, "service", "features_from"),
            Entities = r.RequiredString(m, "entities", "features_from"),
            Registry = r.OptionalString(m, "registry", "features_from"),
            Project = r.OptionalString(m, "project", "features_from"),
            TimestampColumn = r.OptionalString(m, "timestamp_column", "features_from") ?? "event_timestamp",
            FullNames = fullNames switch
            {
                null or "false" or "False" or "no" => false,
                "true" or "True" or "yes" => true,
                _ => throw r.Error(r.Node(m, "full_names")!, "features_from.full_names", $"'{fullNames}' is not true or false"),
            },
            Out = r.OptionalString(m, "out", "features_from"),
        };
    }

    private static TrainerSpec ParseTrainer(Reader r, YamlMappingNode root)
    {
        if (r.Node(root, "trainer") is not { } node) return new TrainerSpec("fast_forest", 100, 64, 10, 0.2, 100);
        if (node is not YamlMappingNode m) throw r.Error(node, "trainer", "must be a mapping with kind and parameters");
        var known = new HashSet<string> { "kind", "trees", "leaves", "min_samples_leaf", "learning_rate", "iterations", "calibration_folds" };
        foreach (var key in m.Children.Keys)
        {
            var k = ((YamlScalarNode)key).Value ?? "";
            if (!known.Contains(k)) throw r.Fail(key, $"trainer: {YamlFiles.UnknownKey(k, known.Order())}");
        }
        var kind = r.OptionalString(m, "kind", "trainer") ?? "fast_forest";
        if (!TrainerSpec.Kinds.Contains(kind)) throw r.Error(r.Node(m, "kind")!, "trainer.kind", $"'{kind}' is not a trainer (expected {string.Join(", ", TrainerSpec.Kinds)})");
        var spec = new TrainerSpec(kind,
            r.OptionalInt(m, "trees", "trainer") ?? 100,
            r.OptionalInt(m, "leaves", "trainer") ?? 64,
            r.OptionalInt(m, "min_samples_leaf", "trainer") ?? 10,
            r.OptionalDouble(m, "learning_rate", "trainer") ?? 0.2,
            r.OptionalInt(m, "iterations", "trainer") ?? 100,
            r.OptionalInt(m, "calibration_folds", "trainer") ?? 3);
        if (spec.Trees < 1) throw r.Error(m, "trainer.trees", "must be at least 1");
        if (spec.Leaves < 2) throw r.Error(m, "trainer.leaves", "must be at least 2");
        if (spec.MinSamplesLeaf < 1) throw r.Error(m, "trainer.min_samples_leaf", "must be at least 1");
        if (spec.LearningRate <= 0) throw r.Error(m, "trainer.learning_rate", "must be positive");
        if (spec.Iterations < 1) throw r.Error(m, "trainer.iterations", "must be at least 1");
        if (spec.CalibrationFolds is < 0 or 1) throw r.Error(m, "trainer.calibration_folds", "must be 0 (calibrate on the training rows) or at least 2");
        return spec;
    }

    /// <summary>Reads scalars from mappings and builds errors that name the file, line and key.</summary>
    private sealed class Reader(string source)
    {
        public YamlNode? Node(YamlMappingNode map, string key) =>
            map.Children.TryGetValue(new YamlScalarNode(key), out var v) ? v : null;

        public KilnException Error(YamlNode node, string key, string message) => Fail(node, $"'{key}' {message}");

        public KilnException Fail(YamlNode node, string message) => new($"{YamlFiles.Where(source, node)}: {message}");

        public string RequiredString(YamlMappingNode map, string key, string? parent = null) =>
            OptionalString(map, key, parent) ?? throw Error(map, Qualified(parent, key), "is required");

        public string? OptionalString(YamlMappingNode map, string key, string? parent = null)
        {
            var node = Node(map, key);
            if (node is null) return null;
            if (node is not YamlScalarNode s || string.IsNullOrWhiteSpace(s.Value)) throw Error(node, Qualified(parent, key), "must be a non-empty text value");
            return s.Value.Trim();
        }

        public double? OptionalDouble(YamlMappingNode map, string key, string? parent = null)
        {
            var text = OptionalString(map, key, parent);
            if (text is null) return null;
            return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)
                ? v : throw Error(Node(map, key)!, Qualified(parent, key), $"'{text}' is not a number");
        }

        public int? OptionalInt(YamlMappingNode map, string key, string? parent = null)
        {
            var text = OptionalString(map, key, parent);
            if (text is null) return null;
            return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)
                ? v : throw Error(Node(map, key)!, Qualified(parent, key), $"'{text}' is not a whole number");
        }

        private static string Qualified(string? parent, string key) => parent is null ? key : $"{parent}.{key}";
    }
}
