using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.PredictionLog;
using Kiln.Monitoring.Windows;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Windows;

/// <summary>Logs written by Kiln's own log writer (as kiln serve writes them), read through Kiln's Parquet reader.</summary>
public sealed class KilnWrittenLogTests : IDisposable
{
    private static readonly DateTime Start = new(2026, 11, 26, 6, 0, 0, DateTimeKind.Utc);
    private readonly TempDir _dir = new("kiln-window-kiln-log");

    public void Dispose() => _dir.Dispose();

    private string Log => _dir.File("log");

    /// <summary>Two row groups of 300 rows a second apart: the first from 06:00:00, the second from 06:05:00.</summary>
    private string Write()
    {
        var dir = Path.Combine(Log, "model=risk", "version=3", "date=2026-11-26");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "part-1.parquet");
        ParquetColumn[] columns =
        [
            new(PredictionLogLayout.RequestId, ParquetColumnKind.Text, true),
            new(PredictionLogLayout.Timestamp, ParquetColumnKind.Timestamp, false),
            new(PredictionLogLayout.Row, ParquetColumnKind.Int32, false),
            new(PredictionLogLayout.InputPrefix + "x", ParquetColumnKind.Double, true),
            new(PredictionLogLayout.InputPrefix + "color", ParquetColumnKind.Text, true),
            new(PredictionLogLayout.Prediction, ParquetColumnKind.Text, true),
            new(PredictionLogLayout.Value, ParquetColumnKind.Double, false),
            new(PredictionLogLayout.ProbabilityPrefix + "a", ParquetColumnKind.Double, true),
        ];
        using var stream = File.Create(path);
        using var writer = new ParquetTableWriter(stream, columns);
        for (var g = 0; g < 2; g++)
        {
            const int N = 300;
            writer.BeginRowGroup(N);
            writer.WriteText([.. Enumerable.Range(0, N).Select(i => (string?)$"g{g}-r{i}")]);
            writer.WriteTimestamp([.. Enumerable.Range(0, N).Select(i => Start.AddMinutes(5 * g).AddSeconds(i))]);
            writer.WriteInt32([.. Enumerable.Range(0, N).Select(i => i % 3)]);
            writer.WriteDouble([.. Enumerable.Range(0, N).Select(i => i % 7 == 0 ? double.NaN : i * 0.5 + g)]);
            writer.WriteText([.. Enumerable.Range(0, N).Select(i => i % 11 == 0 ? null : i % 2 == 0 ? "red" : "blue")]);
            writer.WriteText([.. Enumerable.Range(0, N).Select(i => (string?)(i % 4 == 0 ? "yes" : "no"))]);
            writer.WriteDouble([.. Enumerable.Range(0, N).Select(i => i / 1000.0)]);
            writer.WriteDouble([.. Enumerable.Range(0, N).Select(i => i % 5 == 0 ? double.NaN : 0.25)]);
            writer.EndRowGroup();
        }
        writer.Finish();
        return path;
    }

    [Fact]
    public async Task A_log_from_Kilns_writer_reads_back_value_for_value_with_missing_inputs_as_NaN_and_null()
    {
        Write();
        var from = Start.AddSeconds(100);
        var to = Start.AddMinutes(5).AddSeconds(50);
        var window = await PredictionLogReader.ReadAllAsync(new LogWindow(Log, "risk", from, to));

        Assert.Equal(200 + 50, window.Rows);
        Assert.Equal("3", window.Version);
        var x = window.Inputs.Numeric("x").Values;
        var color = window.Inputs.Text("color").Values;
        var a = window.Probabilities.Single(p => p.Key == "a").Value;
        for (var k = 0; k < window.Rows; k++)
        {
            var g = k < 200 ? 0 : 1;
            var i = g == 0 ? k + 100 : k - 200;
            Assert.Equal($"g{g}-r{i}", window.RequestIds[k]);
            Assert.Equal(Start.AddMinutes(5 * g).AddSeconds(i), window.Timestamps[k]);
            Assert.Equal(DateTimeKind.Utc, window.Timestamps[k].Kind);
            Assert.Equal(i % 3, window.RowIndexes[k]);
            Assert.Equal(i % 7 == 0 ? double.NaN : i * 0.5 + g, x[k]);
            Assert.Equal(i % 11 == 0 ? null : i % 2 == 0 ? "red" : "blue", color[k]);
            Assert.Equal(i % 4 == 0 ? "yes" : "no", window.Predictions[k]);
            Assert.Equal(i / 1000.0, window.Values[k]);
            Assert.Equal(i % 5 == 0 ? double.NaN : 0.25, a[k]);
        }
    }

    [Fact]
    public async Task A_row_group_whose_timestamps_miss_the_window_is_never_decoded()
    {
        var path = Write();
        // Damage the first row group's input_x pages: a window that needs that group fails naming the file, column
        // and group; a window after it never decodes it (its timestamp statistics say it lies outside) and reads fine.
        long offset;
        // Where the chunk's first data page starts, as DuckDB (an independent reader) reports it.
        using (var duck = new DuckDB.NET.Data.DuckDBConnection("DataSource=:memory:"))
        {
            duck.Open();
            using var command = duck.CreateCommand();
            command.CommandText = $"SELECT data_page_offset FROM parquet_metadata('{path}') WHERE row_group_id = 0 AND path_in_schema = 'input_x'";
            offset = Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        }
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            stream.Position = offset;
            stream.Write(Enumerable.Repeat((byte)0xFF, 24).ToArray());
        }

        var after = await PredictionLogReader.ReadAllAsync(new LogWindow(Log, "risk", Start.AddMinutes(5), Start.AddMinutes(6)));
        Assert.Equal(60, after.Rows);
        Assert.Equal("g1-r0", after.RequestIds[0]);

        var e = await Assert.ThrowsAsync<KilnException>(() => PredictionLogReader.ReadAllAsync(new LogWindow(Log, "risk", Start, Start.AddMinutes(1))));
        Assert.Contains("part-1.parquet", e.Message);
        Assert.Contains("input_x", e.Message);
        Assert.Contains("row group 0", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
