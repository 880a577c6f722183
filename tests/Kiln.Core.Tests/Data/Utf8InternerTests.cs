using System.Text;
using Kiln.Core.Data;

namespace Kiln.Core.Tests.Data;

/// <summary>The intern table behind Kiln's Parquet text decoder: equal bytes give one string, and it never changes a value.</summary>
public sealed class Utf8InternerTests
{
    [Fact]
    public void Equal_labels_share_one_string_and_every_value_decodes_exactly()
    {
        var interner = new Utf8Interner();
        var rng = new Random(3);
        // Short ASCII and non-ASCII labels, 8-byte boundaries, a long value past the intern limit, and more distinct
        // values than the table keeps (the rest are decoded without interning).
        string[] early = ["", "a", "abcdefgh", "abcdefghi", "ü", "naïve café 🚀", new('x', 64)];
        var labels = early.Concat(Enumerable.Range(0, 70_000).Select(i => $"id-{i}")).ToList();
        labels.Add(new string('y', 65));
        var first = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var round = 0; round < 3; round++)
        {
            foreach (var label in round == 0 ? labels : [.. labels.OrderBy(_ => rng.Next())])
            {
                var s = interner.Get(Encoding.UTF8.GetBytes(label));
                Assert.Equal(label, s);
                // Seen before the table filled up: the same object every time.
                if (!first.TryAdd(label, s) && early.Contains(label)) Assert.Same(first[label], s);
            }
        }
    }
}
