using Kiln.Core;

namespace Kiln.Edge;

/// <summary>The input's format: one JSON object per line, or CSV with a header row.</summary>
internal enum InputFormat
{
    Auto,
    JsonLines,
    Csv,
}

/// <summary>The scorer's command line: <c>kiln-score [INPUT] [--model DIR] [--format jsonl|csv] [--out FILE]</c>.</summary>
internal sealed record EdgeOptions(string? Input, string ModelDirectory, InputFormat Format, string? Out)
{
    public const string Usage = """
        Usage: kiln-score [INPUT] [--format jsonl|csv] [--out FILE] [--model DIR]

        Scores rows with the ONNX model and signature beside this executable (or in --model DIR) and writes one
        JSON object per row: {"prediction": ..., "probability": ...} (classifiers add "probabilities" for every class).

          INPUT            a file of JSON lines (one object of feature values per line) or CSV with a header row;
                           standard input when absent or "-"
          --format F       jsonl or csv (default: from the file's extension, else from the first character)
          --out FILE       write the predictions to FILE (only once every row is valid) instead of standard output
          --model DIR      the directory holding model.onnx and signature.json (default: the executable's)

        A row that breaks the signature stops the run with kiln serve's message and its line number (exit code 1).

        """;

    /// <summary>The options, or null when help was asked for; a KilnException names a wrong argument.</summary>
    public static EdgeOptions? Parse(string[] args)
    {
        string? input = null, model = null, output = null;
        var format = InputFormat.Auto;
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            switch (a)
            {
                case "-h" or "--help":
                    return null;
                case "--model":
                    model = Value(args, ref i);
                    break;
                case "--out" or "-o":
                    output = Value(args, ref i);
                    break;
                case "--format":
                    format = Value(args, ref i) switch
                    {
                        "jsonl" or "json" => InputFormat.JsonLines,
                        "csv" => InputFormat.Csv,
                        var f => throw new KilnException($"--format: '{f}' is not a format (expected jsonl or csv)"),
                    };
                    break;
                default:
                    if (a.StartsWith('-') && a != "-") throw new KilnException($"unknown option '{a}' (see kiln-score --help)");
                    if (input is not null) throw new KilnException($"one input at a time: got '{input}' and '{a}'");
                    input = a;
                    break;
            }
        }
        return new EdgeOptions(input == "-" ? null : input, model ?? AppContext.BaseDirectory, format, output);
    }

    private static string Value(string[] args, ref int i)
    {
        if (i + 1 >= args.Length) throw new KilnException($"{args[i]}: a value is required");
        return args[++i];
    }
}
