using Kiln.Core;

namespace Kiln.Pipelines.Definition;

/// <summary>A pipeline was refused when loaded; each error names the file, line and task at fault.</summary>
public sealed class PipelineValidationException : KilnException
{
    public PipelineValidationException(IReadOnlyList<string> errors)
        : base(errors.Count == 1 ? errors[0] : $"{errors[0]} (and {errors.Count - 1} more: {string.Join("; ", errors.Skip(1))})")
    {
        Errors = errors;
    }

    public PipelineValidationException(string error) : this([error]) { }

    public PipelineValidationException() : this("invalid pipeline") { }

    public PipelineValidationException(string message, Exception inner) : base(message, inner) => Errors = [message];

    /// <summary>Every problem found, one line each.</summary>
    public IReadOnlyList<string> Errors { get; } = [];
}
