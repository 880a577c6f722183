using System.Collections;
using System.Linq.Expressions;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln.Vectors.VectorData;

/// <summary>
/// Turns a VectorData filter (a LINQ predicate over the record) into a filter in Qdrant's JSON shape:
/// <c>==</c>/<c>!=</c> to match, comparisons to range, <c>&amp;&amp;</c>/<c>||</c>/<c>!</c> to must/should/must_not,
/// <c>record.Tags.Contains(x)</c> to a match on an array field, <c>list.Contains(record.Field)</c> to match any.
/// </summary>
internal sealed class FilterTranslator(RecordModel model, ParameterExpression record)
{
    public static JsonObject? Translate<TRecord>(Expression<Func<TRecord, bool>>? filter, RecordModel model) =>
        filter is null ? null : new JsonObject { ["must"] = new JsonArray(new FilterTranslator(model, filter.Parameters[0]).Condition(filter.Body)) };

    private JsonObject Condition(Expression e)
    {
        switch (e)
        {
            case BinaryExpression { NodeType: ExpressionType.AndAlso } b:
                return new JsonObject { ["must"] = new JsonArray(Condition(b.Left), Condition(b.Right)) };
            case BinaryExpression { NodeType: ExpressionType.OrElse } b:
                return new JsonObject { ["should"] = new JsonArray(Condition(b.Left), Condition(b.Right)) };
            case UnaryExpression { NodeType: ExpressionType.Not } u:
                return new JsonObject { ["must_not"] = new JsonArray(Condition(u.Operand)) };
            case BinaryExpression b when b.NodeType is ExpressionType.Equal or ExpressionType.NotEqual or ExpressionType.LessThan
                or ExpressionType.LessThanOrEqual or ExpressionType.GreaterThan or ExpressionType.GreaterThanOrEqual:
                return Comparison(b);
            case MemberExpression m when IsField(m, out var key) && key is not null && m.Type == typeof(bool):
                return Match(key, JsonValue.Create(true));
            case MethodCallExpression call when call.Method.Name == "Contains":
                return Contains(call);
            default:
                throw new NotSupportedException($"filter: {e} is not supported (use ==, !=, <, <=, >, >=, &&, ||, !, and Contains)");
        }
    }

