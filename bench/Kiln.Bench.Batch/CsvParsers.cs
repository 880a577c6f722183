using System.Diagnostics;
using System.Globalization;
using Kiln.Core.Data;
using nietras.SeparatedValues;
using Sylvan.Data.Csv;

/// <summary>
/// Kiln's CSV reader against Sep and Sylvan.Data.Csv, each parsing a file into the same DataTable columns (numbers through
/// Kiln's cell rule, text as strings interned per column like Kiln's reader), in chunks of 65,536 rows.
/// </summary>
internal static class CsvParsers
{
    private const int Chunk = 65536;

    /// <summary>csv FILE ROUNDS: alternating rounds (the order rotated every round); wall and CPU seconds per parser.</summary>
    public static void Run(string file, int rounds)
    {
        var header = CsvTableReader.ReadHeader(file);
        // The batch file: "id" kept as text (as `kiln batch --keep id` reads CSV), the rest numbers. The mixed file
        // (mixed FILE ROWS) names its text columns with a "t" prefix.
        var requests = header.Select(h => new ColumnRequest(h, h == "id" || h.StartsWith('t') ? ColumnType.Text : ColumnType.Numeric)).ToArray();
        var parsers = new (string Name, Func<string, ColumnRequest[], (long Rows, double Check)> Parse)[]
        {
            ("kiln", ParseKiln), ("sep", ParseSep), ("sep-ff", ParseSepFastFloat), ("sylvan", ParseSylvan),
        };
        // Every parser must read the same rows and numbers before any is timed.
        var expected = parsers.Select(p => p.Parse(file, requests)).ToArray();
        for (var i = 1; i < expected.Length; i++)
        {
            if (expected[i] != expected[0])
                throw new InvalidOperationException($"{parsers[i].Name} read {expected[i]}, kiln read {expected[0]}");
        }
        Console.WriteLine($"{file}: {expected[0].Rows} rows, {requests.Length} columns, every parser agrees (checksum {expected[0].Check:R})");
        var wall = parsers.ToDictionary(p => p.Name, _ => new List<double>());
        var cpu = parsers.ToDictionary(p => p.Name, _ => new List<double>());
        for (var round = 0; round < rounds; round++)
        {
            for (var k = 0; k < parsers.Length; k++)
            {
                var (name, parse) = parsers[(k + round) % parsers.Length];
                GC.Collect();
                var process = Process.GetCurrentProcess();
                var cpu0 = process.TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                parse(file, requests);
                var seconds = clock.Elapsed.TotalSeconds;
                process.Refresh();
                var cpuSeconds = (process.TotalProcessorTime - cpu0).TotalSeconds;
                wall[name].Add(seconds);
                cpu[name].Add(cpuSeconds);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {round + 1} {name,-7} wall {seconds,6:0.000} s  cpu {cpuSeconds,6:0.000} s  {expected[0].Rows / seconds,12:0} rows/s"));
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"round {round + 1} ratios (kiln / library, wall): sep {wall["kiln"][^1] / wall["sep"][^1]:0.00}, sylvan {wall["kiln"][^1] / wall["sylvan"][^1]:0.00}; cpu: sep {cpu["kiln"][^1] / cpu["sep"][^1]:0.00}, sylvan {cpu["kiln"][^1] / cpu["sylvan"][^1]:0.00}"));
        }
        foreach (var (name, _) in parsers)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"median {name,-7} wall {Median(wall[name]):0.000} s  cpu {Median(cpu[name]):0.000} s  {expected[0].Rows / Median(wall[name]):0} rows/s"));
        }
        foreach (var lib in new[] { "sep", "sep-ff", "sylvan" })
        {
            var ratios = wall["kiln"].Zip(wall[lib], (a, b) => a / b).ToList();
            var cpuRatios = cpu["kiln"].Zip(cpu[lib], (a, b) => a / b).ToList();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"median of per-round ratios kiln / {lib}: wall {Median(ratios):0.00} (>1: {lib} faster), cpu {Median(cpuRatios):0.00}"));
        }
    }

    /// <summary>mixed FILE ROWS: a wider file of mixed types: quoted text with commas and quotes, empty cells, CRLF.</summary>
    public static void WriteMixed(string file, int rows)
    {
        var inv = CultureInfo.InvariantCulture;
        var rng = new Random(7);
        string[] cities = ["Paris", "New York, NY", "say \"\"hi\"\"", "Zürich", "São Paulo", "Łódź", ""];
        using var w = new StreamWriter(file, false, new System.Text.UTF8Encoding(true), 1 << 20);
        w.Write("id,n0,n1,n2,n3,n4,n5,tcity,tcode,tnote\r\n");
        for (var i = 0; i < rows; i++)
        {
            w.Write(i);
            for (var k = 0; k < 6; k++)
            {
                w.Write(',');
                var r = rng.NextDouble();
                if (r < 0.05) continue; // missing
                w.Write(k % 2 == 0 ? (rng.NextDouble() * 1000 - 500).ToString("R", inv) : rng.Next(-100000, 100000).ToString(inv));
            }
            var city = cities[rng.Next(cities.Length)];
            w.Write(city.Contains(',', StringComparison.Ordinal) || city.Contains('"', StringComparison.Ordinal) ? $",\"{city}\"" : $",{city}");
            w.Write(string.Create(inv, $",C{rng.Next(200)}"));
            w.Write(rng.NextDouble() < 0.5 ? string.Create(inv, $",\"note {rng.Next(1000)}, checked\"\r\n") : ",\r\n");
        }
    }

    private static double Median(List<double> v)
    {
        var s = v.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }

    /// <summary>Rows read and a checksum over every number and text length (so that nothing is optimised away).</summary>
    private static (long Rows, double Check) Summarise(DataTable t)
    {
        double check = 0;
        foreach (var c in t.Columns)
        {
            if (c is NumericColumn n)
            {
                for (var i = 0; i < t.RowCount; i++) check += double.IsNaN(n.Values[i]) ? 1 : n.Values[i] * 1e-6;
            }
            else if (c is TextColumn x)
            {
                for (var i = 0; i < t.RowCount; i++) check += x.Values[i]?.Length ?? -1;
            }
        }
        return (t.RowCount, check);
    }

    private static (long Rows, double Check) ParseKiln(string file, ColumnRequest[] requests)
    {
        using var reader = CsvTableReader.Open(file, requests);
        long rows = 0;
        double check = 0;
        while (true)
        {
            var t = reader.ReadBatch(Chunk);
            if (t.RowCount == 0) break;
            var (r, c) = Summarise(t);
            rows += r;
            check += c;
        }
        return (rows, check);
    }

    /// <summary>The same columns as Kiln's reader builds, filled from a library's cell spans.</summary>
    private sealed class Columns(ColumnRequest[] requests)
    {
        private readonly Dictionary<string, string>[] _interned = [.. requests.Select(_ => new Dictionary<string, string>(StringComparer.Ordinal))];
        private double[][] _numeric = [.. requests.Select(r => r.Type == ColumnType.Numeric ? new double[Chunk] : [])];
        private string?[][] _text = [.. requests.Select(r => r.Type == ColumnType.Text ? new string?[Chunk] : [])];
        public int Rows;

        public void Set(int slot, ReadOnlySpan<char> cell)
        {
            if (requests[slot].Type == ColumnType.Numeric)
            {
                if (!NumericColumn.TryParseCell(cell, out _numeric[slot][Rows])) throw new InvalidOperationException($"not a number: {cell}");
            }
            else
            {
                _text[slot][Rows] = cell.IsEmpty ? null : Intern(slot, cell);
            }
        }

        public void SetNumber(int slot, double value) => _numeric[slot][Rows] = value;

        private string Intern(int slot, ReadOnlySpan<char> cell)
        {
            var lookup = _interned[slot].GetAlternateLookup<ReadOnlySpan<char>>();
            if (lookup.TryGetValue(cell, out var s)) return s;
            s = cell.ToString();
            if (_interned[slot].Count < 100_000) _interned[slot][s] = s;
            return s;
        }

        public DataTable Take()
        {
            var t = new DataTable(Rows);
            for (var r = 0; r < requests.Length; r++)
                t.Add(requests[r].Type == ColumnType.Numeric ? new NumericColumn(requests[r].Name, _numeric[r]) : new TextColumn(requests[r].Name, _text[r]));
            _numeric = [.. requests.Select(r => r.Type == ColumnType.Numeric ? new double[Chunk] : [])];
            _text = [.. requests.Select(r => r.Type == ColumnType.Text ? new string?[Chunk] : [])];
            Rows = 0;
            return t;
        }
    }

    private static (long Rows, double Check) ParseSep(string file, ColumnRequest[] requests)
    {
        using var reader = Sep.Reader(o => o with { HasHeader = true, Unescape = true, DisableColCountCheck = true }).FromFile(file);
        var slots = requests.Select(r => reader.Header.IndexOf(r.Name)).ToArray();
        var columns = new Columns(requests);
        long rows = 0;
        double check = 0;
        foreach (var row in reader)
        {
            for (var s = 0; s < slots.Length; s++) columns.Set(s, row[slots[s]].Span);
            if (++columns.Rows == Chunk)
            {
                var (r, c) = Summarise(columns.Take());
                rows += r;
                check += c;
            }
        }
        var (r2, c2) = Summarise(columns.Take());
        return (rows + r2, check + c2);
    }

    /// <summary>Sep with its own number parser (csFastFloat) for cells that are plain decimal numbers, Kiln's rule for the rest.</summary>
    private static (long Rows, double Check) ParseSepFastFloat(string file, ColumnRequest[] requests)
    {
        using var reader = Sep.Reader(o => o with { HasHeader = true, Unescape = true, DisableColCountCheck = true }).FromFile(file);
        var slots = requests.Select(r => reader.Header.IndexOf(r.Name)).ToArray();
        var numeric = requests.Select(r => r.Type == ColumnType.Numeric).ToArray();
        var columns = new Columns(requests);
        long rows = 0;
        double check = 0;
        foreach (var row in reader)
        {
            for (var s = 0; s < slots.Length; s++)
            {
                var col = row[slots[s]];
                if (numeric[s] && NumericColumn.IsPlainDecimal(col.Span) && col.TryParse<double>() is { } v) columns.SetNumber(s, v);
                else columns.Set(s, col.Span);
            }
            if (++columns.Rows == Chunk)
            {
                var (r, c) = Summarise(columns.Take());
                rows += r;
                check += c;
            }
        }
        var (r2, c2) = Summarise(columns.Take());
        return (rows + r2, check + c2);
    }

    private static (long Rows, double Check) ParseSylvan(string file, ColumnRequest[] requests)
    {
        using var reader = CsvDataReader.Create(file, new CsvDataReaderOptions { HasHeaders = true, BufferSize = 1 << 16 });
        var slots = requests.Select(r => reader.GetOrdinal(r.Name)).ToArray();
        var columns = new Columns(requests);
        long rows = 0;
        double check = 0;
        while (reader.Read())
        {
            for (var s = 0; s < slots.Length; s++) columns.Set(s, reader.GetFieldSpan(slots[s]));
            if (++columns.Rows == Chunk)
            {
                var (r, c) = Summarise(columns.Take());
                rows += r;
                check += c;
            }
        }
        var (r2, c2) = Summarise(columns.Take());
        return (rows + r2, check + c2);
    }
}
