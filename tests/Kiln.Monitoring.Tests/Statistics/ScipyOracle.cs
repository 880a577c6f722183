using System.Globalization;
using System.Text.Json;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Statistics;

/// <summary>Runs a Python script against scipy with the test's data in a temp JSON file; the script prints JSON.</summary>
internal static class ScipyOracle
{
    // Debian's python3 carries python3-scipy (test.sh installs it); a pyenv or venv python3 earlier on PATH may not.
    private static readonly string Python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

    public static async Task<JsonElement> RunAsync(object data, string script)
    {
        using var dir = new TempDir("kiln-scipy");
        var path = dir.File("data.json");
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(data));
        var prelude = "import json, sys, warnings\nimport numpy as np\nfrom scipy import stats, special\n" +
                      "from scipy.spatial import distance\nwarnings.simplefilter('ignore')\n" +
                      $"data = json.load(open({JsonSerializer.Serialize(path)}))\n";
        var result = await Proc.RunAsync(Python, ["-c", prelude + script]);
        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(result.StdOut);
        return doc.RootElement.Clone();
    }

    public static double Number(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number => e.GetDouble(),
        JsonValueKind.String => double.Parse(e.GetString()!, CultureInfo.InvariantCulture),
        _ => double.NaN,
    };

    /// <summary>Asserts |expected - actual| &lt;= tol (NaN equals NaN, infinities must match).</summary>
    public static void Close(double expected, double actual, double tol, string what)
    {
        if (double.IsNaN(expected) && double.IsNaN(actual)) return;
        if (double.IsInfinity(expected) || double.IsInfinity(actual))
        {
            Assert.True(expected == actual, $"{what}: expected {expected}, got {actual}");
            return;
        }
        Assert.True(Math.Abs(expected - actual) <= tol, $"{what}: expected {expected:R}, got {actual:R} (diff {Math.Abs(expected - actual):E2})");
    }
}
