using System.Diagnostics;
using System.Globalization;
using Kiln.Core.Data;
using Kiln.Scoring;

// The batch benchmark's helper (bench/batch/run.sh drives it):
//   gen ROWS DIR         writes DIR/data.parquet (3 float features, row groups of 500,000), DIR/data.csv (the same rows,
//                        for the pandas peer) and DIR/train.csv (100,000 labelled rows), all from seed 42.
//   model-only PKG FILE  reads FILE's rows into memory, then times scoring them on every core (the I/O-free limit).
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
