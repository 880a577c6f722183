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
}
