namespace Kiln.Core.Data;

/// <summary>How a reader should load a column: as numbers (text in it is an error) or as text.</summary>
public enum ColumnType
{
    Numeric,

    /// <summary>Text; a Parquet timestamp column is read as what it is, a <see cref="TimestampColumn"/>.</summary>
    Text,
}

/// <summary>One column a reader must load, and its type.</summary>
public readonly record struct ColumnRequest(string Name, ColumnType Type);
