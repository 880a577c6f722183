using System.Text.Json.Nodes;
using Kiln.Testing;
using Kiln.Vectors.Filtering;
using Xunit.Abstractions;

namespace Kiln.Vectors.Tests;

/// <summary>Match on a float index, match except, full-text match on a text index and on a keyword field, and must_not
/// on a field without an index: counted and searched on both paths, against a brute-force oracle that decides
/// membership from how the payloads were made (the word and colour choices below), not from Kiln's filter.</summary>
public sealed class QdrantConditionTests(ITestOutputHelper output) : IDisposable
{
    private const int N = 20_000;
    private static readonly string[] Colors = ["red", "green", "blue", "black", "white", "grey", "pink"];
    private static readonly string[] First = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India", "Juliet", "Kilo", "Lima", "Mike"];
    private static readonly string[] Second = ["north", "south", "east", "west", "up", "down", "left", "right", "in", "out", "near", "far", "high", "low", "fast", "slow", "beta"];
    private readonly TempDir _dir = new("kiln-vectors-conditions");

    public void Dispose() => _dir.Dispose();

    /// <summary>score: 40 values 0, 0.25, ..., 9.75 (a float index); each value on 2.5% of the points.</summary>
    private static double Score(int i) => i * 37 % 40 * 0.25;

    /// <summary>color: missing on every 11th point, two colours (an array) on every 5th of the rest, else one.</summary>
    private static string[] ColorsOf(int i) =>
        i % 11 == 0 ? [] : i % 5 == 0 ? [Colors[i * 13 % 7], Colors[i / 5 * 3 % 7]] : [Colors[i * 13 % 7]];

    private static int FirstWord(int i) => i % 13;

    private static int SecondWord(int i) => i * 7 % 17;

    /// <summary>"Alpha north, the END." style titles: the first word capitalised, the last one upper-case.</summary>
    private static string Title(int i) => $"{First[FirstWord(i)]} {Second[SecondWord(i)]}, the {(i % 2 == 0 ? "END" : "start")}.";

    private static int Bucket(int i) => i % 10;

    private static JsonObject Payload(int i)
    {
        var p = new JsonObject
        {
            ["score"] = Score(i),
            ["title"] = Title(i),
            ["note"] = Title(i),
            ["bucket"] = Bucket(i),
        };
        var colors = ColorsOf(i);
        if (colors.Length == 1) p["color"] = colors[0];
        else if (colors.Length == 2) p["color"] = new JsonArray(colors[0], colors[1]);
        return p;
    }

