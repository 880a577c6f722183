using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Kiln.Core;
using Kiln.Core.Packaging;

namespace Kiln.Training.Onnx;

/// <summary>What to export for the edge: the package, the directory to write and the platform of the scorer.</summary>
public sealed record EdgeExportOptions(string Package, string Output)
{
    /// <summary>linux-x64, linux-arm64 or win-x64; default: this machine's.</summary>
    public string? Runtime { get; init; }

    /// <summary>Rows to compare the ONNX export on (see <see cref="OnnxExportOptions.Sample"/>).</summary>
    public string? Sample { get; init; }

    public double Tolerance { get; init; } = 1e-5;

    /// <summary>The Kiln source tree holding src/Kiln.Edge; default: $KILN_SOURCE_ROOT, else found above the running kiln.</summary>
    public string? SourceRoot { get; init; }
}

/// <summary>What was written: the directory, the scorer's path, how it was built, its size, and the ONNX check (ML.NET packages).</summary>
public sealed record EdgeExportResult(string Directory, string Scorer, string Build, long Bytes, OnnxExportResult? Check);

/// <summary>
/// <c>kiln package export edge</c>: the package's model as ONNX (exported and checked, or copied when it is ONNX
/// already), the signature the graph is fed by, and the edge scorer (src/Kiln.Edge) published for a platform with the
/// installed .NET SDK — NativeAOT for this machine's platform, trimmed self-contained for another (NativeAOT does not
/// cross-compile between operating systems or, without a cross toolchain, architectures). A publish is kept under
/// out/edge/RID in the source tree and reused until the scorer's sources change.
/// </summary>
public static class EdgeExporter
{
    /// <summary>The platforms a scorer can be published for.</summary>
    public static IReadOnlyList<string> Runtimes { get; } = ["linux-x64", "linux-arm64", "win-x64"];

    private const string ProjectPath = "src/Kiln.Edge/Kiln.Edge.csproj";

    public static async Task<EdgeExportResult> ExportAsync(EdgeExportOptions options, CancellationToken ct = default)
    {
        var runtime = options.Runtime ?? RuntimeInformation.RuntimeIdentifier;
        if (!Runtimes.Contains(runtime)) throw new KilnException($"--runtime: '{runtime}' is not a platform the edge scorer is published for (expected {string.Join(", ", Runtimes)})");
        var package = ModelPackage.Load(options.Package);
        var output = Path.GetFullPath(options.Output);
        var parent = Path.GetDirectoryName(output)!;
        if (!Directory.Exists(parent)) throw new KilnException($"{options.Output}: the directory {parent} does not exist");
        if (File.Exists(output)) throw new KilnException($"{options.Output}: is a file; name a directory to write");
        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any()) throw new KilnException($"{options.Output}: the directory is not empty");
        var root = FindSourceRoot(options.SourceRoot);

