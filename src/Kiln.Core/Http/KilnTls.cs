using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Kiln.Core.Http;

/// <summary>A server's TLS certificate with its private key, and the intermediate certificates sent with it.</summary>
public sealed class ServerTls(X509Certificate2 certificate, X509Certificate2Collection chain)
{
    public X509Certificate2 Certificate { get; } = certificate;

    /// <summary>The certificates after the first in the --tls-cert file (intermediates), sent to clients with it.</summary>
    public X509Certificate2Collection Chain { get; } = chain;

    /// <summary>The subject and expiry, for the start-up line.</summary>
    public string Describe() => $"{Certificate.Subject}, expires {Certificate.NotAfter.ToUniversalTime():yyyy-MM-dd} UTC";
}

/// <summary>
/// TLS for Kiln's servers and clients: loading a PEM certificate and key pair for <c>kiln server</c> and <c>kiln serve</c>
/// (--tls-cert, --tls-key), and the HTTP handler every Kiln client uses, which also trusts the CA bundle named by
/// <see cref="CaVariable"/> (MLflow's own variable for a tracking server's certificate).
/// </summary>
public static class KilnTls
{
    /// <summary>A PEM file of CA certificates that Kiln's clients trust besides the system's roots (as MLflow's clients read it).</summary>
    public const string CaVariable = "MLFLOW_TRACKING_SERVER_CERT_PATH";

    /// <summary>Loads a PEM certificate (optionally followed by intermediates) and its unencrypted PEM private key; a mistake is one line naming the file.</summary>
    public static ServerTls LoadServerCertificate(string? certFile, string? keyFile, string certOption = "--tls-cert", string keyOption = "--tls-key")
    {
        if (certFile is null || keyFile is null)
            throw new KilnException($"{certOption} and {keyOption} go together: give both (a PEM certificate and its private key)");
        var certText = ReadPem(certFile, $"{certOption} {certFile}");
        var keyText = ReadPem(keyFile, $"{keyOption} {keyFile}");

        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPem(certText);
        }
        catch (CryptographicException e)
        {
            throw new KilnException($"{certOption} {certFile}: not a readable PEM certificate ({e.Message})", e);
        }
        if (certificates.Count == 0)
            throw new KilnException($"{certOption} {certFile}: no certificate in it (a PEM file with -----BEGIN CERTIFICATE-----)");
        var leaf = certificates[0];
        if (leaf.NotAfter.ToUniversalTime() < DateTime.UtcNow)
            throw new KilnException($"{certOption} {certFile}: the certificate ({leaf.Subject}) expired on {leaf.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm} UTC");

        var label = KeyLabel(keyText);
        if (label is null)
            throw new KilnException($"{keyOption} {keyFile}: no private key in it (a PEM file with -----BEGIN PRIVATE KEY----- or -----BEGIN RSA/EC PRIVATE KEY-----)");
        if (label == "ENCRYPTED PRIVATE KEY")
            throw new KilnException($"{keyOption} {keyFile}: the key is encrypted; give it unencrypted (openssl pkey -in {keyFile} -out key.pem) and keep the file readable by the server only");

