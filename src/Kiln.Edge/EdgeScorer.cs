using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Scoring;
using Kiln.Scoring.Onnx;
using Kiln.Scoring.Validation;

namespace Kiln.Edge;

/// <summary>
/// Reads rows (JSON lines or CSV), validates each against the signature with kiln serve's validator, scores them in
/// blocks through ONNX Runtime and writes one JSON object per row. The first bad row stops the run naming its line.
/// </summary>
internal static class EdgeScorer
{
    public const string ModelFile = "model.onnx";

    private const int Block = 1024;

    private static ReadOnlySpan<byte> Bom => [0xEF, 0xBB, 0xBF];

    public static int Run(EdgeOptions options)
    {
        var signature = ReadSignature(Path.Combine(options.ModelDirectory, ModelPackage.SignatureFile));
        using var model = new OnnxModel(Path.Combine(options.ModelDirectory, ModelFile), signature);
        var source = options.Input ?? "stdin";
        using var input = OpenInput(options.Input);
        var head = new byte[4096];
        var headLength = input.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        var format = options.Format != InputFormat.Auto ? options.Format : Detect(options.Input, head.AsSpan(0, headLength));
        var stream = new PrefixedStream(head, headLength, input);

        // --out is written beside its final name and moved there only when every row was valid.
        var staging = options.Out is null ? null : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(options.Out))!, $".{Path.GetFileName(options.Out)}.{Environment.ProcessId}.tmp");
        var output = staging is null ? Console.OpenStandardOutput() : File.Create(staging);
        try
        {
            using (var sink = new PredictionSink(model, output))
            {
                var schema = new ModelSchema(signature, UnseenCategoryPolicy.Reject, int.MaxValue);
                var error = format == InputFormat.Csv ? ReadCsv(stream, schema, sink) : ReadJsonLines(stream, schema, sink);
                if (error is not null)
                {
                    Console.Error.WriteLine($"kiln-score: {source} line {error.Value.Line}: {error.Value.Message}");
                    return 1;
                }
            }
            if (staging is not null)
            {
                output.Dispose();
                File.Move(staging, options.Out!, overwrite: true);
                staging = null;
            }
            return 0;
        }
        finally
        {
            output.Dispose();
            if (staging is not null) File.Delete(staging);
        }
    }

    private static ModelSignature ReadSignature(string path)
    {
        if (!File.Exists(path)) throw new KilnException($"{path}: the signature is missing (kiln package export edge writes it beside the scorer)");
        try
        {
            using var s = File.OpenRead(path);
            return JsonSerializer.Deserialize(s, (JsonTypeInfo<ModelSignature>)KilnJson.Files.GetTypeInfo(typeof(ModelSignature)))
                ?? throw new KilnException($"{path}: empty JSON document");
        }
        catch (JsonException e)
        {
            throw new KilnException($"{path}: not a signature ({e.Message})", e);
        }
    }

    private static Stream OpenInput(string? path)
    {
        if (path is null) return Console.OpenStandardInput();
        if (!File.Exists(path)) throw new KilnException($"{path}: no such file");
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
    }

    /// <summary>The format from the file's extension, else from the first character that is not white space ('{': JSON lines).</summary>
    private static InputFormat Detect(string? path, ReadOnlySpan<byte> head)
    {
        var extension = Path.GetExtension(path)?.ToLowerInvariant();
        if (extension == ".csv") return InputFormat.Csv;
        if (extension is ".jsonl" or ".ndjson" or ".json") return InputFormat.JsonLines;
        var first = head.StartsWith(Bom) ? head[3..] : head;
        first = first.TrimStart(" \t\r\n"u8);
        return first.Length > 0 && first[0] == (byte)'{' ? InputFormat.JsonLines : InputFormat.Csv;
    }

    /// <summary>One JSON object per line (blank lines skipped), decoded exactly as kiln serve decodes a single-object /predict body.</summary>
    private static (int Line, string Message)? ReadJsonLines(Stream stream, ModelSchema schema, PredictionSink sink)
    {
        var batch = schema.Rent(Block);
        var buffer = new byte[1 << 16];
        int length = 0, start = 0, line = 0;
        var end = false;
        while (true)
        {
            var newline = buffer.AsSpan(start, length - start).IndexOf((byte)'\n');
            if (newline < 0)
            {
                if (end)
                {
                    if (start == length) break;
                    newline = length - start;
                }
                else
                {
                    // Keep the partial line and read more (growing the buffer for a line longer than it).
                    if (start > 0) { buffer.AsSpan(start, length - start).CopyTo(buffer); length -= start; start = 0; }
                    if (length == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2);
                    var read = stream.Read(buffer, length, buffer.Length - length);
                    if (read == 0) end = true;
                    length += read;
                    continue;
                }
            }
            line++;
            var text = buffer.AsSpan(start, newline);
            if (line == 1 && text.StartsWith(Bom)) text = text[3..];
            text = text.Trim(" \t\r"u8);
            start = Math.Min(length, start + newline + 1);
            if (text.IsEmpty) continue;
            if (text[0] == (byte)'[') return (line, "expected one JSON object of feature values per line, got an array");
            if (JsonRowsDecoder.Decode(text, batch) is { } error) return (line, error.Message);
            if (batch.Rows == Block)
            {
                sink.Write(batch);
                schema.Return(batch);
                batch = schema.Rent(Block);
            }
        }
        if (batch.Rows > 0) sink.Write(batch);
        return null;
    }

    /// <summary>A header row, then one row per record, each cell set as kiln serve's CSV body sets it.</summary>
    private static (int Line, string Message)? ReadCsv(Stream stream, ModelSchema schema, PredictionSink sink)
    {
        using var text = new StreamReader(stream, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        var reader = new CsvRecordReader(text);
        var record = new List<string>();
        var batch = schema.Rent(Block);
        int[]? columns = null;
        while (reader.Read(record))
        {
            if (CsvRowsDecoder.IsBlank(record)) continue;
            if (columns is null)
            {
                if (CsvRowsDecoder.Header(record, batch, out columns) is { } headerError) return (reader.Line, headerError.Message);
                continue;
            }
            if (CsvRowsDecoder.CountProblem(record, columns) is { } problem) return (reader.Line, problem);
            if (CsvRowsDecoder.Row(record, columns, batch) is { } error) return (reader.Line, error.Message);
            if (batch.Rows == Block)
            {
                sink.Write(batch);
                schema.Return(batch);
                batch = schema.Rent(Block);
            }
        }
        if (batch.Rows > 0) sink.Write(batch);
        return null;
    }
}

