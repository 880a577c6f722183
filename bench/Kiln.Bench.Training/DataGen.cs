using System.Globalization;
using System.Text;
using Kiln.Core.Data;

namespace Kiln.Bench.Training;

/// <summary>Synthetic data from a fixed seed: the same seed gives the same table, run after run.</summary>
internal static class DataGen
{
    /// <summary>
    /// <paramref name="rows"/> rows × 20 columns: 15 numeric (normal, log-normal, uniform and
    /// integer counts, some with 1% missing) and 5 categorical with 2 to 1000 labels. Numbers are
    /// rounded to 4 decimals so that a CSV round trip is exact.
    /// </summary>
    public static DataTable Wide(int rows, int seed)
    {
        var rng = new Random(seed);
        var table = new DataTable(rows);
        for (var c = 0; c < 15; c++)
        {
            var values = new double[rows];
            var missing = c % 4 == 3 ? 0.01 : 0.0;
            for (var i = 0; i < rows; i++)
            {
                double v = (c % 3) switch
                {
                    0 => 100 + c * 10 + 15 * Normal(rng),
                    1 => Math.Exp(1 + 0.75 * Normal(rng)),
                    _ => c >= 10 ? rng.Next(0, 101) : rng.NextDouble() * 1000,
                };
                values[i] = missing > 0 && rng.NextDouble() < missing ? double.NaN : Math.Round(v, 4);
            }
            table.Add(new NumericColumn($"num_{c:D2}", values));
        }
        int[] cardinalities = [2, 5, 20, 100, 1000];
        for (var c = 0; c < cardinalities.Length; c++)
        {
            var labels = new string[cardinalities[c]];
            for (var k = 0; k < labels.Length; k++) labels[k] = $"c{c}_{k}";
            var values = new string?[rows];
            for (var i = 0; i < rows; i++)
            {
                // Skewed: squaring a uniform makes low labels more frequent.
                var u = rng.NextDouble();
                values[i] = c == 4 && rng.NextDouble() < 0.01 ? null : labels[(int)(u * u * labels.Length)];
            }
            table.Add(new TextColumn($"cat_{c}", values));
        }
        return table;
    }

    /// <summary>
    /// The seed article's data: three float features (feature_1 ~ N(50, 5) as in its drift example,
    /// feature_2 ~ U(0, 1), feature_3 log-normal) and a binary target drawn from a logistic model
    /// with a non-linear term, so there is signal and irreducible noise.
    /// </summary>
    public static DataTable SeedArticle(int rows, int seed)
    {
        var rng = new Random(seed);
        var f1 = new double[rows];
        var f2 = new double[rows];
        var f3 = new double[rows];
        var target = new string?[rows];
        for (var i = 0; i < rows; i++)
        {
            f1[i] = Math.Round(50 + 5 * Normal(rng), 6);
            f2[i] = Math.Round(rng.NextDouble(), 6);
            f3[i] = Math.Round(Math.Exp(0.5 * Normal(rng)), 6);
            var a = (f1[i] - 50) / 5;
            var b = (f2[i] - 0.5) / 0.2887;
            var c = Math.Log(f3[i]) / 0.5;
            var logit = 1.2 * a - 0.9 * b * b + 0.8 * a * c + 0.6;
            target[i] = rng.NextDouble() < 1 / (1 + Math.Exp(-logit)) ? "1" : "0";
        }
        return new DataTable(rows)
            .Add(new NumericColumn("feature_1", f1))
            .Add(new NumericColumn("feature_2", f2))
            .Add(new NumericColumn("feature_3", f3))
            .Add(new TextColumn("target", target));
    }

    /// <summary>A standard normal draw (Box–Muller).</summary>
    public static double Normal(Random rng)
    {
        var u1 = 1.0 - rng.NextDouble();
        var u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Writes the given rows of a table as CSV (header, invariant numbers, empty = missing).</summary>
    public static void WriteCsv(DataTable table, string path, IReadOnlyList<int>? rows = null)
    {
        using var w = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 20);
        w.Write(string.Join(',', table.Columns.Select(c => c.Name)));
        w.Write('\n');
        Span<char> buffer = stackalloc char[64];
        var count = rows?.Count ?? table.RowCount;
        for (var k = 0; k < count; k++)
        {
            var r = rows is null ? k : rows[k];
            for (var c = 0; c < table.Columns.Count; c++)
            {
                if (c > 0) w.Write(',');
                switch (table.Columns[c])
                {
                    case NumericColumn n when !double.IsNaN(n.Values[r]):
                        n.Values[r].TryFormat(buffer, out var written, "R", CultureInfo.InvariantCulture);
                        w.Write(buffer[..written]);
                        break;
                    case TextColumn t when t.Values[r] is { } s:
                        w.Write(s);
                        break;
                }
            }
            w.Write('\n');
        }
    }
}
