using System.Text.Json.Nodes;
using Kiln.Vectors.Storage;

namespace Kiln.Vectors.Tests;

/// <summary>
/// The collection's compact slot table (ids, live flags, payloads, id map in flat arrays) against a plain
/// Dictionary and List kept beside it as the oracle, through a long random run of upserts (a new slot each, the
/// old one killed), deletes and lookups with numeric and UUID ids that collide in the map; and its size per point.
/// </summary>
public sealed class SlotTableTests
{
    [Theory]
    [InlineData(1, 300)]       // ids from a small range: most upserts replace, and probe chains wrap and shift
    [InlineData(2, 50_000)]    // ids spread out: the map grows through several sizes
    public void Random_upserts_and_deletes_match_a_dictionary(int seed, int idRange)
    {
        var rng = new Random(seed);
        var table = new SlotTable();
        var oracle = new Dictionary<PointId, int>();
        var slotIds = new List<PointId>();
        var slotPayloads = new List<JsonObject?>();
        var guids = Enumerable.Range(0, 64).Select(_ => Guid.NewGuid()).ToArray();
        PointId RandomId() => rng.Next(8) == 0 ? PointId.Of(guids[rng.Next(guids.Length)]) : PointId.Of((ulong)rng.Next(idRange));
        for (var op = 0; op < 40_000; op++)
        {
            var id = RandomId();
            if (rng.Next(4) > 0)
            {
                if (oracle.Remove(id, out var old)) table.Kill(old);
                var payload = rng.Next(3) == 0 ? new JsonObject { ["op"] = op } : null;
                var slot = table.Add(id, payload);
                Assert.Equal(slotIds.Count, slot);
                slotIds.Add(id);
                slotPayloads.Add(payload);
                oracle[id] = slot;
            }
            else if (oracle.Remove(id, out var old))
            {
                table.Kill(old);
            }
            if (op % 997 == 0) CheckAll();
        }
        table.TrimExcess();
        CheckAll();

        void CheckAll()
        {
            Assert.Equal(oracle.Count, table.Count);
            Assert.Equal(slotIds.Count, table.Slots);
            foreach (var (id, slot) in oracle)
            {
                Assert.True(table.TryGetSlot(id, out var found), $"id {id} is missing");
                Assert.Equal(slot, found);
                Assert.Equal(id, table.IdAt(slot));
                Assert.Same(slotPayloads[slot], table.PayloadAt(slot));
            }
            var live = oracle.Values.Order().ToList();
            Assert.Equal(live, table.LiveSlots().ToList());
            for (var probe = 0; probe < 200; probe++)
            {
                var id = RandomId();
                Assert.Equal(oracle.ContainsKey(id), table.TryGetSlot(id, out _));
            }
        }
    }

    [Fact]
    public void Dead_slots_from_a_snapshot_keep_their_numbers()
    {
        var table = new SlotTable();
        table.Reserve(4);
        table.Add(PointId.Of(10), null);
        table.AddDead();
        table.Add(PointId.Of(12), new JsonObject { ["a"] = 1 });
        Assert.Equal(3, table.Slots);
        Assert.Equal(2, table.Count);
        Assert.False(table.IsLive(1));
        Assert.True(table.TryGetSlot(PointId.Of(12), out var slot));
        Assert.Equal(2, slot);
        Assert.False(table.TryGetSlot(PointId.Of(11), out _));
    }

    [Fact]
    public void A_million_numeric_ids_without_payloads_take_under_20_bytes_a_point()
    {
        // What the collection keeps per point in managed memory once a snapshot of 1M points is read back (reserved
        // exactly, trimmed): 8 bytes of id, one bit, and an int per map bucket (2^21 buckets at most 3/4 full).
        const int N = 1_000_000;
        var table = new SlotTable();
        table.Reserve(N);
        for (var i = 0; i < N; i++) table.Add(PointId.Of((ulong)i * 7919), null);
        table.TrimExcess();
        Assert.True(table.Bytes < 20L * N, $"{table.Bytes / (double)N:0.0} bytes a point");
        Assert.True(table.TryGetSlot(PointId.Of(999_999UL * 7919), out var last));
        Assert.Equal(N - 1, last);
    }
}
