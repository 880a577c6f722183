using System.Text.Json.Nodes;
using Kiln.Vectors.Filtering;

namespace Kiln.Vectors.Tests;

public sealed class FilterTests
{
    private static readonly List<(PointId Id, JsonObject Payload)> Points =
        [.. Enumerable.Range(0, 1000).Select(i => (PointId.Of((ulong)i), TestData.Payload(i)))];

    private static int Count(string json)
    {
        var f = PointFilter.Parse(JsonNode.Parse(json))!;
        return Points.Count(p => f.Matches(p.Id, p.Payload));
    }

    // Expected counts follow from TestData.Payload over ids 0..999: tag "ten" on i % 10 == 0 (100 points),
    // Berlin on i % 3 == 0 (334), colors non-empty on i % 4 == 0 (250), price = i / 2.
    [Theory]
    [InlineData("""{"must":[{"key":"tag","match":{"value":"ten"}}]}""", 100)]
    [InlineData("""{"must_not":[{"key":"tag","match":{"value":"ten"}}]}""", 900)]
    [InlineData("""{"should":[{"key":"tag","match":{"value":"ten"}},{"key":"address.city","match":{"value":"Berlin"}}]}""", 100 + 334 - 34)]
    [InlineData("""{"must":[{"key":"address.city","match":{"value":"Berlin"}}]}""", 334)]
    [InlineData("""{"must":[{"key":"group","match":{"any":[1,2,3]}}]}""", 30)]
    [InlineData("""{"must":[{"key":"group","match":{"except":[1,2,3]}}]}""", 970)]
    [InlineData("""{"must":[{"key":"price","range":{"gte":10,"lt":20}}]}""", 20)]
    [InlineData("""{"must":[{"key":"colors","match":{"value":"red"}}]}""", 250)]
    [InlineData("""{"must":[{"is_empty":{"key":"colors"}}]}""", 750)]
    [InlineData("""{"must":[{"is_empty":{"key":"missing"}}]}""", 1000)]
    [InlineData("""{"must":[{"has_id":[1,2,3,5000]}]}""", 3)]
    [InlineData("""{"must":[{"must_not":[{"key":"tag","match":{"value":"ten"}}]},{"key":"group","match":{"value":10}}]}""", 0)]
    [InlineData("""{"must":[{"key":"address.city","match":{"value":"Berlin"}}],"must_not":[{"key":"group","match":{"value":0}}]}""", 334 - 4)]
    public void Qdrant_filter_semantics(string filter, int expected) => Assert.Equal(expected, Count(filter));

    [Fact]
    public void Datetime_ranges_compare_instants()
    {
        var p = new JsonObject { ["at"] = "2026-03-01T12:00:00Z" };
        var inside = PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"at","range":{"gte":"2026-03-01T00:00:00Z","lt":"2026-03-02T00:00:00+00:00"}}]}"""))!;
        var outside = PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"at","range":{"gt":"2026-03-01T13:00:00+02:00"}}]}"""))!;
        Assert.True(inside.Matches(PointId.Of(1), p));
        Assert.True(outside.Matches(PointId.Of(1), p)); // 13:00+02:00 is 11:00Z, before 12:00Z
    }

    [Theory]
    [InlineData("""{"must":[{"key":"a","range":{"gt":"soon"}}]}""", "filter.must[0].range.gt")]
    [InlineData("""{"must":[{"key":"a"}]}""", "filter.must[0]")]
    [InlineData("""{"must":[{"key":"a","match":{"any":"x"}}]}""", "filter.must[0].match.any")]
    [InlineData("""{"must":[{"key":"a","match":{"except":"x"}}]}""", "filter.must[0].match.except")]
    [InlineData("""{"must":[{"key":"a","match":{"text":5}}]}""", "filter.must[0].match.text")]
    [InlineData("""{"must_not":[{"key":"a","match":{"except":[{"x":1}]}}]}""", "filter.must_not[0].match.except[0]")]
    [InlineData("""{"must":[{"key":"a","match":{"like":"x"}}]}""", "filter.must[0].match")]
    [InlineData("""{"mustnt":[]}""", "filter.mustnt")]
    [InlineData("""{"must":[{"has_id":[-1]}]}""", "filter.must[0].has_id[0]")]
    [InlineData("""[1]""", "filter")]
    public void Malformed_filters_name_the_field(string filter, string field)
    {
        var e = Assert.Throws<VectorInputException>(() => PointFilter.Parse(JsonNode.Parse(filter)));
        Assert.StartsWith(field + ":", e.Message, StringComparison.Ordinal);
    }
}
