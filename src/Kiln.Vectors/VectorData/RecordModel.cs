using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.VectorData;

namespace Kiln.Vectors.VectorData;

/// <summary>One mapped property of a record: its .NET name, its name in the payload, and how to read and write it.</summary>
internal sealed record RecordProperty(string Name, string StorageName, Type Type, Func<object, object?> Get, Action<object, object?> Set);

/// <summary>
/// How a record type maps onto a Kiln point: the key property to the point id (ulong or Guid), the one vector property
/// to the vector, the data properties to payload keys. Read from the attributes on the record type, or from a
/// <see cref="VectorStoreCollectionDefinition"/> (required for dictionary records).
/// </summary>
internal sealed class RecordModel
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private RecordModel(RecordProperty key, RecordProperty vector, int dimensions, string? distance, string? indexKind, IReadOnlyList<RecordProperty> data, IReadOnlyList<RecordProperty> indexed, Func<object> create)
    {
        Key = key;
        Vector = vector;
        Dimensions = dimensions;
        DistanceFunction = distance;
        IndexKind = indexKind;
        Data = data;
        Indexed = indexed;
        Create = create;
    }

    public RecordProperty Key { get; }
    public RecordProperty Vector { get; }
    public int Dimensions { get; }
    public string? DistanceFunction { get; }
    public string? IndexKind { get; }
    public IReadOnlyList<RecordProperty> Data { get; }
    public IReadOnlyList<RecordProperty> Indexed { get; }
    public Func<object> Create { get; }

    public static RecordModel For(Type recordType, VectorStoreCollectionDefinition? definition)
    {
        var dictionary = recordType == typeof(Dictionary<string, object?>);
        if (definition is null && dictionary) throw new ArgumentException("A dictionary record needs a VectorStoreCollectionDefinition.", nameof(definition));
        RecordProperty? key = null, vector = null;
        int dimensions = 0;
        string? distance = null, indexKind = null;
        var data = new List<RecordProperty>();
        var indexed = new List<RecordProperty>();
        if (definition is not null)
        {
            foreach (var p in definition.Properties)
            {
                var prop = dictionary ? DictionaryProperty(p.Name, p.StorageName ?? p.Name, p.Type ?? typeof(object)) : ClrProperty(recordType, p.Name, p.StorageName);
                switch (p)
                {
                    case VectorStoreKeyProperty:
                        key = prop;
                        break;
                    case VectorStoreVectorProperty v:
                        if (vector is not null) throw new NotSupportedException("Kiln collections hold one vector per point; the definition has more than one vector property.");
                        (vector, dimensions, distance, indexKind) = (prop, v.Dimensions, v.DistanceFunction, v.IndexKind);
                        break;
                    case VectorStoreDataProperty d:
                        data.Add(prop);
                        if (d.IsIndexed) indexed.Add(prop);
                        break;
                }
            }
        }
        else
        {
            foreach (var pi in recordType.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                if (pi.GetCustomAttribute<VectorStoreKeyAttribute>() is { } k)
                {
                    key = ClrProperty(recordType, pi.Name, k.StorageName);
                }
                else if (pi.GetCustomAttribute<VectorStoreVectorAttribute>() is { } v)
                {
                    if (vector is not null) throw new NotSupportedException($"{recordType.Name}: Kiln collections hold one vector per point; the record has more than one vector property.");
                    (vector, dimensions, distance, indexKind) = (ClrProperty(recordType, pi.Name, v.StorageName), v.Dimensions, v.DistanceFunction, v.IndexKind);
                }
                else if (pi.GetCustomAttribute<VectorStoreDataAttribute>() is { } d)
                {
                    var prop = ClrProperty(recordType, pi.Name, d.StorageName);
                    data.Add(prop);
                    if (d.IsIndexed) indexed.Add(prop);
                }
            }
        }
        if (key is null) throw new ArgumentException($"{recordType.Name}: no key property ([VectorStoreKey] or a VectorStoreKeyProperty).");
        if (vector is null) throw new ArgumentException($"{recordType.Name}: no vector property ([VectorStoreVector] or a VectorStoreVectorProperty).");
        if (key.Type != typeof(ulong) && key.Type != typeof(Guid) && key.Type != typeof(object))
        {
            throw new NotSupportedException($"{recordType.Name}.{key.Name}: a Kiln point id is a ulong or a Guid, not {key.Type.Name}.");
        }
        if (vector.Type != typeof(ReadOnlyMemory<float>) && vector.Type != typeof(ReadOnlyMemory<float>?) && vector.Type != typeof(float[]) && vector.Type != typeof(object))
        {
            throw new NotSupportedException($"{recordType.Name}.{vector.Name}: vectors are ReadOnlyMemory<float> or float[], not {vector.Type.Name}.");
        }
        Func<object> create = dictionary ? () => new Dictionary<string, object?>() : () => Activator.CreateInstance(recordType)!;
        return new RecordModel(key, vector, dimensions, distance, indexKind, data, indexed, create);
    }

    private static RecordProperty ClrProperty(Type type, string name, string? storageName)
    {
        var pi = type.GetProperty(name, BindingFlags.Public | BindingFlags.Instance) ?? throw new ArgumentException($"{type.Name} has no public property {name}.");
        return new RecordProperty(name, storageName ?? name, pi.PropertyType, pi.GetValue, pi.SetValue);
    }

    private static RecordProperty DictionaryProperty(string name, string storageName, Type type) =>
        new(name, storageName, type, r => ((Dictionary<string, object?>)r).GetValueOrDefault(name), (r, v) => ((Dictionary<string, object?>)r)[name] = v);

    /// <summary>The storage name of a .NET property, for filters.</summary>
    public string? StorageNameOf(string propertyName) =>
        propertyName == Key.Name ? null : Data.FirstOrDefault(p => p.Name == propertyName)?.StorageName;

    public static PointId ToPointId(object? key) => key switch
    {
        ulong n => PointId.Of(n),
        Guid g => PointId.Of(g),
        _ => throw new ArgumentException($"a Kiln point id is a ulong or a Guid, got {key?.GetType().Name ?? "null"}"),
    };

    public PointInput ToPoint(object record)
    {
        var payload = new JsonObject();
        foreach (var p in Data) payload[p.StorageName] = JsonSerializer.SerializeToNode(p.Get(record), p.Type == typeof(object) ? p.Get(record)?.GetType() ?? typeof(object) : p.Type, Json);
        var vector = Vector.Get(record) switch
        {
            ReadOnlyMemory<float> m => m.ToArray(),
            float[] a => a,
            null => throw new ArgumentException($"{Vector.Name}: a vector is required"),
            var other => throw new ArgumentException($"{Vector.Name}: vectors are ReadOnlyMemory<float> or float[], not {other.GetType().Name}"),
        };
        return new PointInput(ToPointId(Key.Get(record)), vector, payload);
    }

    public object ToRecord(StoredPoint point, bool includeVector)
    {
        var record = Create();
        Key.Set(record, point.Id.IsUuid ? point.Id.Uuid : point.Id.Number);
        if (includeVector)
        {
            Vector.Set(record, Vector.Type == typeof(float[]) ? point.Vector : new ReadOnlyMemory<float>(point.Vector));
        }
        foreach (var p in Data)
        {
            if (point.Payload?[p.StorageName] is { } node) p.Set(record, node.Deserialize(p.Type, Json));
        }
        return record;
    }

    /// <summary>Qdrant's payload index kind for a data property's .NET type.</summary>
    public static PayloadSchemaType? SchemaOf(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string) || type == typeof(Guid) || type == typeof(string[]) || type == typeof(List<string>)) return PayloadSchemaType.Keyword;
        if (type == typeof(int) || type == typeof(long) || type == typeof(short) || type == typeof(uint)) return PayloadSchemaType.Integer;
        if (type == typeof(double) || type == typeof(float) || type == typeof(decimal)) return PayloadSchemaType.Float;
        if (type == typeof(bool)) return PayloadSchemaType.Bool;
        if (type == typeof(DateTime) || type == typeof(DateTimeOffset)) return PayloadSchemaType.Datetime;
        return null;
    }
}
