using System.Text;
using Kiln.Batch.Validation;
using Kiln.Core.Data;

namespace Kiln.Batch;

/// <summary>Writes a partition's rejected rows as CSV (source, row, column, reason, then the row's values), atomically.</summary>
internal static class RejectsWriter
{
    public static string PathFor(string directory, PartitionId partition) => Path.Combine(directory, partition.PartName + ".csv");

    public static async Task WriteAsync(string directory, PartitionId partition, IReadOnlyList<ColumnRequest> columns,
        IReadOnlyList<RejectedRow> rows, CancellationToken ct)
    {
        var path = PathFor(directory, partition);
        if (rows.Count == 0)
        {
            if (File.Exists(path)) File.Delete(path); // a resumed partition that is clean now
            return;
        }
        Directory.CreateDirectory(directory);
        var sb = new StringBuilder("source,row,column,reason");
        foreach (var c in columns) sb.Append(',').Append(Quote(c.Name));
        sb.Append('\n');
        foreach (var r in rows)
        {
            sb.Append(Quote(r.Source)).Append(',').Append(r.Row).Append(',').Append(Quote(r.Column)).Append(',').Append(Quote(r.Reason));
            foreach (var v in r.Values) sb.Append(',').Append(v is null ? "" : Quote(v));
            sb.Append('\n');
        }
        await Kiln.Core.AtomicFile.WriteAllTextAsync(path, sb.ToString(), ct).ConfigureAwait(false);
    }

    private static string Quote(string s) =>
        s.AsSpan().IndexOfAny(",\"\n\r") >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;
}
