using DuckDB.NET.Data;
using Kiln.Core;
using Kiln.Features.Definitions;

namespace Kiln.Features.Offline;

/// <summary>Checks definitions against the data: every source readable, with its timestamp, join key and feature columns of fitting types.</summary>
public static class RepositoryValidator
{
    /// <summary>Throws a KilnException naming the definition, file and column of the first problem found.</summary>
    public static Task ValidateAsync(FeatureRepository repo, CancellationToken cancellationToken = default) =>
        Task.Run(() =>
        {
            using var connection = DuckDb.Open();
            var described = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
            foreach (var view in repo.FeatureViews.Values.OrderBy(v => v.Name, StringComparer.Ordinal))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var source = repo.BatchSource(view);
                if (!described.TryGetValue(source.Name, out var columns))
                {
                    columns = SourceColumns(connection, source);
                    described[source.Name] = columns;
                }
                var where = $"feature view '{view.Name}' ({view.DefinedIn}), source '{source.Name}' file {source.Path}";
                foreach (var key in repo.JoinKeys(view))
                {
                    if (!columns.TryGetValue(key, out var type))
                        throw new KilnException($"{where}: no column '{key}' for join key '{key}' (columns: {FeatureRepository.Known(columns.Keys)})");
                    if (repo.JoinKeyType(key) is { } declared && !declared.Accepts(type))
                        throw new KilnException($"{where}: join key column '{key}' is {type} but the entity declares {declared.Name()}");
                }
                foreach (var field in view.Schema)
                {
                    if (!columns.TryGetValue(field.Name, out var type))
                        throw new KilnException($"{where}: no column '{field.Name}' for feature '{field.Name}' (columns: {FeatureRepository.Known(columns.Keys)})");
                    if (!field.Dtype.Accepts(type))
                        throw new KilnException($"{where}: type mismatch for feature '{field.Name}': column is {type}, the schema says {field.Dtype.Name()}");
                }
            }
        }, cancellationToken);

    /// <summary>The columns of a source, after checking its timestamp columns.</summary>
    internal static Dictionary<string, string> SourceColumns(DuckDBConnection connection, SourceDefinition source)
    {
        List<(string Name, string Type)> list;
        try
        {
            list = DuckDb.Describe(connection, DuckDb.SourceRelation(source));
        }
        catch (DuckDBException e)
        {
            throw new KilnException($"source '{source.Name}' ({source.DefinedIn}): cannot read {source.Path}: {FirstLine(e.Message)}", e);
        }
        var columns = list.ToDictionary(c => c.Name, c => c.Type, StringComparer.Ordinal);
        CheckTimestamp(source, columns, source.TimestampField, "timestamp_field");
        if (source.CreatedTimestampColumn is { } created) CheckTimestamp(source, columns, created, "created_timestamp_column");
        return columns;
    }

    private static void CheckTimestamp(SourceDefinition source, Dictionary<string, string> columns, string column, string key)
    {
        if (!columns.TryGetValue(column, out var type))
            throw new KilnException($"source '{source.Name}' ({source.DefinedIn}): file {source.Path} has no {key} column '{column}' (columns: {FeatureRepository.Known(columns.Keys)})");
        if (DuckDb.NormalizeTimestamp("x", type) is null)
            throw new KilnException($"source '{source.Name}' ({source.DefinedIn}): {key} column '{column}' in {source.Path} is {type}, not a timestamp");
    }

    internal static string FirstLine(string message)
    {
        var i = message.IndexOf('\n', StringComparison.Ordinal);
        return i < 0 ? message : message[..i];
    }
}
