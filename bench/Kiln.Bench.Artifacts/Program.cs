// S3 client libraries for Kiln's artifacts: AWSSDK.S3 (through Kiln's S3Storage) against the Minio client, in
// alternating rounds against the same s3rver: upload and download of a 100 MB object, and a listing of 10,000 keys.
// Usage: dotnet run -c Release --project bench/Kiln.Bench.Artifacts -- [--rounds 3] [--mb 100] [--keys 10000]
// Needs node and tests/js/node_modules (npm install in tests/js).
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Kiln.Storage.Objects;
using Minio;
using Minio.DataModel.Args;

var rounds = Arg("--rounds", 3);
var megabytes = Arg("--mb", 100);
var keyCount = Arg("--keys", 10_000);

var repo = FindRepo();
var data = Directory.CreateTempSubdirectory("kiln-bench-s3");
var port = FreePort();
using var s3rver = Process.Start(new ProcessStartInfo("node",
    ["--openssl-legacy-provider", Path.Combine(repo, "tests/js/node_modules/s3rver/bin/s3rver.js"), "-d", data.FullName, "-a", "127.0.0.1",
     "-p", port.ToString(CultureInfo.InvariantCulture), "--no-vhost-buckets", "--silent", "--configure-bucket", "bench"])
{
    RedirectStandardOutput = true,
    RedirectStandardError = true,
})!;
try
{
    await WaitForPort(port);
    var endpoint = $"http://127.0.0.1:{port}";
    var settings = new S3Settings { Endpoint = endpoint, AccessKey = "S3RVER", SecretKey = "S3RVER", PathStyle = true };
    using var aws = new S3Storage(new S3Location("bench", ""), settings);
    using var minio = (MinioClient)new MinioClient().WithEndpoint("127.0.0.1", port).WithCredentials("S3RVER", "S3RVER").WithRegion("us-east-1")
        .WithSSL(false).Build();

    var payload = new byte[megabytes * 1024L * 1024];
    new Random(42).NextBytes(payload);
    Console.WriteLine($"s3rver at {endpoint}; object {megabytes} MB; {keyCount} keys; {rounds} rounds, AWSSDK.S3 and Minio alternating");

    // 10,000 small keys under one prefix, written once (16 at a time) and listed by both.
    var sw = Stopwatch.StartNew();
    await Parallel.ForEachAsync(Enumerable.Range(0, keyCount), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
        await aws.PutAsync($"many/k{i:D6}", new MemoryStream([1]), long.MaxValue, () => new InvalidOperationException(), ct));
    Console.WriteLine($"wrote {keyCount} keys in {sw.Elapsed.TotalSeconds:F1} s");

    var results = new Dictionary<string, List<(double Aws, double Minio)>> { ["upload"] = [], ["download"] = [], ["list"] = [] };
    for (var round = 0; round < rounds; round++)
    {
        // Alternate which library goes first, so neither always meets a warm (or cold) server.
        var awsFirst = round % 2 == 0;
        foreach (var (op, awsRun, minioRun) in new (string, Func<Task>, Func<Task>)[]
        {
            ("upload", () => aws.PutAsync("big/aws.bin", new MemoryStream(payload), long.MaxValue, () => new InvalidOperationException()),
                () => minio.PutObjectAsync(new PutObjectArgs().WithBucket("bench").WithObject("big/minio.bin")
                    .WithStreamData(new MemoryStream(payload)).WithObjectSize(payload.Length).WithContentType("application/octet-stream"))),
            ("download", async () =>
            {
                await using var s = (await aws.OpenReadAsync("big/aws.bin"))!;
                await Drain(s, payload.Length);
            }, async () =>
            {
                await minio.GetObjectAsync(new GetObjectArgs().WithBucket("bench").WithObject("big/minio.bin")
                    .WithCallbackStream(async (s, ct) => await Drain(s, payload.Length)));
            }),
            ("list", async () =>
            {
                var all = await aws.ListAllAsync("many");
                if (all.Count != keyCount) throw new InvalidOperationException($"AWSSDK listed {all.Count}");
            }, async () =>
            {
                var n = 0;
                await foreach (var _ in minio.ListObjectsEnumAsync(new ListObjectsArgs().WithBucket("bench").WithPrefix("many/").WithRecursive(true))) n++;
                // Kept as a finding rather than a crash: a client that lists less than is there fails the comparison.
                if (n != keyCount) Console.WriteLine($"  Minio listed {n} of {keyCount} keys");
            }),
        })
        {
            double a, m;
            if (awsFirst)
            {
                a = await Time(awsRun);
                m = await Time(minioRun);
            }
            else
            {
                m = await Time(minioRun);
                a = await Time(awsRun);
            }
            results[op].Add((a, m));
            Console.WriteLine($"round {round + 1} {op,-8}: AWSSDK.S3 {a,8:F0} ms   Minio {m,8:F0} ms   Minio/AWSSDK {m / a:F2}");
        }
    }
    Console.WriteLine();
    Console.WriteLine("| operation | AWSSDK.S3 median | Minio median | median ratio Minio/AWSSDK |");
    Console.WriteLine("| --- | --- | --- | --- |");
    foreach (var (op, r) in results)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {op} | {Median(r.Select(x => x.Aws)):F0} ms | {Median(r.Select(x => x.Minio)):F0} ms | {Median(r.Select(x => x.Minio / x.Aws)):F2} |"));
    }
}
finally
{
    s3rver.Kill(entireProcessTree: true);
    await s3rver.WaitForExitAsync();
    data.Delete(recursive: true);
}

static async Task<long> Drain(Stream s, long expected)
{
    var buffer = new byte[1 << 16];
    long total = 0;
    int n;
    while ((n = await s.ReadAsync(buffer)) > 0) total += n;
    return total == expected ? total : throw new InvalidOperationException($"read {total} bytes, expected {expected}");
}

static async Task<double> Time(Func<Task> run)
{
    var sw = Stopwatch.StartNew();
    await run();
    return sw.Elapsed.TotalMilliseconds;
}

static double Median(IEnumerable<double> xs)
{
    var a = xs.Order().ToArray();
    return a.Length % 2 == 1 ? a[a.Length / 2] : (a[(a.Length / 2) - 1] + a[a.Length / 2]) / 2;
}

int Arg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

static int FreePort()
{
    using var l = new TcpListener(System.Net.IPAddress.Loopback, 0);
    l.Start();
    return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
}

static async Task WaitForPort(int port)
{
    for (var i = 0; i < 300; i++)
    {
        try
        {
            using var c = new TcpClient();
            await c.ConnectAsync(System.Net.IPAddress.Loopback, port);
            await Task.Delay(300);
            return;
        }
        catch (SocketException)
        {
            await Task.Delay(100);
        }
    }
    throw new TimeoutException("s3rver did not start");
}

static string FindRepo()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Kiln.slnx"))) dir = dir.Parent;
    return dir?.FullName ?? throw new InvalidOperationException("run from inside the repository");
}
