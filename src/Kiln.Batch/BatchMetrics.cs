using System.Diagnostics.Metrics;

namespace Kiln.Batch;

/// <summary>
/// Batch scoring's instruments on a host's meter (kiln server's /metrics, for batch_score tasks run by its pipelines):
/// rows by outcome (scored, rejected), parts by outcome (written, resumed) and jobs by outcome (succeeded, failed).
/// Counted while a job runs, so a dashboard's rows per second follows a long job rather than jumping at its end.
/// Labels are closed sets: never a model, file or run name.
/// </summary>
public sealed class BatchMetrics
{
    public BatchMetrics(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        Rows = meter.CreateCounter<long>("kiln.batch.rows", null, "Input rows of batch scoring jobs, by outcome (scored, rejected).");
        Parts = meter.CreateCounter<long>("kiln.batch.parts", null, "Output parts of batch scoring jobs, by outcome (written, or resumed: found finished by an earlier attempt).");
        Jobs = meter.CreateCounter<long>("kiln.batch.jobs", null, "Batch scoring jobs ended, by outcome (succeeded, failed).");
    }

    public Counter<long> Rows { get; }

    public Counter<long> Parts { get; }

    public Counter<long> Jobs { get; }

    /// <summary>Follows one job's <see cref="BatchStatus"/>: each <see cref="Follower.Record"/> adds what changed since the last.</summary>
    public Follower Follow(BatchStatus status) => new(this, status);

    /// <summary>The counts of one job already added to the counters.</summary>
    public sealed class Follower(BatchMetrics metrics, BatchStatus status)
    {
        private long _rows;
        private long _rejected;
        private long _parts;
        private long _resumed;

        /// <summary>Adds the rows and parts counted since the last call.</summary>
        public void Record()
        {
            // Rows done include the rejected ones; scored = done - rejected.
            var rejected = status.Rejected;
            var scored = status.RowsDone - rejected;
            Add(metrics.Rows, ref _rows, scored, "scored");
            Add(metrics.Rows, ref _rejected, rejected, "rejected");
            Add(metrics.Parts, ref _parts, status.PartsDone, "written");
            Add(metrics.Parts, ref _resumed, status.PartsResumed, "resumed");
        }

        /// <summary>Adds the last counts and the job's outcome.</summary>
        public void Finish(bool succeeded)
        {
            Record();
            metrics.Jobs.Add(1, new KeyValuePair<string, object?>("outcome", succeeded ? "succeeded" : "failed"));
        }

        private static void Add(Counter<long> counter, ref long seen, long now, string outcome)
        {
            if (now <= seen) return;
            counter.Add(now - seen, new KeyValuePair<string, object?>("outcome", outcome));
            seen = now;
        }
    }
}
