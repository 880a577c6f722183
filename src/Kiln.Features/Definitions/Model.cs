namespace Kiln.Features.Definitions;

/// <summary>A column of a feature view: a feature name and its type.</summary>
public sealed record FeatureField(string Name, FeatureType Dtype);

/// <summary>An entity: the thing features describe, identified by its join keys.</summary>
public sealed record EntityDefinition(string Name, IReadOnlyList<string> JoinKeys, FeatureType? ValueType, string? Description, string DefinedIn);

/// <summary>The file format of a batch source.</summary>
public enum SourceFormat
{
    Parquet,
    Csv,
}

/// <summary>A batch source: Parquet or CSV files (a path or a glob) with an event timestamp column.</summary>
public sealed record SourceDefinition(
    string Name,
    string Path,
    SourceFormat Format,
    string TimestampField,
    string? CreatedTimestampColumn,
    string? Description,
    string DefinedIn);

/// <summary>A push source: rows pushed over HTTP for the views that use it; its offline data lives in a batch source.</summary>
public sealed record PushSourceDefinition(string Name, string BatchSource, string? Description, string DefinedIn);

/// <summary>A feature view: a group of features of some entities, read from one source.</summary>
public sealed record FeatureViewDefinition(
    string Name,
    IReadOnlyList<string> Entities,
    string Source,
    IReadOnlyList<FeatureField> Schema,
    TimeSpan Ttl,
    bool Online,
    string? Description,
    string DefinedIn)
{
    /// <summary>The field of a feature, or null when the view has no such feature.</summary>
    public FeatureField? Field(string name)
    {
        foreach (var f in Schema) if (f.Name == name) return f;
        return null;
    }
}

/// <summary>A named set of features that a model consumes.</summary>
public sealed record FeatureServiceDefinition(string Name, IReadOnlyList<string> Features, string? Description, string DefinedIn);

/// <summary>A reference to one feature: <c>view:feature</c>.</summary>
public readonly record struct FeatureRef(string View, string Feature)
{
    public override string ToString() => $"{View}:{Feature}";

    /// <summary>The column name with full names on: <c>view__feature</c>.</summary>
    public string FullName => $"{View}__{Feature}";
}