    [Fact]
    public async Task Float_match_except_text_and_unindexed_must_not_agree_with_the_oracle_on_both_paths()
    {
        var vectors = TestData.Latent(N, 32, 8, seed: 21);
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 32, Distance = Distance.Euclid });
            await c.CreatePayloadIndexAsync("score", PayloadSchemaType.Float);
            await c.CreatePayloadIndexAsync("title", PayloadSchemaType.Text);
            c.Upsert([.. Enumerable.Range(0, N).Select(i => new PointInput(PointId.Of((ulong)i), vectors[i], Payload(i)))]);
            await c.CreatePayloadIndexAsync("color", PayloadSchemaType.Keyword);
            await c.CreatePayloadIndexAsync("note", PayloadSchemaType.Keyword);
            // Point 26 is retitled after the indexes exist: its old words leave the text index and its new ones enter it.
            var retitled = Payload(26);
            retitled["title"] = "Zulu omega";
            c.Upsert([new PointInput(PointId.Of(26), vectors[26], retitled)]);
        }
        string TitleNow(int i) => i == 26 ? "Zulu omega" : Title(i);
        bool HasWords(int i, params string[] words)
        {
            // Oracle for a text index: the title's words as generated, compared without case.
            var own = TitleNow(i).Split([' ', ',', '.'], StringSplitOptions.RemoveEmptyEntries).Select(w => w.ToLowerInvariant()).ToHashSet();
            return words.All(own.Contains);
        }

        var cases = new (string Name, string Filter, Func<int, bool> Oracle, SearchPath Path, SelectivityEstimate Estimate)[]
        {
            // A match on the float index: one value (2.5%, under full_scan_threshold: the exact scan over the index's points) ...
            ("float match value", """{"must":[{"key":"score","match":{"value":2.5}}]}""", i => Score(i) == 2.5, SearchPath.ExactScan, SelectivityEstimate.PayloadIndex),
            // ... and four values (10%: the graph walk, refusing points outside the index's candidates).
            ("float match any", """{"must":[{"key":"score","match":{"any":[0.25,0.5,0.75,1.0]}}]}""", i => Score(i) is 0.25 or 0.5 or 0.75 or 1.0, SearchPath.FilteredGraph, SelectivityEstimate.PayloadIndex),
            // except: some colour outside the list (Qdrant: a point without a colour holds no value, so it does not match).
            ("match except", """{"must":[{"key":"color","match":{"except":["red","black","green","blue","white"]}}]}""",
                i => ColorsOf(i).Any(x => x is "grey" or "pink"), SearchPath.FilteredGraph, SelectivityEstimate.Sample),
            // must_not of except: every colour the point has is in the list, or it has none.
            ("must_not except", """{"must_not":[{"key":"color","match":{"except":["red"]}}]}""",
                i => ColorsOf(i).All(x => x == "red"), SearchPath.FilteredGraph, SelectivityEstimate.Sample),
            // Full text on the text index: both words, any case, in any order; 1 in 221 points.
            ("text index, two words", """{"must":[{"key":"title","match":{"text":"BETA alpha"}}]}""",
                i => HasWords(i, "alpha", "beta"), SearchPath.ExactScan, SelectivityEstimate.PayloadIndex),
            ("text index, one word", """{"must":[{"key":"title","match":{"text":"charlie"}}]}""",
                i => HasWords(i, "charlie"), SearchPath.FilteredGraph, SelectivityEstimate.PayloadIndex),
            // The same text on the keyword-indexed copy is Qdrant's exact substring match: case and spacing count.
            ("text on a keyword field", """{"must":[{"key":"note","match":{"text":"Alpha beta, the END"}}]}""",
                i => Title(i).Contains("Alpha beta, the END", StringComparison.Ordinal), SearchPath.ExactScan, SelectivityEstimate.Sample),
            // must_not on bucket, which has no index: by a match any (10% left) and by a range with a keyword match.
            ("must_not any, no index", """{"must_not":[{"key":"bucket","match":{"any":[0,1,2,3,4,5,6,7,8]}}]}""",
                i => Bucket(i) == 9, SearchPath.FilteredGraph, SelectivityEstimate.Sample),
            ("must_not range, no index", """{"must_not":[{"key":"bucket","range":{"gte":1}},{"key":"color","match":{"value":"red"}}]}""",
                i => Bucket(i) == 0 && !ColorsOf(i).Contains("red"), SearchPath.FilteredGraph, SelectivityEstimate.Sample),
        };
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            // Reopened: the float, text and keyword indexes are rebuilt from the snapshot and the log.
            var c = store.Get("v");
            var queries = TestData.Latent(20, 32, 8, seed: 22);
            foreach (var (name, json, oracle, path, estimate) in cases)
            {
                var filter = PointFilter.Parse(JsonNode.Parse(json))!;
                var matching = Enumerable.Range(0, N).Where(oracle).ToList();
                Assert.True(matching.Count >= 10, $"{name}: only {matching.Count} points match");
                Assert.Equal(matching.Count, c.CountMatching(filter));
                var scrolled = c.Scroll(filter, null, N).Points.Select(p => (int)p.Id.Number).ToList();
                Assert.Equal(matching, scrolled);
                double total = 0;
                foreach (var q in queries)
                {
                    var hits = c.Search(new SearchRequest(q, 10) { Filter = filter });
                    Assert.Equal(path, c.LastSearchPath);
                    Assert.Equal(estimate, c.LastEstimate);
                    Assert.Equal(10, hits.Count);
                    Assert.All(hits, h => Assert.True(oracle((int)h.Point.Id.Number), $"{name}: {h.Point.Id} does not match"));
                    // Oracle: the Euclidean distance of every matching point in double precision, best ten.
                    var exact = matching
                        .OrderBy(i => Math.Sqrt(vectors[i].Select((x, d) => ((double)x - q[d]) * ((double)x - q[d])).Sum()))
                        .Take(10).Select(i => (ulong)i).ToHashSet();
                    total += hits.Count(h => exact.Contains(h.Point.Id.Number)) / 10.0;
                }
                var recall = total / queries.Length;
                output.WriteLine($"{name} ({matching.Count} points, {path}, estimate {estimate}): recall@10 = {recall:F4}");
                Assert.True(recall >= (path == SearchPath.ExactScan ? 1.0 : 0.95), $"{name}: recall@10 {recall}");
            }

            // Words, not substrings, on the text index; substrings, not words, without one.
            Assert.Equal(0, c.CountMatching(PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"title","match":{"text":"alph"}}]}"""))));
            Assert.Equal(Enumerable.Range(0, N).Count(i => Title(i).Contains("alph", StringComparison.Ordinal)),
                c.CountMatching(PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"note","match":{"text":"alph"}}]}"""))));
            // The retitled point: found by its new words, no longer by its old ones.
            Assert.Equal(new[] { 26UL }, c.Scroll(PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"title","match":{"text":"omega zulu"}}]}""")), null, 10).Points.Select(p => p.Id.Number));
            Assert.Equal(Enumerable.Range(0, N).Count(i => i != 26 && FirstWord(i) == FirstWord(26)),
                c.CountMatching(PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"title","match":{"text":"WORD"}}]}""".Replace("WORD", First[FirstWord(26)], StringComparison.Ordinal)))));

            // Dropping the text index turns the same condition back into a substring match (case-sensitive: no "charlie").
            await c.DeletePayloadIndexAsync("title");
            var lower = PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"title","match":{"text":"charlie"}}]}"""))!;
            Assert.Equal(0, c.CountMatching(lower));
            Assert.Equal(Enumerable.Range(0, N).Count(i => i != 26 && FirstWord(i) == 2),
                c.CountMatching(PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"title","match":{"text":"Charlie"}}]}"""))));
        }
    }

    [Fact]
    public void Except_follows_qdrant_on_arrays_missing_keys_and_nulls()
    {
        var f = PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"c","match":{"except":["a","b"]}}]}"""))!;
        bool M(string payload) => f.Matches(PointId.Of(1), JsonNode.Parse(payload)!.AsObject());
        Assert.True(M("""{"c":"x"}"""));
        Assert.False(M("""{"c":"a"}"""));
        Assert.True(M("""{"c":["a","x"]}""")); // one element outside the list is enough
        Assert.False(M("""{"c":["a","b"]}"""));
        Assert.False(M("""{}"""));         // a missing key holds no value, so none outside the list (Qdrant)
        Assert.False(M("""{"c":null}"""));
        Assert.False(M("""{"c":[]}"""));
        Assert.False(M("""{"c":["a",null]}""")); // a null element is not a value outside the list
        Assert.True(M("""{"c":7}"""));     // a value of another type is not one of them
        var n = PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"c","match":{"except":[1,2]}}]}"""))!;
        Assert.False(n.Matches(PointId.Of(1), JsonNode.Parse("""{"c":1.0}""")!.AsObject())); // 1.0 is the integer 1
        Assert.True(n.Matches(PointId.Of(1), JsonNode.Parse("""{"c":1.5}""")!.AsObject()));
    }
}
