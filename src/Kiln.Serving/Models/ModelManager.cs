using System.Diagnostics;
using System.Diagnostics.Metrics;
using Kiln.Core;
using Kiln.Serving.Logging;
using Kiln.Serving.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kiln.Serving.Models;

/// <summary>
/// Loads every configured model in the background at start, then polls each model's source
/// and hot-swaps new versions: load, verify and warm off the request path, then one atomic swap.
/// A version that fails leaves the old one serving and is recorded for /ready, the log and metrics.
/// </summary>
public sealed class ModelManager : BackgroundService
{
    private readonly ServeOptions _options;
    private readonly ServingMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Features.OnlineFeatures? _features;
    private readonly Dictionary<string, ModelSlot> _byName = new(StringComparer.Ordinal);
    private readonly Lock _namesLock = new();
    private readonly TaskCompletionSource _initialLoad = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ModelManager(ServeOptions options, ServingMetrics metrics, ILogger<ModelManager> logger, Features.OnlineFeatures? features = null)
    {
        _features = features;
        _options = options;
        _metrics = metrics;
        _logger = logger;
        Slots = [.. options.Models.Select(spec => new ModelSlot(spec, spec.UnseenCategories ?? options.UnseenCategories))];
        foreach (var s in Slots) _byName[s.Name] = s;
        metrics.Meter.CreateObservableGauge("kiln.serve.model.ready", ObserveReady, null, "1 for the version each model serves now.");
    }

    public IReadOnlyList<ModelSlot> Slots { get; }

    /// <summary>The model requests go to when they name none: the first --model.</summary>
    public ModelSlot Default => Slots[0];

    /// <summary>True once every model serves a loaded and warmed version.</summary>
    public bool AllReady
    {
        get
        {
            foreach (var s in Slots) if (s.Current is null) return false;
            return true;
        }
    }

    /// <summary>Completes when every model has had its first load attempt (success or not).</summary>
    public Task InitialLoad => _initialLoad.Task;

    public ModelSlot? Find(string? name)
    {
        if (string.IsNullOrEmpty(name)) return Default;
        lock (_namesLock) return _byName.GetValueOrDefault(name);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await Task.WhenAll(Slots.Select(s => Task.Run(() => RefreshAsync(s, force: true, stoppingToken), stoppingToken))).ConfigureAwait(false);
        }
        finally
        {
            _initialLoad.TrySetResult();
        }
        if (_options.PollInterval <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(_options.PollInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                foreach (var slot in Slots) await RefreshAsync(slot, force: false, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Checks one model's source and loads its current version when it differs from the one served.</summary>
    public async Task RefreshAsync(ModelSlot slot, bool force, CancellationToken ct)
    {
        string version;
        try
        {
            version = await _options.Locator.CurrentVersionAsync(slot.Spec.Uri, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is KilnException or IOException or UnauthorizedAccessException or HttpRequestException)
        {
            ServingLog.PollFailed(_logger, slot.Spec.Uri, e.Message);
            if (slot.Current is null) RecordFailure(slot, "?", e.Message);
            return;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return;
        }
        if (slot.Current?.Version == version) return;
        if (!force && slot.FailedVersion == version) return; // already failed: wait for a newer one
        await LoadAsync(slot, ct).ConfigureAwait(false);
    }

    private async Task LoadAsync(ModelSlot slot, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        string version = "?";
        try
        {
            var resolved = await _options.Locator.ResolveAsync(slot.Spec.Uri, ct).ConfigureAwait(false);
            version = resolved.Version;
            var name = slot.Spec.Name ?? slot.Current?.Name;
            var model = await Task.Run(() => ServedModel.Load(resolved.PackageDirectory, name, resolved.Version, slot.Policy, _options.MaxRowsPerRequest), ct).ConfigureAwait(false);
            if (slot.Spec.Name is null && slot.Current is null) Rename(slot, model.Name);
            await BindFeaturesAsync(model, ct).ConfigureAwait(false);
            var old = slot.Swap(model);
            slot.FailedVersion = null;
            slot.LastError = null;
            slot.LastErrorAt = null;
            _metrics.ModelLoads.Add(1, new("model", slot.Name), new("version", version), new("outcome", "success"));
            ServingLog.ModelLoaded(_logger, slot.Name, version, resolved.PackageDirectory, watch.ElapsedMilliseconds);
            if (old is not null) ServingLog.ModelSwapped(_logger, slot.Name, version, old.Version);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            RecordFailure(slot, version, e.Message);
        }
    }

    /// <summary>
    /// Binds a model that reads the feature store to it before the version serves, so no request pays for it. A store
    /// that cannot be used yet does not stop the load: requests answer 503 and bind again until it can.
    /// </summary>
    private async Task BindFeaturesAsync(ServedModel model, CancellationToken ct)
    {
        if (_features is null || !Features.OnlineFeatures.Applies(model, _options)) return;
        try
        {
            await _features.BindAsync(model, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            ServingLog.FeatureBindingFailed(_logger, model.Name, model.Version, e.Message.ReplaceLineEndings(" "));
        }
    }

    private void RecordFailure(ModelSlot slot, string version, string reason)
    {
        slot.FailedVersion = version;
        slot.LastError = reason.ReplaceLineEndings(" ");
        slot.LastErrorAt = DateTimeOffset.UtcNow;
        _metrics.ModelLoads.Add(1, new("model", slot.Name), new("version", version), new("outcome", "failure"));
        ServingLog.ModelLoadFailed(_logger, slot.Name, version, slot.Spec.Uri, slot.LastError);
    }

    private void Rename(ModelSlot slot, string name)
    {
        lock (_namesLock)
        {
            if (slot.Name == name) return;
            if (_byName.TryGetValue(name, out var other) && other != slot)
                throw new KilnException($"--model {slot.Spec.Uri}: another model is already served as '{name}'; give one a name with NAME=URI");
            _byName.Remove(slot.Name);
            slot.Name = name;
            _byName[name] = slot;
        }
    }

    private IEnumerable<Measurement<int>> ObserveReady()
    {
        foreach (var s in Slots)
        {
            if (s.Current is { } m) yield return new Measurement<int>(1, new("model", s.Name), new("version", m.Version));
        }
    }

    public override void Dispose()
    {
        foreach (var s in Slots) s.Current?.Retire();
        base.Dispose();
    }
}
