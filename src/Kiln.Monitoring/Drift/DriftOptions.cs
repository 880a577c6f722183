namespace Kiln.Monitoring.Drift;

/// <summary>The test and threshold for one column, overriding the defaults.</summary>
public sealed class ColumnDriftOptions
{
    /// <summary>The test to run; null chooses as Evidently does (see <see cref="StatTests.Default"/>).</summary>
    public StatTest? Test { get; init; }

    /// <summary>The drift threshold; null uses the test's default (0.05 for p-values, 0.1 for distances).</summary>
    public double? Threshold { get; init; }
}

/// <summary>How drift is decided: tests and thresholds per column, and the share of drifted columns that makes dataset drift.</summary>
public sealed class DriftOptions
{
    /// <summary>The default options.</summary>
    public static DriftOptions Default { get; } = new();

    /// <summary>Dataset drift when drifted features / tested features ≥ this (default 0.5).</summary>
    public double DriftShare { get; init; } = 0.5;

    /// <summary>A test for every column (per-column options win).</summary>
    public StatTest? Test { get; init; }

    /// <summary>A threshold for every column (per-column options win).</summary>
    public double? Threshold { get; init; }

    /// <summary>Bins for numeric columns whose reference histogram is missing (never the case for Kiln profiles).</summary>
    public int Bins { get; init; } = Statistics.Binning.DefaultBins;

    /// <summary>Per-column overrides, by column name.</summary>
    public IReadOnlyDictionary<string, ColumnDriftOptions> Columns { get; init; } = new Dictionary<string, ColumnDriftOptions>(StringComparer.Ordinal);

    /// <summary>Columns to leave out (ids, timestamps, the target).</summary>
    public IReadOnlySet<string> Ignore { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    internal (StatTest? Test, double? Threshold) For(string column)
    {
        Columns.TryGetValue(column, out var c);
        return (c?.Test ?? Test, c?.Threshold ?? Threshold);
    }
}
