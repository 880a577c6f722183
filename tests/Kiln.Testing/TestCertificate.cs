using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Kiln.Testing;

/// <summary>
/// A self-signed server certificate made by the test (for 127.0.0.1 and localhost), written as a PEM certificate and a
/// PEM private key as openssl would write them, and a client handler that trusts exactly this certificate.
/// </summary>
public sealed class TestCertificate
{
    private TestCertificate(X509Certificate2 certificate, string certFile, string keyFile)
    {
        Certificate = certificate;
        CertFile = certFile;
        KeyFile = keyFile;
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>The PEM certificate (for --tls-cert, MLFLOW_TRACKING_SERVER_CERT_PATH, NODE_EXTRA_CA_CERTS).</summary>
    public string CertFile { get; }

    /// <summary>The PEM private key (PKCS#8, for --tls-key).</summary>
    public string KeyFile { get; }

    /// <summary>Makes a certificate (RSA 2048 or EC P-256) valid from an hour ago for <paramref name="days"/> days, and writes it to <paramref name="directory"/>.</summary>
    public static TestCertificate Create(string directory, string name = "server", bool ec = false, int days = 30)
    {
        using AsymmetricAlgorithm key = ec ? ECDsa.Create(ECCurve.NamedCurves.nistP256) : RSA.Create(2048);
        var request = key is RSA rsa
            ? new CertificateRequest($"CN={name}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            : new CertificateRequest($"CN={name}", (ECDsa)key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var now = DateTimeOffset.UtcNow;
        var certificate = request.CreateSelfSigned(now.AddHours(-1), now.AddDays(days));
        var certFile = Path.Combine(directory, name + ".crt");
        var keyFile = Path.Combine(directory, name + ".key");
        File.WriteAllText(certFile, certificate.ExportCertificatePem() + "\n");
        File.WriteAllText(keyFile, (key is RSA r ? r.ExportPkcs8PrivateKeyPem() : ((ECDsa)key).ExportPkcs8PrivateKeyPem()) + "\n");
        return new TestCertificate(X509CertificateLoader.LoadCertificate(certificate.RawData), certFile, keyFile);
    }

    /// <summary>A handler that accepts this certificate only (pinned by its thumbprint), with HTTP/2 allowed.</summary>
    public SocketsHttpHandler Handler()
    {
        var thumbprint = Certificate.GetCertHashString(HashAlgorithmName.SHA256);
        return new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, presented, _, _) =>
                    presented is not null && presented.GetCertHashString(HashAlgorithmName.SHA256) == thumbprint,
            },
        };
    }

    /// <summary>An HttpClient that trusts this certificate only.</summary>
    public HttpClient Client(Uri? baseAddress = null) => new(Handler()) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
}
