using System.Globalization;
using System.Text;

namespace Kiln.Tracking.Search;

/// <summary>What a filter or order_by clause compares: a metric, param, tag or run attribute.</summary>
public enum EntityKind
{
    Metric,
    Param,
    Tag,
    Attribute,
}

/// <summary>One comparison of a filter: <c>metrics.acc &gt; 0.9</c>, <c>params.lr = '0.1'</c>, <c>attributes.run_id IN ('a','b')</c>.</summary>
public sealed record FilterClause(EntityKind Kind, string Key, string Op, object Value);

/// <summary>One order_by term: <c>metrics.acc DESC</c>.</summary>
public sealed record OrderClause(EntityKind Kind, string Key, bool Ascending);

/// <summary>Parses MLflow's search grammar: clauses joined by AND; = != &gt; &gt;= &lt; &lt;= LIKE ILIKE IN NOT IN.</summary>
public static class SearchFilter
{
    /// <summary>Run attributes that filters and order_by may name, and whether they compare as numbers.</summary>
    public static readonly IReadOnlyDictionary<string, bool> Attributes = new Dictionary<string, bool>(StringComparer.Ordinal)
    {
        ["run_id"] = false,
        ["run_name"] = false,
        ["status"] = false,
        ["user_id"] = false,
        ["artifact_uri"] = false,
        ["lifecycle_stage"] = false,
        ["start_time"] = true,
        ["end_time"] = true,
        ["created"] = true,
    };

    public static IReadOnlyList<FilterClause> Parse(string? filter)
    {
        var clauses = new List<FilterClause>();
        if (string.IsNullOrWhiteSpace(filter)) return clauses;
        var s = new Scanner(filter);
        while (true)
        {
            s.SkipSpace();
            var (kind, key) = ReadIdentifier(s);
            s.SkipSpace();
            var op = ReadOperator(s);
            s.SkipSpace();
            var value = ReadValue(s, op);
            clauses.Add(Check(new FilterClause(kind, key, op, value), filter));
            s.SkipSpace();
            if (s.AtEnd) break;
            var word = s.ReadWord();
            if (!word.Equals("AND", StringComparison.OrdinalIgnoreCase))
                throw Error(filter, word.Length == 0 ? $"unexpected '{s.Peek}' at position {s.Pos}" : $"expected AND at position {s.Pos - word.Length}, found '{word}' (only AND joins clauses)");
        }
        return clauses;
    }

    public static IReadOnlyList<OrderClause> ParseOrderBy(IReadOnlyList<string>? orderBy)
    {
        var result = new List<OrderClause>();
        if (orderBy is null) return result;
        foreach (var term in orderBy)
        {
            if (string.IsNullOrWhiteSpace(term)) continue;
            var s = new Scanner(term);
            s.SkipSpace();
            var (kind, key) = ReadIdentifier(s);
            if (kind == EntityKind.Attribute && !Attributes.ContainsKey(key))
                throw TrackingException.Invalid($"invalid order_by '{term}': unknown attribute '{key}'");
            s.SkipSpace();
            var asc = true;
            if (!s.AtEnd)
            {
                var dir = s.ReadWord();
                if (dir.Equals("DESC", StringComparison.OrdinalIgnoreCase)) asc = false;
                else if (!dir.Equals("ASC", StringComparison.OrdinalIgnoreCase))
                    throw TrackingException.Invalid($"invalid order_by '{term}': expected ASC or DESC after the key");
                s.SkipSpace();
                if (!s.AtEnd) throw TrackingException.Invalid($"invalid order_by '{term}': unexpected text after {dir}");
            }
            result.Add(new OrderClause(kind, key, asc));
        }
        return result;
    }

    private static FilterClause Check(FilterClause c, string filter)
    {
        switch (c.Kind)
        {
            case EntityKind.Metric:
                if (c.Value is not double || c.Op is "LIKE" or "ILIKE" or "IN" or "NOT IN")
                    throw Error(filter, $"metric '{c.Key}' must be compared with = != > >= < <= and a number");
                break;
            case EntityKind.Param:
            case EntityKind.Tag:
                if (c.Value is not string || c.Op is not ("=" or "!=" or "LIKE" or "ILIKE"))
                    throw Error(filter, $"{(c.Kind == EntityKind.Param ? "param" : "tag")} '{c.Key}' must be compared with = != LIKE or ILIKE and a quoted string");
                break;
            case EntityKind.Attribute:
                if (!Attributes.TryGetValue(c.Key, out var numeric))
                    throw Error(filter, $"unknown attribute '{c.Key}' (known: {string.Join(", ", Attributes.Keys)})");
                if (numeric && (c.Value is not double || c.Op is "LIKE" or "ILIKE" or "IN" or "NOT IN"))
                    throw Error(filter, $"attribute '{c.Key}' must be compared with = != > >= < <= and a number");
                if (!numeric && c.Op is ">" or ">=" or "<" or "<=")
                    throw Error(filter, $"attribute '{c.Key}' must be compared with = != LIKE ILIKE IN or NOT IN");
                if (!numeric && c.Value is double)
                    throw Error(filter, $"attribute '{c.Key}' must be compared with a quoted string");
                if (c.Op is "IN" or "NOT IN" && c.Key != "run_id")
                    throw Error(filter, $"IN is supported for attributes.run_id only");
                break;
        }
        return c;
    }

