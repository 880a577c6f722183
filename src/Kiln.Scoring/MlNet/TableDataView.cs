using Kiln.Core.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Kiln.Scoring.MlNet;

/// <summary>
/// An ML.NET <see cref="IDataView"/> over a Kiln <see cref="DataTable"/> without copying:
/// numeric columns appear as Single, text columns as text, and extra columns as given.
/// </summary>
public sealed class TableDataView : IDataView
{
    private readonly Delegate[] _getters;
    private readonly long _rows;

    private TableDataView(DataViewSchema schema, Delegate[] getters, long rows)
    {
        Schema = schema;
        _getters = getters;
        _rows = rows;
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    /// <summary>A view of the table's columns plus extra computed columns (labels): each getter is a Func&lt;long, T&gt; of the row.</summary>
    public static TableDataView Create(DataTable table, params (string Name, DataViewType Type, Delegate Getter)[] extra)
    {
        var builder = new DataViewSchema.Builder();
        var getters = new List<Delegate>();
        foreach (var c in table.Columns)
        {
            // A timestamp is seen as the ISO 8601 text Kiln trains and scores categorical inputs on.
            var column = c is TimestampColumn s ? s.ToText() : c;
            switch (column)
            {
                case NumericColumn n:
                    builder.AddColumn(n.Name, NumberDataViewType.Single);
                    var nv = n.Values;
                    getters.Add(new Func<long, float>(row => (float)nv[row]));
                    break;
                case TextColumn t:
                    builder.AddColumn(t.Name, TextDataViewType.Instance);
                    var tv = t.Values;
                    getters.Add(new Func<long, ReadOnlyMemory<char>>(row => (tv[row] ?? string.Empty).AsMemory()));
                    break;
            }
        }
        foreach (var (name, type, getter) in extra)
        {
            builder.AddColumn(name, type);
            getters.Add(getter);
        }
        return new TableDataView(builder.ToSchema(), [.. getters], table.RowCount);
    }

    public long? GetRowCount() => _rows;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(this);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) => [new Cursor(this)];

    private sealed class Cursor(TableDataView view) : DataViewRowCursor
    {
        private long _position = -1;

        public override long Position => _position;

        public override long Batch => 0;

        public override DataViewSchema Schema => view.Schema;

        public override bool MoveNext()
        {
            if (_position + 1 < view._rows) { _position++; return true; }
            _position = view._rows;
            return false;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

        public override bool IsColumnActive(DataViewSchema.Column column) => true;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            var source = (Func<long, TValue>)view._getters[column.Index];
            ValueGetter<TValue> getter = (ref TValue value) => value = source(_position);
            return getter;
        }
    }
}
