using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>
/// The quickstart package (trained by the real binary) exported once per test run with `kiln package export edge`:
/// the NativeAOT publish of kiln-score takes one to a few minutes here, so every test shares this one directory
/// (out/edge in the source tree keeps the publish until the scorer's sources change).
/// </summary>
public sealed class EdgeExport : IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-edge");

    public string Package => _dir.File("fraud");

    public string Directory => _dir.File("edge");

    public string Scorer => Path.Combine(Directory, "kiln-score");

    public string ExportError { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var train = await KilnCli.RunAsync(["train", Path.Combine(TrainedPackage.Quickstart, "spec.yaml"), "--out", Package], _dir.Path);
        Assert.True(train.ExitCode == 0, train.ToString());
        var export = await KilnCli.RunAsync(["package", "export", "edge", Package, "--out", Directory], _dir.Path, timeout: TimeSpan.FromMinutes(25));
        Assert.True(export.ExitCode == 0, export.ToString());
        Assert.Equal(Scorer, export.StdOut.Trim());
        ExportError = export.StdErr;
    }

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>
/// kiln-score run as a process on JSON lines and CSV, compared with `kiln serve` scoring the original ML.NET package
/// (the oracle: ML.NET's own transforms and trees, not ONNX Runtime), and its refusals compared with kiln serve's.
/// </summary>
public sealed class EdgeExportTests(EdgeExport edge) : IClassFixture<EdgeExport>
{
    private static readonly string[] Inputs = ["amount", "hour", "merchant_category", "card_present", "distance_from_home_km", "customer_age"];

