using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Kiln.Bench.Training;

/// <summary>Small helpers shared by the benchmark sections.</summary>
internal static class Bench
{
    /// <summary>Rows of the warm-up runs that let the JIT compile the hot paths before timing.</summary>
    public const int WarmupRows = 50_000;

    public static double Median(IReadOnlyList<double> values)
    {
        var s = values.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    public static JsonArray ToJson(IEnumerable<double> values) => [.. values.Select(v => JsonValue.Create(Math.Round(v, 4)))];

    public static void Log(string message) => Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {message}");
}

/// <summary>Command-line options (all optional; run.sh passes the paths).</summary>
internal sealed class Options
{
    public string Work { get; private set; } = Path.Combine("bench", "results", "training-data");

    public string Out { get; private set; } = Path.Combine("bench", "results", "training.json");

    public string Scripts { get; private set; } = Path.Combine("bench", "training");

    public string PythonPath { get; private set; } = "/usr/bin/python3";

    public int Rows { get; private set; } = 1_000_000;

    public int ProfileRuns { get; private set; } = 3;

    public int LoadRuns { get; private set; } = 3;

    public int TrainRuns { get; private set; } = 3;

    public int TrainRows { get; private set; } = 20_000;

    public int Trees { get; private set; } = 100;

    public int Leaves { get; private set; } = 1024;

    public int MinSamplesLeaf { get; private set; } = 1;

    public int Seed { get; private set; } = 42;

    public HashSet<string> Sections { get; private set; } = ["profile", "load", "train"];

    public string Command { get; private set; } = "";

    public static Options Parse(string[] args)
    {
        var o = new Options { Command = string.Join(' ', ["Kiln.Bench.Training", .. args]) };
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int NextInt() => int.Parse(Next(), CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--work": o.Work = Next(); break;
                case "--out": o.Out = Next(); break;
                case "--scripts": o.Scripts = Next(); break;
                case "--python": o.PythonPath = Next(); break;
                case "--rows": o.Rows = NextInt(); break;
                case "--profile-runs": o.ProfileRuns = NextInt(); break;
                case "--load-runs": o.LoadRuns = NextInt(); break;
                case "--train-runs": o.TrainRuns = NextInt(); break;
                case "--train-rows": o.TrainRows = NextInt(); break;
                case "--trees": o.Trees = NextInt(); break;
                case "--leaves": o.Leaves = NextInt(); break;
                case "--min-samples-leaf": o.MinSamplesLeaf = NextInt(); break;
                case "--seed": o.Seed = NextInt(); break;
                case "--only": o.Sections = [.. Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)]; break;
                default:
                    throw new ArgumentException($"unknown option {args[i]} (known: --work --out --scripts --python --rows --profile-runs --load-runs " +
                        "--train-runs --train-rows --trees --leaves --min-samples-leaf --seed --only profile,load,train)");
            }
        }
        return o;
    }
}

/// <summary>What the figures were measured on.</summary>
internal static class Machine
{
    public static JsonObject Describe()
    {
        string? cpu = null;
        string? memory = null;
        string? load = null;
        try
        {
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
            memory = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal", StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
            load = File.ReadAllText("/proc/loadavg").Trim();
        }
        catch (IOException)
        {
            // Not Linux: leave the fields empty.
        }
        return new JsonObject
        {
            ["processors"] = Environment.ProcessorCount,
            ["cpu"] = cpu,
            ["memory"] = memory,
            ["load_average_at_start"] = load,
            ["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
            ["dotnet"] = Environment.Version.ToString(),
        };
    }
}

/// <summary>Runs a bench script with Debian's python3 (which has pandas and scikit-learn).</summary>
internal static class Python
{
    public static async Task<JsonNode> RunJsonAsync(Options options, string script, params string[] args)
    {
        var psi = new ProcessStartInfo(options.PythonPath) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(options.Scripts, script));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {options.PythonPath}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{script} failed (exit {p.ExitCode}): {await stderr}");
        return JsonNode.Parse(await stdout) ?? throw new InvalidOperationException($"{script} printed no JSON");
    }
}

/// <summary>Wall-clock and process CPU time of a section: on a shared machine the CPU time shows what waiting for a core hid.</summary>
internal readonly struct Timing
{
    private readonly long _start;
    private readonly TimeSpan _cpu;

    private Timing(long start, TimeSpan cpu)
    {
        _start = start;
        _cpu = cpu;
    }

    public static Timing Start()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return new(Stopwatch.GetTimestamp(), Cpu());
    }

    public (double Wall, double Cpu) Stop() => (Stopwatch.GetElapsedTime(_start).TotalSeconds, (Cpu() - _cpu).TotalSeconds);

    private static TimeSpan Cpu()
    {
        using var p = Process.GetCurrentProcess();
        return p.TotalProcessorTime;
    }
}