        var staging = Path.Combine(parent, $".{Path.GetFileName(output)}.staging-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            const string ModelFile = "model.onnx";
            OnnxExportResult? check = null;
            ModelSignature signature;
            if (package.Manifest.Runtime == ModelRuntime.Mlnet)
            {
                check = await OnnxExporter.ExportAsync(new OnnxExportOptions(package.Directory, Path.Combine(staging, ModelFile)) { Sample = options.Sample, Tolerance = options.Tolerance }, ct).ConfigureAwait(false);
                signature = OnnxExporter.ExportedSignature(package.Signature);
            }
            else
            {
                File.Copy(package.ModelPath, Path.Combine(staging, ModelFile));
                signature = package.Signature;
            }
            ModelPackage.WriteJson(Path.Combine(staging, ModelPackage.SignatureFile), signature);

            var (published, build) = await PublishAsync(root, runtime, ct).ConfigureAwait(false);
            foreach (var file in Directory.EnumerateFiles(published))
            {
                var target = Path.Combine(staging, Path.GetFileName(file));
                File.Copy(file, target);
                if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(target, File.GetUnixFileMode(file));
            }
            if (Directory.Exists(output)) Directory.Delete(output);
            Directory.Move(staging, output);
            var scorer = Path.Combine(output, runtime.StartsWith("win", StringComparison.Ordinal) ? "kiln-score.exe" : "kiln-score");
            var bytes = Directory.EnumerateFiles(output).Sum(f => new FileInfo(f).Length);
            return new EdgeExportResult(output, scorer, build, bytes, check);
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>The Kiln source tree: the option, $KILN_SOURCE_ROOT, or the first folder above the running kiln that holds src/Kiln.Edge.</summary>
    private static string FindSourceRoot(string? given)
    {
        var explicitRoot = given ?? Environment.GetEnvironmentVariable("KILN_SOURCE_ROOT");
        if (!string.IsNullOrEmpty(explicitRoot))
        {
            return File.Exists(Path.Combine(explicitRoot, ProjectPath)) ? Path.GetFullPath(explicitRoot)
                : throw new KilnException($"{explicitRoot}: not a Kiln source tree ({ProjectPath} is missing)");
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, ProjectPath))) return dir.FullName;
        throw new KilnException($"the edge scorer is published from Kiln's source ({ProjectPath}) and none was found above {AppContext.BaseDirectory}; run ./kiln from a Kiln checkout or set KILN_SOURCE_ROOT");
    }

    /// <summary>The published scorer's folder for a platform, publishing it when its sources changed since the last time.</summary>
    private static async Task<(string Directory, string Build)> PublishAsync(string root, string runtime, CancellationToken ct)
    {
        var aot = runtime == RuntimeInformation.RuntimeIdentifier;
        var build = aot ? "NativeAOT" : "trimmed self-contained";
        var cache = Path.Combine(root, "out", "edge");
        Directory.CreateDirectory(cache);
        var target = Path.Combine(cache, runtime);
        var stamp = target + ".built";

        // One publish at a time (several exports may start together); the second finds the first's result.
        var gate = await LockAsync(Path.Combine(cache, ".lock"), ct).ConfigureAwait(false);
        await using var held = gate.ConfigureAwait(false);
        if (File.Exists(stamp) && !SourcesNewerThan(root, File.GetLastWriteTimeUtc(stamp))) return (target, build);

        var fresh = target + ".publishing";
        if (Directory.Exists(fresh)) Directory.Delete(fresh, recursive: true);
        var log = Path.Combine(cache, $"{runtime}.log");
        string[] args =
        [
            "publish", Path.Combine(root, ProjectPath), "-c", "Release", "-r", runtime, "-o", fresh,
            "--artifacts-path", Path.Combine(cache, "artifacts"), "--disable-build-servers", "-nologo",
            .. aot ? Array.Empty<string>() : ["-p:KilnEdgeTrimmed=true", "--self-contained"],
        ];
        var (exit, text) = await RunDotnetAsync(args, root, ct).ConfigureAwait(false);
        await File.WriteAllTextAsync(log, text, ct).ConfigureAwait(false);
        if (exit != 0)
        {
            var first = text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Contains("error", StringComparison.OrdinalIgnoreCase)) ?? $"dotnet exited with {exit}";
            throw new KilnException($"publishing the edge scorer for {runtime} ({build}) failed: {first} (the whole log: {log})");
        }
        if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
        Directory.Move(fresh, target);
        await File.WriteAllTextAsync(stamp, build, ct).ConfigureAwait(false);
        return (target, build);
    }

    private static bool SourcesNewerThan(string root, DateTime builtUtc)
    {
        string[] folders = ["src/Kiln.Edge", "src/Kiln.Scoring.Core", "src/Kiln.Core"];
        foreach (var file in new[] { "Directory.Build.props", "Directory.Packages.props" })
            if (File.GetLastWriteTimeUtc(Path.Combine(root, file)) > builtUtc) return true;
        foreach (var folder in folders)
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(root, folder), "*", SearchOption.AllDirectories))
            {
                if (file.Contains("/obj/", StringComparison.Ordinal) || file.Contains("/bin/", StringComparison.Ordinal)) continue;
                if (File.GetLastWriteTimeUtc(file) > builtUtc) return true;
            }
        }
        return false;
    }

    private static async Task<FileStream> LockAsync(string path, CancellationToken ct)
    {
        while (true)
        {
            try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) { await Task.Delay(500, ct).ConfigureAwait(false); }
        }
    }

    private static async Task<(int Exit, string Output)> RunDotnetAsync(IReadOnlyList<string> args, string root, CancellationToken ct)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        // A kiln started by MSBuild or a test host inherits MSBuild's variables; the publish must find its own SDK.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k.StartsWith("VSTEST", StringComparison.Ordinal)).ToList())
            psi.Environment.Remove(key);
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new KilnException("could not start dotnet");
        }
        catch (Win32Exception)
        {
            throw new KilnException("the .NET SDK (dotnet) is not on PATH: kiln package export edge publishes the scorer with it (docs/edge.md)");
        }
        using (process)
        await using (ct.Register(() => process.Kill(entireProcessTree: true)).ConfigureAwait(false))
        {
            var stdout = process.StandardOutput.ReadToEndAsync(ct);
            var stderr = process.StandardError.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct).ConfigureAwait(false);
            return (process.ExitCode, await stdout.ConfigureAwait(false) + await stderr.ConfigureAwait(false));
        }
    }
}