    [Fact]
    public async Task The_directory_holds_the_model_the_signature_and_a_native_scorer_without_ML_NET()
    {
        Assert.Contains("Compared 3 input example rows and the holdout rows (1600 of 1600)", edge.ExportError, StringComparison.Ordinal);
        Assert.Contains("Edge scorer (NativeAOT,", edge.ExportError, StringComparison.Ordinal);
        var files = System.IO.Directory.GetFiles(edge.Directory).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["kiln-score", "libonnxruntime.so", "libonnxruntime_providers_shared.so", "model.onnx", "signature.json"], files);
        // A native executable (ELF), not a managed assembly: no kiln-score.dll, no ML.NET, no Windows DLLs, under 50 MB.
        var head = new byte[4];
        await using (var s = File.OpenRead(edge.Scorer)) await s.ReadExactlyAsync(head);
        Assert.Equal("\u007fELF", Encoding.ASCII.GetString(head));
        Assert.True(System.IO.Directory.GetFiles(edge.Directory).Sum(f => new FileInfo(f).Length) < 50L << 20);
        var signature = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(edge.Directory, "signature.json"))).RootElement;
        Assert.Equal("float32", signature.GetProperty("inputs")[0].GetProperty("tensor_type").GetString());
    }

    [Fact]
    public async Task JSON_lines_and_CSV_score_as_kiln_serve_scores_the_package()
    {
        // 300 rows of the quickstart's recent traffic (some distances missing), without the id and the label.
        var csv = (await File.ReadAllLinesAsync(Path.Combine(TrainedPackage.Quickstart, "recent.csv"))).Skip(1).Take(300).Select(l => l.Split(',')[1..7]).ToList();
        using var dir = new TempDir("kiln-edge-run");
        var csvFile = dir.File("rows.csv");
        await File.WriteAllLinesAsync(csvFile, [string.Join(',', Inputs), .. csv.Select(c => string.Join(',', c))]);
        var jsonLines = string.Join('\n', csv.Select(Json)) + "\n";

        var fromJson = await Proc.RunAsync(edge.Scorer, [], dir.Path, stdin: jsonLines);
        Assert.True(fromJson.ExitCode == 0, fromJson.ToString());
        var fromCsv = await Proc.RunAsync(edge.Scorer, [csvFile, "--out", dir.File("out.jsonl")], dir.Path);
        Assert.True(fromCsv.ExitCode == 0, fromCsv.ToString());
        var jsonAnswers = Parse(fromJson.StdOut);
        var csvAnswers = Parse(await File.ReadAllTextAsync(dir.File("out.jsonl")));

        var port = TestEnvironment.FreePort().ToString(CultureInfo.InvariantCulture);
        using var serve = KilnCli.Start(["serve", "--model", $"fraud={edge.Package}", "--port", port, "--grpc-port", "-1"]);
        try
        {
            using var http = new HttpClient();
            await WaitReadyAsync(http, port, serve);
            using var r = await http.PostAsync(new Uri($"http://127.0.0.1:{port}/predict/fraud"), new StringContent("[" + string.Join(',', csv.Select(Json)) + "]", Encoding.UTF8, "application/json"));
            var text = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.OK, text);
            var served = JsonDocument.Parse(text).RootElement.GetProperty("predictions").EnumerateArray()
                .Select(p => (Label: p.GetProperty("prediction").GetString()!, P: p.GetProperty("probability").GetDouble())).ToList();

            Assert.Equal(300, served.Count);
            Assert.Equal(300, jsonAnswers.Count);
            Assert.Equal(300, csvAnswers.Count);
            for (var i = 0; i < served.Count; i++)
            {
                Assert.Equal(served[i].Label, jsonAnswers[i].Label);
                Assert.True(Math.Abs(served[i].P - jsonAnswers[i].P) <= 1e-5, $"row {i}: kiln serve {served[i].P}, kiln-score {jsonAnswers[i].P}");
                Assert.Equal(jsonAnswers[i], csvAnswers[i]);
            }
            Assert.Contains(served, s => s.Label == "1");

            // A bad row: kiln serve's message for the same object, after the input's name and line; nothing written.
            const string Bad = """{"amount": "a lot", "hour": 3, "merchant_category": "grocery", "card_present": "yes", "distance_from_home_km": 1, "customer_age": 30}""";
            using var refused = await http.PostAsync(new Uri($"http://127.0.0.1:{port}/predict/fraud"), new StringContent(Bad, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
            var detail = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("detail").GetString();
            Assert.Equal("amount: expected a number, got a string", detail);
            var bad = await Proc.RunAsync(edge.Scorer, [], dir.Path, stdin: Json(csv[0]) + "\n\n" + Bad + "\n" + Json(csv[1]) + "\n");
            Assert.Equal(1, bad.ExitCode);
            Assert.Equal($"kiln-score: stdin line 3: {detail}", bad.StdErr.Trim());
            Assert.Equal("", bad.StdOut);

            const string Unseen = """{"amount": 1, "hour": 3, "merchant_category": "casino", "card_present": "yes", "distance_from_home_km": 1, "customer_age": 30}""";
            using var unseen = await http.PostAsync(new Uri($"http://127.0.0.1:{port}/predict/fraud"), new StringContent(Unseen, Encoding.UTF8, "application/json"));
            detail = JsonDocument.Parse(await unseen.Content.ReadAsStringAsync()).RootElement.GetProperty("detail").GetString();
            Assert.Equal("merchant_category: category 'casino' was never seen in training", detail);
            var badCsv = dir.File("bad.csv");
            await File.WriteAllLinesAsync(badCsv, [string.Join(',', Inputs), string.Join(',', csv[0]), string.Join(',', csv[1]), "1,3,casino,yes,1,30"]);
            bad = await Proc.RunAsync(edge.Scorer, [badCsv, "--out", dir.File("bad.jsonl")], dir.Path);
            Assert.Equal(1, bad.ExitCode);
            Assert.Equal($"kiln-score: {badCsv} line 4: {detail}", bad.StdErr.Trim());
            Assert.False(File.Exists(dir.File("bad.jsonl")));
            Assert.DoesNotContain(System.IO.Directory.GetFiles(dir.Path), f => Path.GetFileName(f).StartsWith(".bad.jsonl", StringComparison.Ordinal));
        }
        finally
        {
            serve.Kill(entireProcessTree: true);
        }
    }

    /// <summary>
    /// ONNX Runtime 1.31 left to itself starts its usage telemetry on Linux, which writes a device id and a SQLite file
    /// under ~/.cache/Microsoft/DeveloperTools/.onnxruntime (and costs 25-45 ms of the start); kiln-score turns it off
    /// (docs/edge.md#start-up), so scoring leaves the user's home directory as it was. The scorer exported before this
    /// change wrote both files on every run.
    /// </summary>
    [Fact]
    public async Task Scoring_writes_nothing_to_the_home_directory()
    {
        using var home = new TempDir("kiln-edge-home");
        var row = """{"amount": 12.5, "hour": 3, "merchant_category": "grocery", "card_present": "yes", "distance_from_home_km": 1, "customer_age": 30}""";
        var r = await Proc.RunAsync(edge.Scorer, [], home.Path, stdin: row + "\n", env: new Dictionary<string, string> { ["HOME"] = home.Path });
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.StartsWith("{\"prediction\":", r.StdOut, StringComparison.Ordinal);
        Assert.Empty(System.IO.Directory.EnumerateFileSystemEntries(home.Path, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Wrong_arguments_are_one_line_and_exit_1()
    {
        using var dir = new TempDir("kiln-edge-args");
        var r = await Proc.RunAsync(edge.Scorer, [dir.File("missing.csv")], dir.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"kiln-score: {dir.File("missing.csv")}: no such file", r.StdErr.Trim());
        r = await Proc.RunAsync(edge.Scorer, ["--format", "xml"], dir.Path, stdin: "");
        Assert.Equal("kiln-score: --format: 'xml' is not a format (expected jsonl or csv)", r.StdErr.Trim());

        r = await KilnCli.RunAsync(["package", "export", "edge", edge.Package, "--out", dir.File("e"), "--runtime", "osx-arm64"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: --runtime: 'osx-arm64' is not a platform the edge scorer is published for (expected linux-x64, linux-arm64, win-x64)", r.StdErr, StringComparison.Ordinal);
        r = await KilnCli.RunAsync(["package", "export", "edge", edge.Package, "--out", edge.Directory]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"error: {edge.Directory}: the directory is not empty", r.StdErr, StringComparison.Ordinal);

        // Without Kiln's source the scorer cannot be published: one line saying so, and no directory left behind.
        r = await KilnCli.RunAsync(["package", "export", "edge", edge.Package, "--out", dir.File("e")], env: new Dictionary<string, string> { ["KILN_SOURCE_ROOT"] = dir.Path });
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"error: {dir.Path}: not a Kiln source tree (src/Kiln.Edge/Kiln.Edge.csproj is missing)", r.StdErr, StringComparison.Ordinal);
        Assert.False(System.IO.Directory.Exists(dir.File("e")));
    }

    /// <summary>
    /// The linux-arm64 scorer (a trimmed self-contained publish: NativeAOT does not cross-compile here) run for real
    /// on an emulated arm64 CPU: Debian's qemu-user with the arm64 C and C++ runtimes (libc6-arm64-cross,
    /// libstdc++6-arm64-cross, which test.sh installs). Its answers are the x64 scorer's (which the test above
    /// checks against kiln serve): the same labels, probabilities within 1e-5 (ONNX Runtime's arm64 kernels may round
    /// the last float bit differently), and the same refusal for a bad row.
    /// </summary>
    [Fact]
    public async Task The_linux_arm64_scorer_runs_on_an_emulated_arm64_cpu_and_answers_as_the_x64_one()
    {
        const string Qemu = "/usr/bin/qemu-aarch64";
        const string CrossLibs = "/usr/aarch64-linux-gnu/lib";
        Assert.True(File.Exists(Qemu) && File.Exists(Path.Combine(CrossLibs, "libstdc++.so.6")),
            "qemu-user, libc6-arm64-cross and libstdc++6-arm64-cross are needed (test.sh installs them)");
        using var sysroot = ArmSysroot(CrossLibs);
        await AnswersAsTheX64ScorerAsync("linux-arm64", "kiln-score", head =>
        {
            Assert.Equal("\u007fELF", Encoding.ASCII.GetString(head, 0, 4));
            Assert.Equal(183, BitConverter.ToUInt16(head, 18)); // e_machine: EM_AARCH64
        }, (scorer, args) => (Qemu, ["-L", sysroot.Path, scorer, .. args]), env: null);
    }

    /// <summary>
    /// The emulated machine's root for qemu-user's <c>-L</c> (a guest's absolute path is looked up here first): the arm64
    /// C and C++ runtimes, and a <c>/proc/cpuinfo</c> as an arm64 Linux shows it (one Cortex-A72 entry per CPU). qemu-user
    /// 7.2 passes the x86 host's own /proc/cpuinfo through to the guest, and ONNX Runtime's CPU detection (cpuinfo), looking
    /// for arm64 fields in it, crashed with a null dereference on some hosts (a 6.18 kernel with per-CPU clusters).
    /// </summary>
    private static TempDir ArmSysroot(string crossLibs)
    {
        var root = new TempDir("kiln-edge-armroot");
        File.CreateSymbolicLink(root.File("lib"), crossLibs);
        System.IO.Directory.CreateDirectory(root.File("proc"));
        var cpuinfo = new StringBuilder();
        for (var cpu = 0; cpu < Environment.ProcessorCount; cpu++)
        {
            cpuinfo.Append(CultureInfo.InvariantCulture, $"processor\t: {cpu}\n").Append("BogoMIPS\t: 100.00\n")
                .Append("Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\n").Append("CPU implementer\t: 0x41\n")
                .Append("CPU architecture: 8\n").Append("CPU variant\t: 0x0\n").Append("CPU part\t: 0xd08\n").Append("CPU revision\t: 3\n\n");
        }
        File.WriteAllText(Path.Combine(root.Path, "proc", "cpuinfo"), cpuinfo.ToString());
        return root;
    }

    /// <summary>
    /// The win-x64 scorer (kiln-score.exe, trimmed self-contained, with ONNX Runtime's Windows DLL) run for real under
    /// Wine (Debian's wine64, which test.sh installs), in a Wine prefix of its own: the same answers as the x64 scorer
    /// (labels equal, probabilities within 1e-5) and the same refusal for a bad row.
    /// </summary>
    [Fact]
    public async Task The_win_x64_scorer_runs_under_wine_and_answers_as_the_x64_one()
    {
        const string Wine = "/usr/lib/wine/wine64";
        Assert.True(File.Exists(Wine), "wine64 is needed (test.sh installs it)");
        using var prefix = new TempDir("kiln-edge-wine");
        var env = new Dictionary<string, string> { ["WINEPREFIX"] = prefix.Path, ["WINEDEBUG"] = "-all" };
        await AnswersAsTheX64ScorerAsync("win-x64", "kiln-score.exe", head =>
        {
            Assert.Equal("MZ", Encoding.ASCII.GetString(head, 0, 2)); // a PE executable
        }, (scorer, args) => (Wine, [scorer, .. args]), env);
    }

    /// <summary>
    /// Exports the package for <paramref name="runtime"/>, checks the scorer's first bytes, runs it (through
    /// <paramref name="run"/>: an emulator or Wine) on 200 quickstart rows as CSV and on one bad JSON line, and
    /// compares with the x64 scorer.
    /// </summary>
    private async Task AnswersAsTheX64ScorerAsync(string runtime, string scorerName, Action<byte[]> checkHead,
        Func<string, string[], (string Program, string[] Args)> run, Dictionary<string, string>? env)
    {
        using var dir = new TempDir($"kiln-edge-{runtime}");
        var outDir = dir.File($"edge-{runtime}");
        var export = await KilnCli.RunAsync(["package", "export", "edge", edge.Package, "--out", outDir, "--runtime", runtime], dir.Path, timeout: TimeSpan.FromMinutes(25));
        Assert.True(export.ExitCode == 0, export.ToString());
        Assert.Contains("Edge scorer (trimmed self-contained,", export.StdErr, StringComparison.Ordinal);
        var scorer = Path.Combine(outDir, scorerName);
        var head = new byte[20];
        await using (var s = File.OpenRead(scorer)) await s.ReadExactlyAsync(head);
        checkHead(head);

        var csv = (await File.ReadAllLinesAsync(Path.Combine(TrainedPackage.Quickstart, "recent.csv"))).Skip(1).Take(200).Select(l => l.Split(',')[1..7]).ToList();
        var csvFile = dir.File("rows.csv");
        await File.WriteAllLinesAsync(csvFile, [string.Join(',', Inputs), .. csv.Select(c => string.Join(',', c))]);
        var x64 = await Proc.RunAsync(edge.Scorer, [csvFile], dir.Path);
        Assert.True(x64.ExitCode == 0, x64.ToString());
        var (program, args) = run(scorer, [csvFile]);
        var other = await Proc.RunAsync(program, args, dir.Path, env: env, timeout: TimeSpan.FromMinutes(10));
        Assert.True(other.ExitCode == 0, other.ToString());
        var expected = Parse(x64.StdOut);
        var actual = Parse(other.StdOut);
        Assert.Equal(200, expected.Count);
        Assert.Equal(200, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Label, actual[i].Label);
            Assert.True(Math.Abs(expected[i].P - actual[i].P) <= 1e-5, $"row {i}: x64 {expected[i].P}, {runtime} {actual[i].P}");
        }

        const string Bad = """{"amount": "a lot", "hour": 3, "merchant_category": "grocery", "card_present": "yes", "distance_from_home_km": 1, "customer_age": 30}""";
        (program, args) = run(scorer, []);
        var bad = await Proc.RunAsync(program, args, dir.Path, stdin: Bad + "\n", env: env, timeout: TimeSpan.FromMinutes(5));
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("kiln-score: stdin line 1: amount: expected a number, got a string", bad.StdErr, StringComparison.Ordinal);
        Assert.Equal("", bad.StdOut.Trim());
    }

    private static string Json(string[] c) =>
        $$"""{"amount": {{c[0]}}, "hour": {{c[1]}}, "merchant_category": "{{c[2]}}", "card_present": "{{c[3]}}", "distance_from_home_km": {{(c[4].Length == 0 ? "null" : c[4])}}, "customer_age": {{c[5]}}}""";

    private static List<(string Label, double P)> Parse(string jsonLines) =>
        [.. jsonLines.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
            .Select(p => (p.GetProperty("prediction").GetString()!, p.GetProperty("probability").GetDouble()))];

    private static async Task WaitReadyAsync(HttpClient http, string port, System.Diagnostics.Process process)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(process.HasExited, "kiln serve exited before it was ready");
            try
            {
                using var r = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/ready"));
                if (r.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(200);
        }
        Assert.Fail("kiln serve did not become ready");
    }
}
