namespace Kiln.Scoring.Trees;

/// <summary>
/// Rows laid out for <see cref="PackedForest.Sum"/>: <see cref="Stride"/> floats a row, the features then a slot that
/// stays 0 (<see cref="Row"/> never exposes it).
/// </summary>
public sealed class RowBlock
{
    private readonly float[] _data;

    public RowBlock(int featureCount, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(featureCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        FeatureCount = featureCount;
        Capacity = capacity;
        _data = new float[checked(capacity * Stride)];
    }

    public int FeatureCount { get; }

    public int Stride => FeatureCount + 1;

    public int Capacity { get; }

    /// <summary>The features of row <paramref name="i"/>, to fill.</summary>
    public Span<float> Row(int i) => _data.AsSpan(i * Stride, FeatureCount);

    public ReadOnlySpan<float> Data => _data;
}
