using System.CommandLine;
using Kiln.Core.Http;

namespace Kiln.Cli.Commands;

/// <summary>--tls-cert and --tls-key of kiln server and kiln serve (docs/security.md#tls).</summary>
internal static class TlsOptions
{
    public static (Option<string?> Cert, Option<string?> Key) Create() =>
    (
        new Option<string?>("--tls-cert") { Description = "Serve HTTPS with this PEM certificate (then any intermediates); needs --tls-key." },
        new Option<string?>("--tls-key") { Description = "The PEM private key of --tls-cert (unencrypted; keep it readable by the server only)." }
    );

    /// <summary>The certificate and key, checked; null when neither option is given.</summary>
    public static ServerTls? Load(ParseResult parse, Option<string?> cert, Option<string?> key)
    {
        var c = parse.GetValue(cert);
        var k = parse.GetValue(key);
        return c is null && k is null ? null : KilnTls.LoadServerCertificate(c, k);
    }
}
