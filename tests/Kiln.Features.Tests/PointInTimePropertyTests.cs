using System.Globalization;
using FsCheck.Xunit;
using Kiln.Features.Definitions;
using Kiln.Features.Offline;
using Kiln.Testing;
using static Kiln.Features.Tests.TestData;

namespace Kiln.Features.Tests;

/// <summary>DuckDB retrieval against the naive reference on random data: small key and time grids make ties, bounds and duplicates common.</summary>
public sealed class PointInTimePropertyTests
{
    [Property(MaxTest = 20)]
    public bool Retrieval_equals_the_naive_reference(int seed)
    {
        var random = new Random(seed);
        using var dir = new TempDir();
        var ttlA = new[] { 0, 5, 10 }[random.Next(3)];
        var ttlB = new[] { 0, 7 }[random.Next(2)];

        // View a: a created column; ties on (key, event) get distinct created times, at most one missing.
        var rowsA = new List<RefRow>();
        var createdPool = Enumerable.Range(0, 200).OrderBy(_ => random.Next()).ToList();
        for (var i = 0; i < random.Next(0, 40); i++)
        {
            var key = random.Next(1, 5);
            var ev = T(random.Next(0, 41));
            var hasNullTwin = rowsA.Any(r => r.Key == key && r.Event == ev && r.Created is null);
            DateTime? created = !hasNullTwin && random.Next(5) == 0 ? null : T(1000 + createdPool[i]);
            rowsA.Add(new RefRow(key, ev, created, random.Next(6) == 0 ? null : random.Next(-1000, 1000)));
        }
        // View b: no created column, so (key, event) is unique.
        var rowsB = new List<RefRow>();
        for (var i = 0; i < random.Next(0, 30); i++)
        {
            var key = random.Next(1, 5);
            var ev = T(random.Next(0, 41));
            if (rowsB.Any(r => r.Key == key && r.Event == ev)) continue;
            rowsB.Add(new RefRow(key, ev, null, random.Next(-1000, 1000)));
        }
        // Entities: keys 1..5 (5 has no features), duplicates likely.
        var entities = new List<(long Key, DateTime T)>();
        for (var i = 0; i < random.Next(1, 30); i++) entities.Add((random.Next(1, 6), T(random.Next(0, 46))));

        Write(dir.File("a.parquet"), [("driver_id", "BIGINT"), ("event_timestamp", "TIMESTAMP"), ("created", "TIMESTAMP"), ("x", "BIGINT")],
            rowsA.Select(r => new object?[] { r.Key, r.Event, r.Created, r.Value }));
        Write(dir.File("b.parquet"), [("driver_id", "BIGINT"), ("ts", "TIMESTAMPTZ"), ("y", "BIGINT")],
            rowsB.Select(r => new object?[] { r.Key, r.Event, r.Value }));
        // Half the time the entity table is a CSV with naive timestamps (taken as UTC).
        var csv = seed % 2 == 0;
        var entityFile = dir.File(csv ? "entities.csv" : "entities.parquet");
        if (csv)
        {
            File.WriteAllLines(entityFile, entities.Select(e => $"{e.Key},{Iso(e.T)}").Prepend("driver_id,event_timestamp"));
        }
        else
        {
            Write(entityFile, [("driver_id", "BIGINT"), ("event_timestamp", "TIMESTAMP")], entities.Select(e => new object?[] { e.Key, e.T }));
        }
        File.WriteAllText(dir.File("repo.yaml"), $"""
            project: prop
            entities:
              - name: driver
                join_keys: [driver_id]
            sources:
              - name: a_src
                path: a.parquet
                created_timestamp_column: created
              - name: b_src
                path: b.parquet
                timestamp_field: ts
            feature_views:
              - name: a
                entities: [driver]
                source: a_src
                ttl: {ttlA}m
                schema: [{"{"}name: x, dtype: int64{"}"}]
              - name: b
                entities: [driver]
                source: b_src
                ttl: {ttlB.ToString(CultureInfo.InvariantCulture)}m
                schema: [{"{"}name: y, dtype: int64{"}"}]
            """);
        var repo = RepositoryLoader.Load(dir.Path);
        var frame = HistoricalRetrieval.ToFrame(repo, entityFile, repo.ResolveFeatures(["a:x", "b:y"], "test"));

        if (frame.Rows.Count != entities.Count) return false;
        for (var i = 0; i < entities.Count; i++)
        {
            var (key, t) = entities[i];
            var row = frame.Rows[i];
            if (Convert.ToInt64(row[0], CultureInfo.InvariantCulture) != key) return false;
            var expectedX = PointInTimeReference.Lookup(rowsA, key, t, TimeSpan.FromMinutes(ttlA));
            var expectedY = PointInTimeReference.Lookup(rowsB, key, t, TimeSpan.FromMinutes(ttlB));
            if (!Equals(expectedX, (long?)row[frame.Ordinal("x")]) || !Equals(expectedY, (long?)row[frame.Ordinal("y")]))
            {
                throw new InvalidOperationException($"seed {seed} row {i} key {key} t {t:O}: expected x={expectedX} y={expectedY}, got x={row[frame.Ordinal("x")]} y={row[frame.Ordinal("y")]}");
            }
        }
        return true;
    }
}