        X509Certificate2 withKey;
        using (var key = ImportKey(keyText, keyOption, keyFile))
        {
            try
            {
                withKey = key switch
                {
                    RSA rsa => leaf.CopyWithPrivateKey(rsa),
                    ECDsa ec => leaf.CopyWithPrivateKey(ec),
                    _ => throw new ArgumentException("unsupported key type"),
                };
            }
            catch (Exception e) when (e is ArgumentException or CryptographicException or InvalidOperationException)
            {
                throw new KilnException($"{keyOption} {keyFile}: this key does not match the certificate in {certOption} {certFile} ({leaf.Subject})", e);
            }
        }
        // Windows' TLS stack cannot use a key that lives only in memory; a PKCS#12 round trip puts it in a key container.
        if (OperatingSystem.IsWindows())
        {
            using var ephemeral = withKey;
            withKey = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
        }
        var chain = new X509Certificate2Collection();
        for (var i = 1; i < certificates.Count; i++) chain.Add(certificates[i]);
        return new ServerTls(withKey, chain);
    }

    // named: how the file is named in messages ("--tls-cert FILE").
    private static string ReadPem(string file, string named)
    {
        if (!File.Exists(file)) throw new KilnException($"{named}: no such file");
        try
        {
            return File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KilnException($"{named}: cannot be read ({e.Message})", e);
        }
    }

    // The label of the first PEM block that holds a private key, or null.
    private static string? KeyLabel(string text)
    {
        var rest = text.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            var label = rest[fields.Label].ToString();
            if (label.EndsWith("PRIVATE KEY", StringComparison.Ordinal)) return label;
            rest = rest[fields.Location.End..];
        }
        return null;
    }

    private static AsymmetricAlgorithm ImportKey(string text, string option, string file)
    {
        var rsa = RSA.Create();
        try
        {
            rsa.ImportFromPem(text);
            return rsa;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            rsa.Dispose();
        }
        var ec = ECDsa.Create();
        try
        {
            ec.ImportFromPem(text);
            return ec;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            ec.Dispose();
            throw new KilnException($"{option} {file}: not a readable RSA or EC private key ({e.Message})", e);
        }
    }

    /// <summary>An HttpClient for a kiln server: https:// URLs are checked against the system's roots and the CA bundle of <see cref="CaVariable"/>.</summary>
    public static HttpClient CreateHttpClient(TimeSpan timeout) => new(CreateHandler()) { Timeout = timeout };

    /// <summary>The handler behind <see cref="CreateHttpClient"/> (for gRPC channels and other clients that take a handler).</summary>
    public static SocketsHttpHandler CreateHandler()
    {
        var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        if (ExtraRoots() is { } roots) handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, chain, errors) => Trusted(roots, certificate, chain, errors);
        return handler;
    }

    /// <summary>
    /// True when a server certificate is trusted by the system or chains to one of <paramref name="roots"/>; a certificate
    /// issued for another name is refused either way.
    /// </summary>
    public static bool Trusted(X509Certificate2Collection roots, X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors)
    {
        ArgumentNullException.ThrowIfNull(roots);
        if (errors == SslPolicyErrors.None) return true;
        if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is not X509Certificate2 leaf) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements) chain.ChainPolicy.ExtraStore.Add(element.Certificate);
        }
        return chain.Build(leaf);
    }

    /// <summary>
    /// Why a request to a server failed, in words for the user: an untrusted or misnamed certificate says so and names
    /// <see cref="CaVariable"/>, rather than .NET's "see inner exception".
    /// </summary>
    public static string Explain(HttpRequestException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.InnerException is System.Security.Authentication.AuthenticationException tls)
        {
            var why = tls.Message.Contains("RemoteCertificateNameMismatch", StringComparison.Ordinal)
                ? "the server's TLS certificate is issued for another name"
                : $"the server's TLS certificate is not trusted; if a private CA issued it, set {CaVariable} to that CA's PEM file";
            return $"{why} ({tls.Message})";
        }
        return e.Message;
    }

    private static readonly Lazy<X509Certificate2Collection?> Roots = new(LoadRoots);

    private static X509Certificate2Collection? ExtraRoots() => Roots.Value;

    private static X509Certificate2Collection? LoadRoots()
    {
        var file = Environment.GetEnvironmentVariable(CaVariable);
        if (string.IsNullOrEmpty(file)) return null;
        var text = ReadPem(file, $"{CaVariable}={file}");
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPem(text);
        }
        catch (CryptographicException e)
        {
            throw new KilnException($"{CaVariable}={file}: not a readable PEM certificate ({e.Message})", e);
        }
        return roots.Count > 0 ? roots : throw new KilnException($"{CaVariable}={file}: no certificate in it (a PEM file with -----BEGIN CERTIFICATE-----)");
    }
}
