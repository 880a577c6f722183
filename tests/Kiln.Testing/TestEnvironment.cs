using System.Diagnostics;

namespace Kiln.Testing;

/// <summary>Where the repository is, and how to reach the services that test.sh starts.</summary>
public static class TestEnvironment
{
    /// <summary>The repository root (the folder holding Kiln.slnx).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The PostgreSQL connection string test.sh exports.</summary>
    public static string Postgres => Service("KILN_TEST_POSTGRES", "PostgreSQL");

    /// <summary>The Redis endpoint test.sh exports.</summary>
    public static string Redis => Service("KILN_TEST_REDIS", "Redis");

    // A test that needs a service fails without it, never passes by returning early: ./test.sh
    // always installs and starts both, so an absent one is a broken run, not a reason to skip.
    private static string Service(string variable, string name)
    {
        var value = Environment.GetEnvironmentVariable(variable);
        return string.IsNullOrEmpty(value)
            ? throw new InvalidOperationException($"{variable} is not set: run the tests through ./test.sh, which starts {name}")
            : value;
    }

    private static string FindRepoRoot()
    {
        var fromEnv = Environment.GetEnvironmentVariable("KILN_REPO_ROOT");
        if (!string.IsNullOrEmpty(fromEnv)) return fromEnv;
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Kiln.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (Kiln.slnx)");
    }

    /// <summary>A free TCP port on loopback.</summary>
    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>A temporary directory removed on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir(string prefix = "kiln-test")
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Runs an external program (python3, node, the kiln binary) and captures its output.</summary>
public static class Proc
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{StdOut}\nstderr:\n{StdErr}";
    }

    public static async Task<Result> RunAsync(string file, IEnumerable<string> args, string? workingDirectory = null,
        string? stdin = null, IDictionary<string, string>? env = null, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            WorkingDirectory = workingDirectory ?? TestEnvironment.RepoRoot,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var outTask = p.StandardOutput.ReadToEndAsync();
        var errTask = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
            p.StandardInput.Close();
        }
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(5));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in time");
        }
        return new Result(p.ExitCode, await outTask, await errTask);
    }

    /// <summary>Runs a Python script (the numeric oracles: scipy, scikit-learn, pandas).</summary>
    public static Task<Result> PythonAsync(string script, string? workingDirectory = null) =>
        RunAsync(Python, ["-c", script], workingDirectory);

    /// <summary>
    /// Debian's python3, which has the scipy/sklearn/pandas/onnx packages test.sh installs; a
    /// python3 earlier on PATH (pyenv, say) may not have them.
    /// </summary>
    public static string Python { get; } = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

/// <summary>The real kiln CLI binary, as built by the solution build (tests run it as a user would).</summary>
public static class KilnCli
{
    /// <summary>Path to kiln.dll of the same configuration as the running tests.</summary>
    public static string Dll { get; } = Find();

    private static string Find()
    {
        var config = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        var path = Path.Combine(TestEnvironment.RepoRoot, "src", "Kiln.Cli", "bin", config, "net10.0", "kiln.dll");
        return File.Exists(path) ? path : throw new FileNotFoundException($"build the CLI first: {path} is missing");
    }

    /// <summary>Runs `kiln ARGS` and waits for it.</summary>
    public static Task<Proc.Result> RunAsync(IEnumerable<string> args, string? workingDirectory = null,
        IDictionary<string, string>? env = null, TimeSpan? timeout = null) =>
        Proc.RunAsync("dotnet", new[] { Dll }.Concat(args), workingDirectory, env: env, timeout: timeout);

    /// <summary>Starts `kiln ARGS` in the background (servers); the caller kills it.</summary>
    public static Process Start(IEnumerable<string> args, string? workingDirectory = null, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? TestEnvironment.RepoRoot,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start kiln");
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }
}
