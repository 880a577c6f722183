using System.Diagnostics;
using System.Globalization;
using Kiln.Core.Data;
using Kiln.Scoring;

// The batch benchmark's helper (bench/batch/run.sh drives it):
//   gen ROWS DIR         writes DIR/data.parquet (3 float features, row groups of 500,000), DIR/data.csv (the same rows,
//                        for the pandas peer) and DIR/train.csv (100,000 labelled rows), all from seed 42.
//   model-only PKG FILE  reads FILE's rows into memory, then times scoring them on every core (the I/O-free limit).
//   parquet CSV FILE     writes CSV's rows (a header, then f0,f1,f2 numbers) to FILE as id + f0..f2 (other models' rows).
//   trees PKG FILE       the forest's shape: nodes and depth per tree, and the steps FILE's rows take (one row, and the
//                        longest of 8 and of 16 consecutive rows, as the lockstep walk runs them).
//   csv FILE [ROUNDS]    Kiln's CSV reader against Sep and Sylvan.Data.Csv on FILE, alternating rounds (CsvParsers.cs).
//   mixed FILE ROWS      writes a wider CSV of mixed types (quoted text, missing cells, CRLF) for `csv`.
var inv = CultureInfo.InvariantCulture;
switch (args.FirstOrDefault())
{
    case "gen":
        await Generate(long.Parse(args[1], inv), args[2]);
        break;
    case "model-only":
        await ModelOnly(args[1], args[2]);
        break;
    case "parquet":
        ToParquet(args[1], args[2]);
        break;
    case "trees":
        await TreeStats(args[1], args[2]);
        break;
    case "csv":
        CsvParsers.Run(args[1], args.Length > 2 ? int.Parse(args[2], inv) : 5);
        break;
    case "mixed":
        CsvParsers.WriteMixed(args[1], int.Parse(args[2], inv));
        break;
    default:
        Console.Error.WriteLine("usage: Kiln.Bench.Batch gen ROWS DIR | model-only PACKAGE FILE.parquet | csv FILE [ROUNDS] | mixed FILE ROWS");
        return 2;
}
return 0;

// Three features, and a label that depends on them non-linearly with 10% noise (a forest has something to learn).
static (double F0, double F1, double F2, int Label) Row(Random rng)
{
    var f0 = rng.NextDouble() * 10;
    var f1 = rng.NextDouble() * 10;
    var f2 = rng.NextDouble() * 10;
    var label = (f0 * f1 > 25 ? 1 : 0) ^ (f2 > 8 ? 1 : 0);
    if (rng.NextDouble() < 0.1) label = 1 - label;
    return (f0, f1, f2, label);
}

static async Task Generate(long rows, string dir)
{
    Directory.CreateDirectory(dir);
    var inv = CultureInfo.InvariantCulture;
    var rng = new Random(42);
    using (var train = new StreamWriter(Path.Combine(dir, "train.csv")))
    {
        train.Write("f0,f1,f2,label\n");
        for (var i = 0; i < 100_000; i++)
        {
            var (a, b, c, l) = Row(rng);
            train.Write(string.Create(inv, $"{(float)a},{(float)b},{(float)c},{l}\n"));
        }
    }
    await using var stream = File.Create(Path.Combine(dir, "data.parquet"));
    using var writer = new ParquetTableWriter(stream,
        [new("id", ParquetColumnKind.Int64, false), new("f0", ParquetColumnKind.Double, false), new("f1", ParquetColumnKind.Double, false), new("f2", ParquetColumnKind.Double, false)]);
    using var csv = new StreamWriter(Path.Combine(dir, "data.csv"), false, System.Text.Encoding.UTF8, 1 << 20);
    csv.Write("id,f0,f1,f2\n");
    const int Group = 500_000;
    for (long start = 0; start < rows; start += Group)
    {
        var n = (int)Math.Min(Group, rows - start);
        var id = new long[n];
        var f = new float[3][];
        for (var k = 0; k < 3; k++) f[k] = new float[n];
        for (var i = 0; i < n; i++)
        {
            var (a, b, c, _) = Row(rng);
            id[i] = start + i;
            f[0][i] = (float)a;
            f[1][i] = (float)b;
            f[2][i] = (float)c;
            csv.Write(string.Create(inv, $"{id[i]},{f[0][i]},{f[1][i]},{f[2][i]}\n"));
        }
        writer.BeginRowGroup(n);
        writer.WriteWhole([.. id.Select(v => (double)v)]);
        for (var k = 0; k < 3; k++) writer.WriteDouble([.. f[k].Select(v => (double)v)]);
        writer.EndRowGroup();
    }
    writer.Finish();
}

static async Task ModelOnly(string package, string file)
{
    var requests = new[] { new ColumnRequest("f0", ColumnType.Numeric), new ColumnRequest("f1", ColumnType.Numeric), new ColumnRequest("f2", ColumnType.Numeric) };
    var tables = new List<DataTable>();
    await foreach (var t in ParquetTable.ReadRowGroupsAsync(file, requests)) tables.Add(t);
    using var scorer = Scorers.Open(package);
    scorer.ScoreAll(tables[0]); // warm up (JIT, engines)
    var clock = Stopwatch.StartNew();
    long rows = 0;
    foreach (var t in tables)
    {
        scorer.ScoreAll(t);
        rows += t.RowCount;
    }
    var seconds = clock.Elapsed.TotalSeconds;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"model-only: {rows} rows in {seconds:0.00} s = {rows / seconds:0} rows/s"));
}

