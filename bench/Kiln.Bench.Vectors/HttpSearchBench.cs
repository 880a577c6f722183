using System.Diagnostics;
using System.Globalization;
using System.Text;
using Kiln.Vectors;
using Kiln.Vectors.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>Qdrant's POST /collections/NAME/points/search (k=10, no filter) over Kestrel on loopback, loaded by wrk
/// (one thread, 32 connections; C, so the generator costs the shared cores little) cycling through the bench's queries.</summary>
internal static class HttpSearchBench
{
    public static async Task RunAsync(VectorStore store, string collection, float[][] queries, int seconds, string scratch)
    {
        if (!File.Exists("/usr/bin/wrk"))
        {
            Console.WriteLine("http: skipped, /usr/bin/wrk is missing (Debian's wrk)");
            return;
        }
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        // The endpoints kiln server maps, on the bench's own open store (no second open of its directory).
        builder.Services.AddSingleton(store);
        await using var app = builder.Build();
        app.MapKilnVectorEndpoints();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        var script = Path.Combine(scratch, "search.lua");
        var lua = new StringBuilder();
        lua.AppendLine("wrk.method = \"POST\"");
        lua.AppendLine("wrk.headers[\"Content-Type\"] = \"application/json\"");
        lua.AppendLine("bodies = {");
        foreach (var q in queries.Take(200))
        {
            lua.Append("  '{\"vector\": [").Append(string.Join(", ", q.Select(x => x.ToString("R", CultureInfo.InvariantCulture)))).AppendLine("], \"limit\": 10}',");
        }
        lua.AppendLine("}");
        lua.AppendLine("i = 0");
        lua.AppendLine("request = function()");
        lua.AppendLine("  i = i % #bodies + 1");
        lua.AppendLine($"  return wrk.format(nil, \"/collections/{collection}/points/search\", nil, bodies[i])");
        lua.AppendLine("end");
        File.WriteAllText(script, lua.ToString());

        await Wrk($"-t1 -c32 -d3s -s {script} {address}"); // warm-up
        var args = $"-t1 -c32 -d{seconds}s --latency -s {script} {address}";
        var output = await Wrk(args);
        string Line(string prefix) => output.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith(prefix, StringComparison.Ordinal))?.Trim() ?? "?";
        var non2xx = output.Split('\n').FirstOrDefault(l => l.Contains("Non-2xx", StringComparison.Ordinal))?.Trim() ?? "0 non-2xx";
        Console.WriteLine($"http search (k=10, no filter, ef=64, wrk {args.Split(" -s ")[0]}): {Line("Requests/sec:")}; latency {Line("50%")}, {Line("99%")}; {non2xx}; load average {File.ReadAllText("/proc/loadavg").Trim()}");
        await app.StopAsync();
    }

    private static async Task<string> Wrk(string arguments)
    {
        var psi = new ProcessStartInfo("/usr/bin/wrk", arguments) { RedirectStandardOutput = true, UseShellExecute = false };
        using var p = Process.Start(psi)!;
        var output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        return output;
    }
}
