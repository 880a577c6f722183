using System.Globalization;
using System.Text.Json.Nodes;
using Kiln.Testing;
using Kiln.Vectors.Filtering;
using Xunit.Abstractions;

namespace Kiln.Vectors.Tests;

/// <summary>Float, bool and datetime payload indexes, range conditions and should clauses through the indexes,
/// on both search paths, against a brute-force oracle that decides membership from how the payloads were made.</summary>
public sealed class PayloadIndexTests(ITestOutputHelper output) : IDisposable
{
    private const int N = 20_000;
    private static readonly DateTime Start = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    private readonly TempDir _dir = new("kiln-vectors-index");

    public void Dispose() => _dir.Dispose();

    /// <summary>price spreads 0–199.99 over the points, flag is true for one point in ten, when is a minute apart per point.</summary>
    private static double Price(int i) => i * 7919 % N * 0.01;

    private static bool Flag(int i) => i % 10 == 3;

    private static JsonObject Payload(int i) => new()
    {
        ["group"] = i % 100,
        ["price"] = Price(i),
        ["flag"] = Flag(i),
        ["when"] = Start.AddMinutes(i).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
    };

    [Fact]
    public async Task Float_bool_and_datetime_indexes_answer_ranges_and_should_on_both_paths()
    {
        var vectors = TestData.Latent(N, 32, 8, seed: 11);
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 32, Distance = Distance.Euclid });
            await c.CreatePayloadIndexAsync("price", PayloadSchemaType.Float);
            await c.CreatePayloadIndexAsync("flag", PayloadSchemaType.Bool);
            await c.CreatePayloadIndexAsync("when", PayloadSchemaType.Datetime);
            c.Upsert([.. Enumerable.Range(0, N).Select(i => new PointInput(PointId.Of((ulong)i), vectors[i], Payload(i)))]);
            await c.CreatePayloadIndexAsync("group", PayloadSchemaType.Integer);
            // Point 13 loses its flag and moves to 1 January; point 23 goes: the indexes follow both (and survive a reopen).
            var moved = Payload(13);
            moved["flag"] = false;
            moved["when"] = "2026-01-01T00:00:30Z";
            c.Upsert([new PointInput(PointId.Of(13), vectors[13], moved)]);
            c.Delete([PointId.Of(23)]);
        }
        bool Live(int i) => i != 23;
        bool FlagNow(int i) => i != 13 && Flag(i);
        DateTime When(int i) => i == 13 ? Start.AddSeconds(30) : Start.AddMinutes(i);

        var cases = new (string Name, string Filter, Func<int, bool> Oracle, SearchPath Path)[]
        {
            // About 10% of the points: the graph walk, refusing slots outside the index's candidates.
            ("float range", """{"must":[{"key":"price","range":{"gte":50,"lt":70}}]}""", i => Price(i) >= 50 && Price(i) < 70, SearchPath.FilteredGraph),
            ("bool match", """{"must":[{"key":"flag","match":{"value":true}}]}""", FlagNow, SearchPath.FilteredGraph),
            // About 1%: the exact scan over the index's candidates.
            ("datetime range", """{"must":[{"key":"when","range":{"gte":"2026-01-04T11:20:00Z","lt":"2026-01-04T14:40:00+00:00"}}]}""",
                i => When(i) >= new DateTime(2026, 1, 4, 11, 20, 0, DateTimeKind.Utc) && When(i) < new DateTime(2026, 1, 4, 14, 40, 0, DateTimeKind.Utc), SearchPath.ExactScan),
            ("should of an integer match and a float range", """{"should":[{"key":"group","match":{"value":5}},{"key":"price","range":{"lt":1}}]}""",
                i => i % 100 == 5 || Price(i) < 1, SearchPath.ExactScan),
            // A range inside a nested filter, with a bool: the smaller bound (the week, about half) picks the candidates.
            ("nested datetime range and bool", """{"must":[{"must":[{"key":"when","range":{"gte":"2026-01-04T00:00:00Z","lt":"2026-01-11T00:00:00Z"}}]},{"key":"flag","match":{"value":false}}]}""",
                i => When(i) >= Start.AddDays(3) && When(i) < Start.AddDays(10) && !FlagNow(i), SearchPath.FilteredGraph),
        };
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            var c = store.Get("v");
            var queries = TestData.Latent(20, 32, 8, seed: 12);
            foreach (var (name, json, oracle, path) in cases)
            {
                var filter = PointFilter.Parse(JsonNode.Parse(json))!;
                var matching = Enumerable.Range(0, N).Where(i => Live(i) && oracle(i)).ToList();
                Assert.Equal(matching.Count, c.CountMatching(filter));
                double total = 0;
                foreach (var q in queries)
                {
                    var hits = c.Search(new SearchRequest(q, 10) { Filter = filter });
                    Assert.Equal(path, c.LastSearchPath);
                    Assert.Equal(SelectivityEstimate.PayloadIndex, c.LastEstimate);
                    Assert.Equal(10, hits.Count);
                    Assert.All(hits, h => Assert.True(Live((int)h.Point.Id.Number) && oracle((int)h.Point.Id.Number), $"{name}: {h.Point.Id} does not match"));
                    // Oracle: the Euclidean distance of every matching point in double precision, best ten.
                    var exact = matching
                        .OrderBy(i => Math.Sqrt(vectors[i].Select((x, d) => ((double)x - q[d]) * ((double)x - q[d])).Sum()))
                        .Take(10).Select(i => (ulong)i).ToHashSet();
                    total += hits.Count(h => exact.Contains(h.Point.Id.Number)) / 10.0;
                }
                var recall = total / queries.Length;
                output.WriteLine($"{name} ({matching.Count} points, {path}): recall@10 = {recall:F4}");
                Assert.True(recall >= (path == SearchPath.ExactScan ? 1.0 : 0.95), $"{name}: recall@10 {recall}");
            }

            // A should with a condition no index answers (a text match) leaves the estimate to sampling.
            var unindexed = PointFilter.Parse(JsonNode.Parse("""{"should":[{"key":"flag","match":{"value":true}},{"key":"when","match":{"text":"T00:"}}]}"""))!;
            c.Search(new SearchRequest(queries[0], 10) { Filter = unindexed });
            Assert.Equal(SelectivityEstimate.Sample, c.LastEstimate);
            // A range on a keyword-only key, or a date range on the float index, is not answered by those indexes.
            var wrongKind = PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"price","range":{"gte":"2026-01-01T00:00:00Z"}}]}"""))!;
            c.Search(new SearchRequest(queries[0], 10) { Filter = wrongKind });
            Assert.Equal(SelectivityEstimate.Sample, c.LastEstimate);
            Assert.Equal(0, c.CountMatching(wrongKind));
        }
    }
}
