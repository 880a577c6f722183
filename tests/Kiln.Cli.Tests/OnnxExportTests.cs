using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>
/// `kiln package export onnx` with the real binary: the quickstart package (one-hot, missing-value replacement, a
/// calibrated FastForest) exported, read back by python3-onnx, wrapped again by `kiln package onnx` and served next
/// to the original by one `kiln serve`: every answer the same.
/// </summary>
public sealed class OnnxExportTests(TrainedPackage package) : IClassFixture<TrainedPackage>
{
    [Fact]
    public async Task Export_then_import_then_serve_answers_as_the_original_package()
    {
        using var dir = new TempDir("kiln-onnx-export");
        var onnx = dir.File("fraud.onnx");
        var export = await KilnCli.RunAsync(["package", "export", "onnx", package.Directory, "--out", onnx]);
        Assert.True(export.ExitCode == 0, export.ToString());
        Assert.Equal(onnx, export.StdOut.Trim());
        // The trainer's holdout (20% of 8,000 rows) is found again from the package's metadata and compared.
        Assert.Contains("Compared 3 input example rows and the holdout rows (1600 of 1600)", export.StdErr, StringComparison.Ordinal);

        // The graph's inputs, read by python3-onnx: the signature's names, float for numbers, string for categories.
        var inputs = await Proc.PythonAsync($$"""
            import onnx
            m = onnx.load('{{onnx}}')
            print(' '.join(f'{i.name}:{onnx.TensorProto.DataType.Name(i.type.tensor_type.elem_type)}' for i in m.graph.input))
            print(' '.join(o.name for o in m.graph.output))
            """);
        Assert.True(inputs.ExitCode == 0, inputs.ToString());
        var lines = inputs.StdOut.Trim().Split('\n');
        Assert.Equal("amount:FLOAT hour:FLOAT merchant_category:STRING card_present:STRING distance_from_home_km:FLOAT customer_age:FLOAT", lines[0]);
        Assert.Equal("Probability.output", lines[1]);

        var wrapped = dir.File("fraud-onnx");
        var import = await KilnCli.RunAsync(["package", "onnx", onnx, "--name", "fraud-onnx", "--out", wrapped]);
        Assert.True(import.ExitCode == 0, import.ToString());
        var signature = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(wrapped, "signature.json"))).RootElement;
        Assert.Equal("binary", signature.GetProperty("task").GetString());
        Assert.Equal(7, signature.GetProperty("inputs")[2].GetProperty("categories").GetArrayLength()); // the domain came along

        var port = TestEnvironment.FreePort().ToString(CultureInfo.InvariantCulture);
        using var serve = KilnCli.Start(["serve", "--model", $"mlnet={package.Directory}", "--model", $"onnx={wrapped}", "--port", port, "--grpc-port", "-1"]);
        try
        {
            using var http = new HttpClient();
            await WaitReadyAsync(http, $"http://127.0.0.1:{port}/ready", serve);

            // 300 rows of the quickstart's recent traffic (some distances missing, row 7's too), as one batch to each model.
            var csv = (await File.ReadAllLinesAsync(Path.Combine(TrainedPackage.Quickstart, "recent.csv"))).Skip(1).Take(300).ToList();
            var rows = new StringBuilder("[");
            for (var i = 0; i < csv.Count; i++)
            {
                var c = csv[i].Split(',');
                var distance = i == 7 || c[5].Length == 0 ? "null" : c[5];
                rows.Append(CultureInfo.InvariantCulture, $$"""{"amount": {{c[1]}}, "hour": {{c[2]}}, "merchant_category": "{{c[3]}}", "card_present": "{{c[4]}}", "distance_from_home_km": {{distance}}, "customer_age": {{c[6]}}}""");
                rows.Append(i + 1 < csv.Count ? "," : "]");
            }
            var original = await PredictAsync(http, port, "mlnet", rows.ToString());
            var exported = await PredictAsync(http, port, "onnx", rows.ToString());
            Assert.Equal(300, original.Count);
            Assert.Equal(300, exported.Count);
            for (var i = 0; i < original.Count; i++)
            {
                Assert.Equal(original[i].Label, exported[i].Label);
                Assert.True(Math.Abs(original[i].P - exported[i].P) <= 1e-5, $"row {i}: ML.NET {original[i].P} vs ONNX {exported[i].P}");
            }

            // A bad request reads the same from both: the signature's domain travelled with the model.
            const string Unseen = """{"amount": 1, "hour": 3, "merchant_category": "casino", "card_present": "yes", "distance_from_home_km": 1, "customer_age": 30}""";
            foreach (var model in new[] { "mlnet", "onnx" })
            {
                using var r = await http.PostAsync(new Uri($"http://127.0.0.1:{port}/predict/{model}"), new StringContent(Unseen, Encoding.UTF8, "application/json"));
                Assert.Equal(HttpStatusCode.UnprocessableEntity, r.StatusCode);
                Assert.Contains("merchant_category: category 'casino' was never seen in training", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
        }
        finally
        {
            serve.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task An_export_that_does_not_match_is_refused_naming_the_column_and_leaves_no_file()
    {
        using var dir = new TempDir("kiln-onnx-refuse");
        var onnx = dir.File("fraud.onnx");
        // With no tolerance at all, the float32 sums of ONNX Runtime's tree ensemble and ML.NET's differ in the last bits.
        var r = await KilnCli.RunAsync(["package", "export", "onnx", package.Directory, "--out", onnx, "--tolerance", "0"]);
        Assert.Equal(1, r.ExitCode);
        var error = r.StdErr.Trim().Split('\n')[0];
        Assert.StartsWith($"error: {package.Directory}: the ONNX export does not score like the package: on the input example, row ", error, StringComparison.Ordinal);
        Assert.Contains("the first column that differs is 'Score', made by the trainer; no file written", error, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public async Task Exporting_an_onnx_package_or_a_missing_one_is_one_line()
    {
        using var dir = new TempDir("kiln-onnx-bad");
        var r = await KilnCli.RunAsync(["package", "export", "onnx", dir.File("nowhere"), "--out", dir.File("m.onnx")]);
        Assert.Equal(1, r.ExitCode);
        Assert.Single(r.StdErr.Trim().Split('\n'), l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.False(File.Exists(dir.File("m.onnx")));

        r = await KilnCli.RunAsync(["package", "export", "onnx", package.Directory, "--out", dir.File("m.onnx"), "--tolerance", "-1"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: --tolerance: -1 is not a number of 0 or more", r.StdErr, StringComparison.Ordinal);
    }

    private static async Task<List<(string Label, double P)>> PredictAsync(HttpClient http, string port, string model, string body)
    {
        using var r = await http.PostAsync(new Uri($"http://127.0.0.1:{port}/predict/{model}"), new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.OK, text);
        return [.. JsonDocument.Parse(text).RootElement.GetProperty("predictions").EnumerateArray()
            .Select(p => (p.GetProperty("prediction").GetString()!, p.GetProperty("probability").GetDouble()))];
    }

    private static async Task WaitReadyAsync(HttpClient http, string url, System.Diagnostics.Process process)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(process.HasExited, "kiln serve exited before it was ready");
            try
            {
                using var r = await http.GetAsync(new Uri(url));
                if (r.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"{url} was not ready within 60 s");
    }
}
