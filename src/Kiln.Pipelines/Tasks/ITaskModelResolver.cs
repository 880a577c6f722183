using Kiln.Core.Packaging;

namespace Kiln.Pipelines.Tasks;

/// <summary>
/// Turns a registry URI in a task's settings (models:/NAME/VERSION, models:/NAME@ALIAS, runs:/ID/PATH) into a
/// verified local package. The host registers one in <see cref="TaskContext.Services"/> (Kiln.Tracking's, which
/// opens the task's tracking store); kinds call it through <see cref="TaskSettings.ResolveModelAsync"/>.
/// </summary>
public interface ITaskModelResolver
{
    /// <summary>Resolves <paramref name="uri"/>, the value of setting <paramref name="key"/>; failures are <see cref="TaskFailedException"/>s naming the setting.</summary>
    Task<ResolvedModel> ResolveAsync(TaskContext context, string key, string uri);
}
