using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Kiln.Testing;

/// <summary>
/// A real S3-protocol server for tests: s3rver (npm, tests/js/node_modules) on a free loopback port with its data in a
/// temporary directory, started with the buckets asked for. It fails when s3rver is not installed (test.sh installs it).
/// </summary>
public sealed class S3rver : IAsyncDisposable
{
    /// <summary>s3rver's fixed credentials (it checks signatures against them).</summary>
    public const string AccessKey = "S3RVER";

    public const string SecretKey = "S3RVER";

    private Process _process = null!;
    private readonly TempDir _data;
    private readonly StringBuilder _log = new();
    private readonly ProcessStartInfo _start;
    private readonly string[] _buckets;
    private readonly int _port;

    private S3rver(TempDir data, int port, ProcessStartInfo start, string[] buckets)
    {
        _data = data;
        _port = port;
        _start = start;
        _buckets = buckets;
        Endpoint = $"http://127.0.0.1:{port}";
    }

    /// <summary>The endpoint, http://127.0.0.1:PORT.</summary>
    public string Endpoint { get; }

    /// <summary>Where s3rver keeps the objects (BUCKET/KEY._S3rver_object and metadata beside).</summary>
    public string DataDirectory => _data.Path;

    public string Log
    {
        get
        {
            lock (_log) return _log.ToString();
        }
    }

    /// <summary>The standard AWS variables that point a process (or S3Settings.FromVariables) at this server.</summary>
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string>
    {
        ["AWS_ENDPOINT_URL_S3"] = Endpoint,
        ["AWS_ACCESS_KEY_ID"] = AccessKey,
        ["AWS_SECRET_ACCESS_KEY"] = SecretKey,
        ["AWS_REGION"] = "us-east-1",
    };

    public static async Task<S3rver> StartAsync(params string[] buckets)
    {
        var bin = Path.Combine(TestEnvironment.RepoRoot, "tests", "js", "node_modules", "s3rver", "bin", "s3rver.js");
        if (!File.Exists(bin))
            throw new InvalidOperationException($"{bin} is missing: run `npm install` in tests/js (test.sh does)");
        var data = new TempDir("kiln-s3rver");
        var port = TestEnvironment.FreePort();
        var psi = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = data.Path,
        };
        // s3rver signs continuation tokens with DES, which OpenSSL 3 keeps in its legacy provider.
        foreach (var a in (string[])["--openssl-legacy-provider", bin, "-d", data.Path, "-a", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--no-vhost-buckets"])
            psi.ArgumentList.Add(a);
        foreach (var b in buckets)
        {
            psi.ArgumentList.Add("--configure-bucket");
            psi.ArgumentList.Add(b);
        }
        var server = new S3rver(data, port, psi, buckets);
        try
        {
            server._process = server.Launch(psi);
            await server.WaitListeningAsync();
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    /// <summary>Stops the server (kill), keeping its objects: requests fail until <see cref="StartAgainAsync"/>.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited) return;
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    /// <summary>Starts the server again on the same port with the same objects.</summary>
    public async Task StartAgainAsync()
    {
        await StopAsync();
        _process.Dispose();
        _process = Launch(_start);
        await WaitListeningAsync();
    }

    private Process Launch(ProcessStartInfo psi)
    {
        var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start node");
        p.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private async Task WaitListeningAsync()
    {
        for (var i = 0; i < 300; i++)
        {
            if (_process.HasExited) throw new InvalidOperationException($"s3rver exited with {_process.ExitCode}:\n{Log}");
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync(System.Net.IPAddress.Loopback, _port);
                // Buckets are created as s3rver starts listening; give it the moment it needs to write them.
                if (_buckets.All(b => Directory.Exists(Path.Combine(_data.Path, b)))) return;
            }
            catch (SocketException)
            {
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"s3rver did not listen on port {_port} within 30 s:\n{Log}");
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        _data.Dispose();
    }
}
