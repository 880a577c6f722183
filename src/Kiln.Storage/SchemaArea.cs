namespace Kiln.Storage;

/// <summary>
/// One numbered schema change. <see cref="Sql"/> is written once with the dialect tokens (see
/// <see cref="SqlDialect.Ddl"/>); <see cref="PostgresSql"/> is only for a change the two engines cannot share.
/// Statements are separated by ';'.
/// </summary>
public sealed record Migration(int Version, string Sql, string? PostgresSql = null);

/// <summary>
/// The tables one area owns in the metadata database, and the migrations that build them, numbered from 1.
/// <paramref name="AdoptTable"/> is a table version 1 creates: a database that has it but no row in
/// kiln_schema was made by a Kiln that predates the schema table, and is recorded as version 1 untouched.
/// </summary>
public sealed record SchemaArea(string Name, string AdoptTable, IReadOnlyList<Migration> Migrations)
{
    /// <summary>The newest version this build knows.</summary>
    public int LatestVersion => Migrations.Count == 0 ? 0 : Migrations.Max(m => m.Version);
}
