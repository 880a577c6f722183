using Kiln.Core.Data;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Drift;

namespace Kiln.Monitoring.Windows;

/// <summary>
/// The current side of a drift comparison, built batch by batch: the rows themselves while there are at most
/// <c>maxExactRows</c> of them (every test exact), then a profile shaped like the reference (<see cref="DatasetProfile.NewEmptyLike"/>,
/// bounded memory however many rows follow; tests on samples use its bottom-k sample).
/// Columns are taken under the reference's names and kinds; columns the reference lacks are remembered for the report.
/// </summary>
public sealed class CurrentData
{
    private readonly DatasetProfile _reference;
    private readonly int _maxExactRows;
    private readonly ulong _seed;
    private readonly List<DataTable> _tables = [];
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
    private readonly List<(string Name, ColumnKind Kind)> _extra = [];
    private DatasetProfile? _profile;

    public CurrentData(DatasetProfile reference, int maxExactRows = 100_000, ulong seed = 0x4B696C6E)
    {
        _reference = reference;
        _maxExactRows = Math.Max(0, maxExactRows);
        _seed = seed;
    }

    public long Rows { get; private set; }

    /// <summary>True while every row is kept (the drift tests see all of them).</summary>
    public bool Exact => _profile is null;

    public void Add(DataTable batch)
    {
        foreach (var c in batch.Columns)
        {
            if (_reference.Find(c.Name) is null)
            {
                if (!_extra.Exists(e => e.Name == c.Name)) _extra.Add((c.Name, c is NumericColumn ? ColumnKind.Numeric : ColumnKind.Categorical));
            }
            else _seen.Add(c.Name);
        }
        var table = Shape(batch);
        Rows += table.RowCount;
        if (_profile is null && Rows <= _maxExactRows)
        {
            _tables.Add(table);
            return;
        }
        if (_profile is null)
        {
            _profile = _reference.NewEmptyLike(_seed);
            foreach (var t in _tables) _profile.Add(t);
            _tables.Clear();
        }
        _profile.Add(table);
    }

    /// <summary>The batch with the reference's columns, in its kinds; a column the batch lacks is all missing.</summary>
    private DataTable Shape(DataTable batch)
    {
        var n = batch.RowCount;
        var table = new DataTable(n);
        foreach (var r in _reference.Columns)
        {
            var c = batch.Find(r.Name);
            if (c is TimestampColumn times) c = times.ToText(); // profiles hold timestamps as their ISO 8601 text
            if (r.Kind == ColumnKind.Numeric)
            {
                switch (c)
                {
                    case NumericColumn nc: table.Add(nc.Values.Length == n ? nc : new NumericColumn(r.Name, nc.Values[..n])); break;
                    case TextColumn tc:
                        var d = new double[n];
                        for (var i = 0; i < n; i++) d[i] = NumericColumn.ParseOrNaN(tc.Values[i]);
                        table.Add(new NumericColumn(r.Name, d));
                        break;
                    default:
                        var missing = new double[n];
                        Array.Fill(missing, double.NaN);
                        table.Add(new NumericColumn(r.Name, missing));
                        break;
                }
            }
            else
            {
                switch (c)
                {
                    case TextColumn tc: table.Add(tc.Values.Length == n ? tc : new TextColumn(r.Name, tc.Values[..n])); break;
                    case NumericColumn nc:
                        var s = new string?[n];
                        for (var i = 0; i < n; i++) s[i] = double.IsNaN(nc.Values[i]) ? null : nc.Values[i].ToString("R", System.Globalization.CultureInfo.InvariantCulture);
                        table.Add(new TextColumn(r.Name, s));
                        break;
                    default: table.Add(new TextColumn(r.Name, new string?[n])); break;
                }
            }
        }
        return table;
    }

    /// <summary>The rows kept so far as one table (only while <see cref="Exact"/>), with the columns seen.</summary>
    public DataTable? Table()
    {
        if (_profile is not null) return null;
        var table = _tables.Count == 0 ? new DataTable(0) : _tables.Count == 1 ? _tables[0] : DataTable.Concat(_tables);
        var result = new DataTable(table.RowCount);
        foreach (var c in table.Columns) if (_seen.Contains(c.Name)) result.Add(c);
        return result;
    }

    /// <summary>Compares with the reference: on the rows while exact, else on the profile.</summary>
    public DriftReport Compare(DriftOptions? options = null)
    {
        DriftReport report;
        if (_profile is null) report = DriftCalculator.Compare(_reference, Table()!, options);
        else
        {
            _profile.Columns.RemoveAll(c => !_seen.Contains(c.Name));
            _profile.Complete();
            report = DriftCalculator.Compare(_reference, _profile, options);
        }
        foreach (var (name, kind) in _extra)
        {
            if (options?.Ignore.Contains(name) == true) continue;
            report.AddColumnNotInReference(name, kind);
        }
        return report;
    }
}