    private JsonObject Comparison(BinaryExpression b)
    {
        var (fieldSide, valueSide, flipped) = IsField(b.Left, out _) ? (b.Left, b.Right, false) : (b.Right, b.Left, true);
        if (!IsField(fieldSide, out var key)) throw new NotSupportedException($"filter: {b} compares no record property with a value");
        var value = Evaluate(valueSide);
        var kind = b.NodeType;
        if (flipped)
        {
            kind = kind switch
            {
                ExpressionType.LessThan => ExpressionType.GreaterThan,
                ExpressionType.LessThanOrEqual => ExpressionType.GreaterThanOrEqual,
                ExpressionType.GreaterThan => ExpressionType.LessThan,
                ExpressionType.GreaterThanOrEqual => ExpressionType.LessThanOrEqual,
                _ => kind,
            };
        }
        if (kind is ExpressionType.Equal or ExpressionType.NotEqual)
        {
            JsonObject condition;
            if (key is null)
            {
                condition = new JsonObject { ["has_id"] = new JsonArray(RecordModel.ToPointId(value).ToJson()) };
            }
            else if (value is null)
            {
                condition = new JsonObject { ["is_null"] = new JsonObject { ["key"] = key } };
            }
            else if (value is double or float or decimal)
            {
                var n = JsonValue.Create(Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture));
                condition = new JsonObject { ["key"] = key, ["range"] = new JsonObject { ["gte"] = n, ["lte"] = n.DeepClone() } };
            }
            else
            {
                condition = Match(key, Scalar(value));
            }
            return kind == ExpressionType.Equal ? condition : new JsonObject { ["must_not"] = new JsonArray(condition) };
        }
        if (key is null) throw new NotSupportedException("filter: the key can only be compared with == or !=");
        var op = kind switch
        {
            ExpressionType.LessThan => "lt",
            ExpressionType.LessThanOrEqual => "lte",
            ExpressionType.GreaterThan => "gt",
            _ => "gte",
        };
        return new JsonObject { ["key"] = key, ["range"] = new JsonObject { [op] = Scalar(value) } };
    }

    private JsonObject Contains(MethodCallExpression call)
    {
        // Instance (list.Contains(x)), static (Enumerable.Contains(list, x)), or MemoryExtensions.Contains over an array.
        var (collection, item) = call.Object is not null ? (call.Object, call.Arguments[0]) : (call.Arguments[0], call.Arguments[1]);
        collection = Unwrap(collection);
        if (IsField(collection, out var key) && key is not null)
        {
            return Match(key, Scalar(Evaluate(item)));
        }
        if (IsField(item, out var itemKey))
        {
            var values = new JsonArray();
            foreach (var v in (IEnumerable)(Evaluate(collection) ?? Array.Empty<object>())) values.Add(itemKey is null ? RecordModel.ToPointId(v).ToJson() : Scalar(v));
            if (itemKey is null) return new JsonObject { ["has_id"] = values };
            return new JsonObject { ["key"] = itemKey, ["match"] = new JsonObject { ["any"] = values } };
        }
        throw new NotSupportedException($"filter: {call} is not supported (Contains on a record's list property, or on a list of values with a record property)");
    }

    private static Expression Unwrap(Expression e) => e switch
    {
        MethodCallExpression { Method.Name: "op_Implicit", Arguments.Count: 1 } c => c.Arguments[0],
        UnaryExpression { NodeType: ExpressionType.Convert } u => u.Operand,
        _ => e,
    };

    /// <summary>Whether the expression reads a property of the record; <paramref name="key"/> is its payload key, or null for the record's key.</summary>
    private bool IsField(Expression e, out string? key)
    {
        e = Unwrap(e);
        key = null;
        string? name = null;
        if (e is MemberExpression { Member: PropertyInfo p } m && m.Expression == record) name = p.Name;
        else if (e is MethodCallExpression { Method.Name: "get_Item", Object: var o, Arguments: [ConstantExpression { Value: string n }] } && o == record) name = n;
        if (name is null) return false;
        if (name == model.Key.Name) return true;
        key = model.StorageNameOf(name) ?? throw new NotSupportedException($"filter: {name} is not a data property of the record");
        return true;
    }

    private static JsonObject Match(string key, JsonNode? value) => new() { ["key"] = key, ["match"] = new JsonObject { ["value"] = value } };

    private static JsonNode? Scalar(object? value) => value switch
    {
        null => null,
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        Guid g => JsonValue.Create(g.ToString("D")),
        Enum en => JsonValue.Create(en.ToString()),
        DateTime or DateTimeOffset => JsonSerializer.SerializeToNode(value),
        sbyte or byte or short or ushort or int or uint or long => JsonValue.Create(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture)),
        ulong u => JsonValue.Create(u),
        float or double or decimal => JsonValue.Create(Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture)),
        _ => throw new NotSupportedException($"filter: values of type {value.GetType().Name} are not supported"),
    };

    private object? Evaluate(Expression e)
    {
        if (e is ConstantExpression c) return c.Value;
        if (new ParameterFinder(record).Finds(e)) throw new NotSupportedException($"filter: {e} must be a value, not depend on the record");
        return Expression.Lambda(e).Compile(preferInterpretation: true).DynamicInvoke();
    }

    private sealed class ParameterFinder(ParameterExpression parameter) : ExpressionVisitor
    {
        private bool _found;

        public bool Finds(Expression e)
        {
            Visit(e);
            return _found;
        }

        protected override Expression VisitParameter(ParameterExpression node)
        {
            if (node == parameter) _found = true;
            return node;
        }
    }
}
