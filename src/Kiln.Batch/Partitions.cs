using Kiln.Core.Data;

namespace Kiln.Batch;

/// <summary>
/// A unit of work: partition <see cref="Index"/> of the source's file (or table) number
/// <see cref="FileIndex"/>. A Parquet row group, a fixed row range of a CSV file or a query, a key range of a table.
/// </summary>
public readonly record struct PartitionId(int FileIndex, int Index) : IComparable<PartitionId>
{
    /// <summary>The output part's base name: part-&lt;file&gt;-&lt;partition&gt;, zero-padded so names sort in input order.</summary>
    public string PartName => $"part-{FileIndex:D5}-{Index:D5}";

    public int CompareTo(PartitionId other) => FileIndex != other.FileIndex ? FileIndex.CompareTo(other.FileIndex) : Index.CompareTo(other.Index);

    public static bool operator <(PartitionId a, PartitionId b) => a.CompareTo(b) < 0;

    public static bool operator >(PartitionId a, PartitionId b) => a.CompareTo(b) > 0;

    public static bool operator <=(PartitionId a, PartitionId b) => a.CompareTo(b) <= 0;

    public static bool operator >=(PartitionId a, PartitionId b) => a.CompareTo(b) >= 0;

    public override string ToString() => $"{FileIndex}-{Index}";
}

/// <summary>
/// Rows of one partition as a source read them: <see cref="Table"/>'s row 0 is the source's row
/// <see cref="FirstRow"/> (0-based); the partition's last chunk has <see cref="EndOfPartition"/> set
/// (and may be empty). <see cref="Release"/>, when set, hands the table's arrays back to the source for its next
/// chunks: called once, when nothing reads the table any more (the job's writer has written the chunk's last slice).
/// </summary>
internal sealed record SourceChunk(PartitionId Partition, string Source, long FirstRow, DataTable Table, bool EndOfPartition, Action? Release = null);

/// <summary>The type of a source or output column, as far as the source knows it.</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(ValueKindJsonConverter))]
public enum ValueKind
{
    /// <summary>Whole numbers (written to Parquet as int64, to SQL as BIGINT).</summary>
    Integer,

    /// <summary>Floating-point numbers.</summary>
    Real,

    Text,

    /// <summary>Not declared (CSV cells, untyped SQLite expressions): checked row by row.</summary>
    Unknown,

    /// <summary>32-bit whole numbers (Parquet INT32; written back as INT32, to SQL as BIGINT).</summary>
    Integer32,

    /// <summary>True or false (read as 1 or 0; written back to Parquet as BOOLEAN).</summary>
    Boolean,

    /// <summary>Instants (Parquet timestamps adjusted to UTC): read as ISO 8601 text, written back as timestamps.</summary>
    Timestamp,

    /// <summary>Wall-clock times (Parquet timestamps without a time zone): read as ISO 8601 text, written back as such.</summary>
    LocalTimestamp,
}

/// <summary>A column as a source declares it.</summary>
public sealed record SourceColumn(string Name, ValueKind Kind, bool Nullable = true)
{
    /// <summary>Why the column cannot be read (a nested or unsupported Parquet column); null when it can.</summary>
    public string? Unsupported { get; init; }
}

/// <summary>The columns of one file or table of a source.</summary>
public sealed record SourceSchema(string Source, IReadOnlyList<SourceColumn> Columns)
{
    /// <summary>Why the file's schema could not be read (truncated, not Parquet, unreadable); null when it was.</summary>
    public Exception? Failure { get; init; }

    public SourceColumn? Find(string name)
    {
        foreach (var c in Columns) if (c.Name == name) return c;
        return null;
    }
}

/// <summary>Writes <see cref="ValueKind"/> as snake_case text in manifests.</summary>
public sealed class ValueKindJsonConverter() : System.Text.Json.Serialization.JsonStringEnumConverter<ValueKind>(System.Text.Json.JsonNamingPolicy.SnakeCaseLower);

/// <summary>An input file left out of a job run with <see cref="BadFilePolicy.Skip"/>, and why.</summary>
public sealed record SkippedFile(string File, string Reason);
