using Kiln.Core;

namespace Kiln.Auth;

/// <summary>What a user may do with an experiment or a registered model, with MLflow's permission names; each level includes the ones below.</summary>
public enum Permission
{
    /// <summary>NO_PERMISSIONS: nothing, not even read.</summary>
    NoPermissions = 0,

    /// <summary>READ: see it, its runs, versions and artifacts.</summary>
    Read = 1,

    /// <summary>EDIT: change it (log to runs, set tags, register versions, move aliases).</summary>
    Edit = 2,

    /// <summary>MANAGE: delete and rename it, and everything EDIT allows.</summary>
    Manage = 3,
}

/// <summary>The kinds of resource a permission is granted on.</summary>
public enum ResourceKind
{
    /// <summary>An MLflow experiment, by id (its runs and their artifacts belong to it).</summary>
    Experiment,

    /// <summary>A registered model, by name (its versions and aliases belong to it).</summary>
    RegisteredModel,
}

/// <summary>Names of permissions and resource kinds as users write them.</summary>
public static class Permissions
{
    /// <summary>MLflow's spelling: NO_PERMISSIONS, READ, EDIT, MANAGE.</summary>
    public static string Name(Permission p) => p switch
    {
        Permission.Read => "READ",
        Permission.Edit => "EDIT",
        Permission.Manage => "MANAGE",
        _ => "NO_PERMISSIONS",
    };

    /// <summary>Parses READ, EDIT, MANAGE or NO_PERMISSIONS (any case); <paramref name="what"/> names the option in the error.</summary>
    public static Permission Parse(string? text, string what) => text?.Trim().ToUpperInvariant() switch
    {
        "READ" => Permission.Read,
        "EDIT" => Permission.Edit,
        "MANAGE" => Permission.Manage,
        "NO_PERMISSIONS" or "NONE" => Permission.NoPermissions,
        _ => throw new KilnException($"{what}: '{text}' is not a permission; use READ, EDIT, MANAGE or NO_PERMISSIONS"),
    };

    public static string Name(ResourceKind kind) => kind == ResourceKind.Experiment ? "experiment" : "registered_model";

    public static ResourceKind ParseKind(string text) => text switch
    {
        "experiment" => ResourceKind.Experiment,
        "registered_model" => ResourceKind.RegisteredModel,
        _ => throw new KilnException($"unknown resource kind '{text}' in the auth tables"),
    };
}
