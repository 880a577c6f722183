using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;

namespace Kiln.Pipelines.Execution;

/// <summary>Collects an attempt's log lines until the executor writes them to the store.</summary>
internal sealed class TaskLogBuffer(string runId, string task, int attempt, TimeProvider time) : ITaskLog
{
    private readonly Lock _lock = new();
    private List<LogLine> _lines = [];

    public void Info(string line) => Add("stdout", line);

    public void Error(string line) => Add("stderr", line);

    private void Add(string stream, string line)
    {
        var l = new LogLine(runId, task, attempt, time.GetUtcNow(), stream, line);
        lock (_lock) _lines.Add(l);
    }

    public List<LogLine> Drain()
    {
        lock (_lock)
        {
            if (_lines.Count == 0) return [];
            var result = _lines;
            _lines = [];
            return result;
        }
    }
}
