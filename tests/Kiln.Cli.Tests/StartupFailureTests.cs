using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>A server that cannot start says why in one line, not with a stack trace.</summary>
public sealed class StartupFailureTests
{
    [Theory]
    [InlineData("server")]
    [InlineData("serve")]
    public async Task A_busy_port_is_one_line_and_exit_code_1(string command)
    {
        using var dir = new TempDir("kiln-busy");
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var port = ((IPEndPoint)holder.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);
        string[] args = command == "server"
            ? ["server", "--port", port, "--db", dir.Path]
            : ["serve", "--model", dir.Path, "--port", port, "--grpc-port", "-1"];

        var result = await KilnCli.RunAsync(args, timeout: TimeSpan.FromSeconds(60));

        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"error: --port {port}: 127.0.0.1:{port} is already in use (another kiln or program listens there; pick another port)",
            result.StdErr.Trim());
        Assert.DoesNotContain("   at ", result.StdOut + result.StdErr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("serve", "--register", "ftp://kiln:5000", "error: --register: 'ftp://kiln:5000' is not an http:// or https:// URL of a kiln server")]
    [InlineData("serve", "--register-interval", "0s", "error: --register-interval 0s: must be between 1s and 1h")]
    [InlineData("serve", "--advertise-url", "http://10.0.0.5:8080", "error: --advertise-url goes with --register")]
    [InlineData("server", "--replica", "replica-1:8080", "error: --replica: 'replica-1:8080' is not an http:// or https:// URL")]
    [InlineData("server", "--replicas-file", "no-such-replicas.txt", "error: --replicas-file no-such-replicas.txt: no such file")]
    public async Task A_bad_replica_option_is_one_line_and_nothing_listens(string command, string option, string value, string message)
    {
        using var dir = new TempDir("kiln-replica");
        var port = TestEnvironment.FreePort().ToString(CultureInfo.InvariantCulture);
        string[] args = command == "server"
            ? ["server", "--port", port, "--db", dir.Path, option, value]
            : ["serve", "--model", dir.Path, "--port", port, "--grpc-port", "-1", option, value, .. option == "--register-interval" ? (string[])["--register", "http://127.0.0.1:5000"] : []];

        var result = await KilnCli.RunAsync(args, dir.Path, timeout: TimeSpan.FromSeconds(60));

        Assert.Equal(1, result.ExitCode);
        Assert.Equal(message, result.StdErr.Trim());
    }
}
