using System.Net.Http.Json;
using Kiln.Core;
using Kiln.Core.Http;
using Kiln.Serving.Models;

namespace Kiln.Serving.Registration;

/// <summary>
/// kiln serve --register: tells a kiln server, every interval, the address this replica answers on and the model
/// versions it has loaded, so the server's serving page can list it and read its /metrics. Signs in as other Kiln
/// clients do (MLFLOW_TRACKING_TOKEN, a service token, when the server has access control on).
/// </summary>
public sealed class ReplicaRegistration : IDisposable
{
    private readonly HttpClient _http = KilnTls.CreateHttpClient(TimeSpan.FromSeconds(10));
    private readonly KilnApiConnection _server;
    private readonly Uri _self;
    private readonly ModelManager _models;
    private readonly TimeSpan _interval;

    public ReplicaRegistration(Uri server, Uri self, ModelManager models, TimeSpan interval)
    {
        ArgumentNullException.ThrowIfNull(server);
        _server = new KilnApiConnection(server, "api/v1/serving", "does not accept replica registrations (an older kiln server?)", _http);
        _self = self;
        _models = models;
        _interval = interval;
    }

    /// <summary>The server's address, for messages.</summary>
    public string Server => _server.Server;

    /// <summary>Sends one heartbeat.</summary>
    /// <exception cref="KilnException">the server cannot be reached (a <see cref="KilnApiException"/> when it refused).</exception>
    public async Task<ReplicaHeartbeatAccepted> BeatAsync(CancellationToken cancellationToken)
    {
        var models = _models.Slots.Select(s => new ReplicaHeartbeatModel(s.Current?.Name ?? s.Name, s.Current?.Version)).ToList();
        using var content = JsonContent.Create(new ReplicaHeartbeat(_self.AbsoluteUri, models, _interval.TotalSeconds), ReplicaJsonContext.Default.ReplicaHeartbeat);
        return await _server.SendAsync(HttpMethod.Post, "replicas", content, ReplicaJsonContext.Default.ReplicaHeartbeatAccepted, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Beats every interval until cancelled. A failure is reported once through <paramref name="report"/> (and again
    /// when it changes), and the next beat is tried at the next interval: a restarting server gets the replica back.
    /// </summary>
    public async Task RunAsync(Action<string> report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        using var timer = new PeriodicTimer(_interval);
        string? last = null;
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                string? problem = null;
                try
                {
                    await BeatAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (KilnException e)
                {
                    problem = e.Message;
                }
                if (problem != last) report(problem is null ? $"registered again with {Server}" : $"cannot register with {Server}: {problem}");
                last = problem;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    public void Dispose()
    {
        _server.Dispose();
        _http.Dispose();
    }
}