static async Task TreeStats(string packageDir, string file)
{
    var inv = CultureInfo.InvariantCulture;
    var package = Kiln.Core.Packaging.ModelPackage.Load(packageDir);
    var ml = new Microsoft.ML.MLContext(seed: 0);
    var model = ml.Model.Load(package.ModelPath, out var inputSchema);
    var trees = Kiln.Scoring.Trees.MlnetTreeModel.TryCreate(model, inputSchema, package.Signature.Task, out var reason) ?? throw new InvalidOperationException(reason);
    var ensemble = trees.Ensemble;
    Console.WriteLine(string.Create(inv, $"features {ensemble.FeatureCount}, trees {ensemble.Trees.Count}, internal nodes {ensemble.Trees.Sum(t => t.NodeCount)} (mean {ensemble.Trees.Average(t => t.NodeCount):0.0}, max {ensemble.Trees.Max(t => t.NodeCount)} a tree)"));
    var depths = ensemble.Trees.Select(t => t.IsEmpty ? 0 : MaxDepth(t, 0)).ToArray();
    Console.WriteLine(string.Create(inv, $"max depth a tree: mean {depths.Average():0.0}, min {depths.Min()}, max {depths.Max()}; histogram {string.Join(' ', depths.GroupBy(d => d).OrderBy(g => g.Key).Select(g => $"{g.Key}:{g.Count()}"))}"));
    var requests = new[] { new ColumnRequest("f0", ColumnType.Numeric), new ColumnRequest("f1", ColumnType.Numeric), new ColumnRequest("f2", ColumnType.Numeric) };
    DataTable? first = null;
    await foreach (var t in ParquetTable.ReadRowGroupsAsync(file, requests)) { first = t; break; }
    var rows = Math.Min(first!.RowCount, 65_536);
    var cols = new[] { first.Numeric("f0").Values, first.Numeric("f1").Values, first.Numeric("f2").Values };
    var x = new float[3];
    var steps = new int[rows];
    long one = 0, of8 = 0, of16 = 0, leafDepthHistTotal = 0;
    var hist = new long[64];
    foreach (var tree in ensemble.Trees)
    {
        for (var r = 0; r < rows; r++)
        {
            for (var k = 0; k < 3; k++) x[k] = (float)cols[k][r];
            var n = 0;
            var d = 0;
            if (!tree.IsEmpty)
            {
                while (n >= 0) { n = x[tree.SplitFeatures[n]] <= tree.Thresholds[n] ? tree.LteChild[n] : tree.GtChild[n]; d++; }
            }
            steps[r] = d;
            one += d;
            hist[d]++;
            leafDepthHistTotal++;
        }
        for (var r = 0; r + 8 <= rows; r += 8) of8 += steps.AsSpan(r, 8).ToArray().Max() * 8L;
        for (var r = 0; r + 16 <= rows; r += 16) of16 += steps.AsSpan(r, 16).ToArray().Max() * 16L;
    }
    var pairs = (double)rows * ensemble.Trees.Count;
    Console.WriteLine(string.Create(inv, $"{rows} rows: splits a row a tree: mean {one / pairs:0.00}; longest of 8 rows: mean {of8 / pairs:0.00}; longest of 16: mean {of16 / pairs:0.00}"));
    Console.WriteLine("path length histogram (splits: share of row-trees): " + string.Join(' ', hist.Select((c, i) => (c, i)).Where(p => p.c > 0).Select(p => string.Create(inv, $"{p.i}:{100.0 * p.c / leafDepthHistTotal:0.0}%"))));

    static int MaxDepth(Kiln.Scoring.Trees.RegressionTreeSpec t, int n) => n < 0 ? 0 : 1 + Math.Max(MaxDepth(t, t.LteChild[n]), MaxDepth(t, t.GtChild[n]));
}

static void ToParquet(string csvPath, string file)
{
    var inv = CultureInfo.InvariantCulture;
    var lines = File.ReadLines(csvPath).Skip(1).Select(l => l.Split(',')).ToList();
    using var stream = File.Create(file);
    using var writer = new ParquetTableWriter(stream,
        [new("id", ParquetColumnKind.Int64, false), new("f0", ParquetColumnKind.Double, false), new("f1", ParquetColumnKind.Double, false), new("f2", ParquetColumnKind.Double, false)]);
    const int Group = 500_000;
    for (var start = 0; start < lines.Count; start += Group)
    {
        var n = Math.Min(Group, lines.Count - start);
        writer.BeginRowGroup(n);
        writer.WriteWhole([.. Enumerable.Range(start, n).Select(i => (double)i)]);
        for (var k = 0; k < 3; k++) writer.WriteDouble([.. lines.Skip(start).Take(n).Select(l => (double)float.Parse(l[k], inv))]);
        writer.EndRowGroup();
    }
    writer.Finish();
}