/// <summary>Scores a validated block and writes its predictions as JSON lines, shaped as kiln serve's /predict answers.</summary>
internal sealed class PredictionSink(OnnxModel model, Stream output) : IDisposable
{
    private readonly Prediction[] _predictions = new Prediction[1024];
    private readonly ArrayBufferWriter<byte> _buffer = new(1 << 16);
    private readonly string[] _classes = [.. model.Signature.ClassLabels ?? []];

    public void Write(InputBatch batch)
    {
        var predictions = _predictions.AsSpan(0, batch.Rows);
        model.Score(batch.Table, 0, predictions);
        _buffer.ResetWrittenCount();
        using (var writer = new Utf8JsonWriter(_buffer))
        {
            foreach (ref readonly var p in predictions)
            {
                writer.WriteStartObject();
                if (p.Label is null)
                {
                    writer.WriteNumber("prediction", p.Value);
                }
                else
                {
                    writer.WriteString("prediction", p.Label);
                    writer.WriteNumber("probability", p.Value);
                    if (p.Probabilities is { } probabilities && probabilities.Length == _classes.Length)
                    {
                        writer.WriteStartObject("probabilities");
                        for (var c = 0; c < probabilities.Length; c++) writer.WriteNumber(_classes[c], probabilities[c]);
                        writer.WriteEndObject();
                    }
                }
                writer.WriteEndObject();
                writer.Flush();
                _buffer.Write("\n"u8);
                writer.Reset(_buffer);
            }
        }
        output.Write(_buffer.WrittenSpan);
    }

    public void Dispose() => output.Flush();
}

/// <summary>A stream that first returns bytes already read (to detect the format) and then the rest of the input.</summary>
internal sealed class PrefixedStream(byte[] prefix, int prefixLength, Stream rest) : Stream
{
    private int _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (_position < prefixLength)
        {
            var n = Math.Min(count, prefixLength - _position);
            Array.Copy(prefix, _position, buffer, offset, n);
            _position += n;
            return n;
        }
        return rest.Read(buffer, offset, count);
    }

    public override void Flush() { }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