    private static (EntityKind, string) ReadIdentifier(Scanner s)
    {
        if (s.AtEnd) throw Error(s.Text, "expected an identifier such as metrics.acc at the end");
        if (s.Peek is '"' or '`' or '\'') return (EntityKind.Attribute, s.ReadQuoted());
        var start = s.Pos;
        while (!s.AtEnd && (char.IsLetterOrDigit(s.Peek) || s.Peek == '_')) s.Pos++;
        var word = s.Text[start..s.Pos];
        if (word.Length == 0) throw Error(s.Text, $"expected an identifier at position {start}, found '{s.Peek}'");
        if (s.AtEnd || s.Peek != '.') return (EntityKind.Attribute, word);
        s.Pos++;
        var kind = word.ToLowerInvariant() switch
        {
            "metric" or "metrics" => EntityKind.Metric,
            "param" or "params" or "parameter" or "parameters" => EntityKind.Param,
            "tag" or "tags" => EntityKind.Tag,
            "attribute" or "attributes" or "attr" or "run" => EntityKind.Attribute,
            _ => throw Error(s.Text, $"invalid identifier type '{word}': use metrics., params., tags. or attributes."),
        };
        string key;
        if (!s.AtEnd && s.Peek is '"' or '`') key = s.ReadQuoted();
        else
        {
            var k = s.Pos;
            while (!s.AtEnd && (char.IsLetterOrDigit(s.Peek) || s.Peek is '_' or '.' or '-' or '/')) s.Pos++;
            key = s.Text[k..s.Pos];
        }
        if (key.Length == 0) throw Error(s.Text, $"missing key after '{word}.'");
        return (kind, key);
    }

    private static string ReadOperator(Scanner s)
    {
        if (s.AtEnd) throw Error(s.Text, "expected a comparison operator at the end");
        foreach (var op in (string[])["!=", ">=", "<=", "=", ">", "<"])
        {
            if (string.CompareOrdinal(s.Text, s.Pos, op, 0, op.Length) == 0)
            {
                s.Pos += op.Length;
                return op;
            }
        }
        var word = s.ReadWord().ToUpperInvariant();
        if (word is "LIKE" or "ILIKE" or "IN") return word;
        if (word == "NOT")
        {
            s.SkipSpace();
            if (s.ReadWord().Equals("IN", StringComparison.OrdinalIgnoreCase)) return "NOT IN";
        }
        throw Error(s.Text, $"invalid comparison operator '{word}' (use = != > >= < <= LIKE ILIKE IN NOT IN)");
    }

    private static object ReadValue(Scanner s, string op)
    {
        if (s.AtEnd) throw Error(s.Text, "expected a value at the end");
        if (op is "IN" or "NOT IN")
        {
            if (s.Peek != '(') throw Error(s.Text, $"expected '(' after {op}");
            s.Pos++;
            var list = new List<string>();
            while (true)
            {
                s.SkipSpace();
                if (s.AtEnd || s.Peek is not ('\'' or '"')) throw Error(s.Text, $"expected a quoted string in the {op} list");
                list.Add(s.ReadQuoted());
                s.SkipSpace();
                if (s.AtEnd) throw Error(s.Text, $"unclosed {op} list");
                if (s.Peek == ',') { s.Pos++; continue; }
                if (s.Peek == ')') { s.Pos++; break; }
                throw Error(s.Text, $"unexpected '{s.Peek}' in the {op} list");
            }
            return list;
        }
        if (s.Peek is '\'' or '"') return s.ReadQuoted();
        var start = s.Pos;
        while (!s.AtEnd && !char.IsWhiteSpace(s.Peek)) s.Pos++;
        var text = s.Text[start..s.Pos];
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return d;
        throw Error(s.Text, $"invalid value '{text}': strings must be quoted, numbers written plainly");
    }

    private static TrackingException Error(string filter, string detail) =>
        TrackingException.Invalid($"invalid filter '{filter}': {detail}");

    private sealed class Scanner(string text)
    {
        public string Text { get; } = text;

        public int Pos { get; set; }

        public bool AtEnd => Pos >= Text.Length;

        public char Peek => Text[Pos];

        public void SkipSpace()
        {
            while (!AtEnd && char.IsWhiteSpace(Peek)) Pos++;
        }

        public string ReadWord()
        {
            var start = Pos;
            while (!AtEnd && char.IsLetter(Peek)) Pos++;
            return Text[start..Pos];
        }

        public string ReadQuoted()
        {
            var quote = Peek;
            Pos++;
            var sb = new StringBuilder();
            while (true)
            {
                if (AtEnd) throw Error(Text, $"unterminated quoted string (missing {quote})");
                var c = Text[Pos++];
                if (c == quote)
                {
                    // A doubled quote stands for itself, as in SQL.
                    if (!AtEnd && Peek == quote) { sb.Append(quote); Pos++; continue; }
                    return sb.ToString();
                }
                if (c == '\\' && !AtEnd && Text[Pos] == quote) { sb.Append(quote); Pos++; continue; }
                sb.Append(c);
            }
        }
    }
}

/// <summary>Opaque page tokens: the offset of the next page, base64-encoded.</summary>
public static class PageToken
{
    public static string Encode(long offset) => Convert.ToBase64String(Encoding.UTF8.GetBytes(
        "{\"offset\": " + offset.ToString(CultureInfo.InvariantCulture) + "}"));

    public static long Decode(string? token)
    {
        if (string.IsNullOrEmpty(token)) return 0;
        try
        {
            var json = Encoding.UTF8.GetString(Convert.FromBase64String(token));
            var i = json.IndexOf(':', StringComparison.Ordinal);
            var j = json.IndexOf('}', StringComparison.Ordinal);
            if (i > 0 && j > i && long.TryParse(json.AsSpan(i + 1, j - i - 1).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var off) && off >= 0)
                return off;
        }
        catch (FormatException)
        {
        }
        throw TrackingException.Invalid($"invalid page_token '{Limits.Shorten(token)}'");
    }
}
