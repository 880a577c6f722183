using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Kiln.Testing;

namespace Kiln.Server.Tests;

/// <summary>
/// kiln server --tls-cert/--tls-key with a self-signed certificate made by the test: the real server process, a client
/// that pins the certificate (HTTP/1.1 and HTTP/2 by ALPN), Kiln's own CLI trusting it through
/// MLFLOW_TRACKING_SERVER_CERT_PATH, the npm mlflow client through NODE_EXTRA_CA_CERTS, and the one-line refusals of a
/// bad certificate or key.
/// </summary>
public sealed class TlsTests
{
    private static Task<Proc.Result> Kiln(string[] args, string? stdin = null, IDictionary<string, string>? env = null) =>
        Proc.RunAsync("dotnet", [KilnCli.Dll, .. args], stdin: stdin, env: env, timeout: TimeSpan.FromMinutes(2));

    private static AuthenticationHeaderValue Basic(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password)));

    [Fact]
    public async Task Kiln_server_speaks_https_with_http2_to_pinned_kiln_and_npm_clients()
    {
        using var dir = new TempDir("kiln-tls-server");
        var cert = TestCertificate.Create(dir.Path);
        var db = dir.File("meta");
        var r = await Kiln(["auth", "user", "add", "root", "--admin", "--password-stdin", "--db", db], stdin: "root-password-1\n");
        Assert.True(r.ExitCode == 0, r.ToString());

        await using var server = await RealServer.StartAsync(db, tls: cert);
        Assert.Equal("https", server.Address.Scheme);
        for (var i = 0; i < 100 && !server.Log.Contains("TLS:", StringComparison.Ordinal); i++) await Task.Delay(100);
        Assert.Contains("TLS: CN=server", server.Log, StringComparison.Ordinal);

        // Both protocols on the one port, chosen by ALPN.
        using var http = cert.Client(server.Address);
        foreach (var version in new[] { HttpVersion.Version11, HttpVersion.Version20 })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/2.0/mlflow/experiments/search?max_results=10")
            {
                Version = version,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            request.Headers.Authorization = Basic("root", "root-password-1");
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(version, response.Version);
            Assert.Contains("\"experiments\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Clear-text HTTP to the TLS port gets no answer.
        using (var plain = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => plain.GetAsync(new UriBuilder(server.Address) { Scheme = "http" }.Uri + "health"));
        }

        // Kiln's CLI over https://: trusted through MLflow's variable, refused in one line without it.
        var url = server.Address.ToString().TrimEnd('/');
        var signIn = new Dictionary<string, string> { ["MLFLOW_TRACKING_USERNAME"] = "root", ["MLFLOW_TRACKING_PASSWORD"] = "root-password-1" };
        r = await Kiln(["runs", "list", "--tracking-uri", url], env: new Dictionary<string, string>(signIn) { ["MLFLOW_TRACKING_SERVER_CERT_PATH"] = cert.CertFile });
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln(["auth", "list", "--json", "--server", url], env: new Dictionary<string, string>(signIn) { ["MLFLOW_TRACKING_SERVER_CERT_PATH"] = cert.CertFile });
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("\"root\"", r.StdOut, StringComparison.Ordinal);
        r = await Kiln(["runs", "list", "--tracking-uri", url], env: signIn);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("TLS certificate is not trusted", r.StdErr, StringComparison.Ordinal);
        Assert.Contains("MLFLOW_TRACKING_SERVER_CERT_PATH", r.StdErr, StringComparison.Ordinal);
        r = await Kiln(["runs", "list", "--tracking-uri", url], env: new Dictionary<string, string>(signIn) { ["MLFLOW_TRACKING_SERVER_CERT_PATH"] = dir.File("nope.pem") });
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"MLFLOW_TRACKING_SERVER_CERT_PATH={dir.File("nope.pem")}: no such file", r.StdErr, StringComparison.Ordinal);

        // The npm mlflow client (written by others) over HTTPS, trusting the certificate the way Node does.
        var js = Path.Combine(TestEnvironment.RepoRoot, "tests", "js");
        Assert.True(Directory.Exists(Path.Combine(js, "node_modules", "mlflow")), "tests/js/node_modules/mlflow is missing: run `npm install` in tests/js (test.sh does)");
        var node = await Proc.RunAsync("node", ["mlflow-lifecycle.js"], js, env: new Dictionary<string, string>(signIn)
        {
            ["KILN_URL"] = url,
            ["NODE_EXTRA_CA_CERTS"] = cert.CertFile,
        }, timeout: TimeSpan.FromMinutes(2));
        Assert.True(node.ExitCode == 0, $"{node}\nserver log:\n{server.Log}");
        Assert.StartsWith("LIFECYCLE OK", node.StdOut, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> BadPairs => new()
    {
        { "missing-cert", "--tls-cert {dir}/absent.crt: no such file" },
        { "missing-key", "--tls-key {dir}/absent.key: no such file" },
        { "other-key", "--tls-key {dir}/other.key: this key does not match the certificate in --tls-cert {dir}/server.crt" },
        { "text-cert", "--tls-cert {dir}/notes.txt: no certificate in it" },
        { "cert-as-key", "--tls-key {dir}/server.crt: no private key in it" },
        { "broken-key", "--tls-key {dir}/broken.key: not a readable RSA or EC private key" },
        { "encrypted-key", "--tls-key {dir}/encrypted.key: the key is encrypted" },
        { "cert-only", "--tls-cert and --tls-key go together" },
    };

    [Theory]
    [MemberData(nameof(BadPairs))]
    public async Task A_bad_certificate_or_key_is_one_line_and_exit_1_before_listening(string mistake, string expected)
    {
        using var dir = new TempDir("kiln-tls-bad");
        var cert = TestCertificate.Create(dir.Path);
        var other = TestCertificate.Create(dir.Path, "other", ec: true);
        await File.WriteAllTextAsync(dir.File("notes.txt"), "not a certificate\n");
        await File.WriteAllTextAsync(dir.File("broken.key"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        using (var rsa = System.Security.Cryptography.RSA.Create(2048))
        {
            var pbe = new System.Security.Cryptography.PbeParameters(System.Security.Cryptography.PbeEncryptionAlgorithm.Aes256Cbc,
                System.Security.Cryptography.HashAlgorithmName.SHA256, 10_000);
            await File.WriteAllTextAsync(dir.File("encrypted.key"), rsa.ExportEncryptedPkcs8PrivateKeyPem("secret-pass", pbe));
        }
        string[] tls = mistake switch
        {
            "missing-cert" => ["--tls-cert", dir.File("absent.crt"), "--tls-key", cert.KeyFile],
            "missing-key" => ["--tls-cert", cert.CertFile, "--tls-key", dir.File("absent.key")],
            "other-key" => ["--tls-cert", cert.CertFile, "--tls-key", other.KeyFile],
            "text-cert" => ["--tls-cert", dir.File("notes.txt"), "--tls-key", cert.KeyFile],
            "cert-as-key" => ["--tls-cert", cert.CertFile, "--tls-key", cert.CertFile],
            "broken-key" => ["--tls-cert", cert.CertFile, "--tls-key", dir.File("broken.key")],
            "encrypted-key" => ["--tls-cert", cert.CertFile, "--tls-key", dir.File("encrypted.key")],
            _ => ["--tls-cert", cert.CertFile],
        };
        var port = TestEnvironment.FreePort();
        var r = await Kiln(["server", "--db", dir.File("meta"), "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), .. tls]);
        Assert.Equal(1, r.ExitCode);
        var lines = r.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var error = Assert.Single(lines, l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.Contains(expected.Replace("{dir}", dir.Path, StringComparison.Ordinal), error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("listening", r.StdErr + r.StdOut, StringComparison.Ordinal);
    }
}
