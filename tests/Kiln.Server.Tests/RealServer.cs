using System.Diagnostics;
using System.Text;
using Kiln.Testing;

namespace Kiln.Server.Tests;

/// <summary>The real `kiln server` process on a free loopback port, as a user starts it.</summary>
public sealed class RealServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private RealServer(Process process, Uri address)
    {
        _process = process;
        Address = address;
    }

    public Uri Address { get; }

    public string Log
    {
        get
        {
            lock (_log) return _log.ToString();
        }
    }

    /// <summary>Starts the server; with <paramref name="tls"/> it serves HTTPS with that certificate (and is waited for over HTTPS).</summary>
    public static async Task<RealServer> StartAsync(string db, string? workingDirectory = null, IEnumerable<string>? extraArgs = null, TestCertificate? tls = null,
        IReadOnlyDictionary<string, string>? env = null)
    {
        var port = TestEnvironment.FreePort();
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
            UseShellExecute = false,
        };
        foreach (var a in (string[])[KilnCli.Dll, "server", "--db", db, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)])
            psi.ArgumentList.Add(a);
        foreach (var a in extraArgs ?? []) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        if (tls is not null)
        {
            foreach (var a in (string[])["--tls-cert", tls.CertFile, "--tls-key", tls.KeyFile]) psi.ArgumentList.Add(a);
        }
        var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start kiln server");
        var server = new RealServer(p, new Uri($"{(tls is null ? "http" : "https")}://127.0.0.1:{port}"));
        p.OutputDataReceived += (_, e) => { lock (server._log) server._log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { lock (server._log) server._log.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        using var http = tls is null ? new HttpClient() : tls.Client();
        http.Timeout = TimeSpan.FromSeconds(2);
        for (var i = 0; i < 300; i++)
        {
            if (p.HasExited) throw new InvalidOperationException($"kiln server exited with {p.ExitCode}:\n{server.Log}");
            try
            {
                using var r = await http.GetAsync(new Uri(server.Address, "/health"));
                if (r.IsSuccessStatusCode) return server;
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            await Task.Delay(100);
        }
        p.Kill(entireProcessTree: true);
        throw new TimeoutException($"kiln server did not answer /health within 30 s:\n{server.Log}");
    }

    /// <summary>SIGKILL: no shutdown hooks, no flushing, as a crash or `kill -9` would.</summary>
    public async Task KillHardAsync()
    {
        if (_process.HasExited) return;
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await KillHardAsync();
        _process.Dispose();
    }
}
