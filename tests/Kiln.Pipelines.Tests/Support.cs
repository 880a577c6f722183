using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Execution;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;
using Kiln.Testing;

namespace Kiln.Pipelines.Tests;

/// <summary>An engine over a fresh SQLite store in a temporary directory.</summary>
internal sealed class EngineFixture : IAsyncDisposable
{
    private readonly TempDir _dir;

    private EngineFixture(TempDir dir, SqlPipelineStore store, PipelineEngine engine)
    {
        _dir = dir;
        Store = store;
        Engine = engine;
    }

    public SqlPipelineStore Store { get; }
    public PipelineEngine Engine { get; }
    public TaskKindRegistry Kinds => Engine.Kinds;
    public string Dir => _dir.Path;

    public static async Task<EngineFixture> CreateAsync(PipelineEngineOptions? options = null, TimeProvider? time = null)
    {
        var dir = new TempDir("kiln-pipelines");
        var store = PipelineStores.Create(Path.Combine(dir.Path, "kiln.db"));
        await store.InitializeAsync();
        options ??= new PipelineEngineOptions();
        options.WorkingDirectory = dir.Path;
        var engine = new PipelineEngine(store, TaskKindRegistry.CreateDefault(), options, time: time);
        return new EngineFixture(dir, store, engine);
    }

    public string File(string name) => _dir.File(name);

    public PipelineDefinition Load(string yaml) => PipelineLoader.Load(yaml, Kinds, "test.yaml");

    public async ValueTask DisposeAsync()
    {
        await Engine.DisposeAsync();
        await Store.DisposeAsync();
        _dir.Dispose();
    }
}

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;

    public override DateTimeOffset GetUtcNow() => Now;
}

internal static class Outputs
{
    public static Task<IReadOnlyDictionary<string, string>> Of(params (string Key, string Value)[] items) =>
        Task.FromResult<IReadOnlyDictionary<string, string>>(items.ToDictionary(i => i.Key, i => i.Value));

    public static readonly Task<IReadOnlyDictionary<string, string>> None = Of();
}
