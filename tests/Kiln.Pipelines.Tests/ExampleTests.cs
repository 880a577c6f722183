using Kiln.Pipelines.Definition;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;
using Kiln.Testing;

namespace Kiln.Pipelines.Tests;

public class ExampleTests
{
    private static string Example(string name) => Path.Combine(TestEnvironment.RepoRoot, "examples", "pipelines", name);

    [Fact]
    public async Task The_shell_example_runs_and_reports_its_counts()
    {
        await using var f = await EngineFixture.CreateAsync();
        var def = PipelineLoader.LoadFile(Example("hello.yaml"), f.Kinds);
        var (run, state) = await f.Engine.RunAsync(def, new Dictionary<string, string> { ["greeting"] = "hi", ["workdir"] = f.File("work") });
        Assert.Equal(RunState.Succeeded, state);
        var report = (await f.Store.GetTasksAsync(run.RunId)).Single(t => t.Task == "report");
        Assert.Equal("3 lines, 6 words", report.Outputs!["stdout"]);
    }

    /// <summary>Stands in for a kind another area provides, so the loop's structure can be checked now.</summary>
    private sealed class Placeholder(string name) : ITaskKind
    {
        public string Name => name;

        public IEnumerable<TaskConfigError> Validate(TaskDefinition task) => [];

        public Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext context) => throw new NotSupportedException();
    }

    [Fact]
    public void The_quickstart_loop_needs_the_training_and_registry_kinds_and_is_otherwise_valid()
    {
        var builtIn = TaskKindRegistry.CreateDefault();
        var refused = Assert.Throws<PipelineValidationException>(() => PipelineLoader.LoadFile(Example("quickstart-loop.yaml"), builtIn));
        Assert.Contains(refused.Errors, e => e.Contains("unknown kind 'train'", StringComparison.Ordinal));

        var kinds = TaskKindRegistry.CreateDefault();
        foreach (var k in new[] { "train", "evaluate", "gate", "register", "set_alias" }) kinds.Add(new Placeholder(k));
        var def = PipelineLoader.LoadFile(Example("quickstart-loop.yaml"), kinds);
        Assert.Equal(["ingest", "train", "evaluate", "gate", "register", "promote"], def.Tasks.Select(t => t.Name));
        Assert.Equal(["drift_alert"], def.Events);
        Assert.Equal("Europe/Paris", Assert.Single(def.Schedules).TimeZone.Id);
    }
}
