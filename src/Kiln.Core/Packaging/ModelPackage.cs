using System.Security.Cryptography;
using System.Text.Json;

namespace Kiln.Core.Packaging;

/// <summary>
/// A model package on disk: a directory with kiln.json (manifest and checksums), the model file,
/// signature.json, profile.json, metadata.json and input_example.json. See docs/model-package.md.
/// </summary>
public sealed class ModelPackage
{
    public const string SignatureFile = "signature.json";
    public const string ProfileFile = "profile.json";
    public const string MetadataFile = "metadata.json";
    public const string InputExampleFile = "input_example.json";

    private ModelPackage(string directory, PackageManifest manifest, ModelSignature signature, PackageMetadata metadata, PackageProfile? profile)
    {
        Directory = directory;
        Manifest = manifest;
        Signature = signature;
        Metadata = metadata;
        Profile = profile;
    }

    /// <summary>A package object from parts already in memory (used while a package is being built, before it is written).</summary>
    public static ModelPackage FromParts(string directory, PackageManifest manifest, ModelSignature signature, PackageMetadata metadata, PackageProfile? profile = null) =>
        new(directory, manifest, signature, metadata, profile);

    public string Directory { get; }

    public PackageManifest Manifest { get; }

    public ModelSignature Signature { get; }

    public PackageMetadata Metadata { get; }

    /// <summary>The reference profile; null only for an imported model given no reference data.</summary>
    public PackageProfile? Profile { get; }

    public string Name => Manifest.Name;

    public string ModelPath => Path.Combine(Directory, Manifest.ModelFile);

    /// <summary>The input example: a list of rows, each a map of input name to value.</summary>
    public List<Dictionary<string, JsonElement>> ReadInputExample()
    {
        var path = Path.Combine(Directory, InputExampleFile);
        if (!File.Exists(path)) return [];
        using var s = File.OpenRead(path);
        return JsonSerializer.Deserialize(s, CoreJsonContext.Default.ListDictionaryStringJsonElement) ?? [];
    }

    /// <summary>Loads a package, verifying every checksum first (unless told not to).</summary>
    public static ModelPackage Load(string directory, bool verify = true)
    {
        directory = Path.GetFullPath(directory);
        var manifest = ReadManifest(directory);
        if (verify)
        {
            var problems = Verify(directory);
            if (problems.Count > 0) throw new KilnException($"{directory}: package verification failed: {problems[0]}" + (problems.Count > 1 ? $" (and {problems.Count - 1} more)" : ""));
        }
        var signature = ReadJson<ModelSignature>(directory, SignatureFile);
        var metadata = ReadJson<PackageMetadata>(directory, MetadataFile);
        var profile = File.Exists(Path.Combine(directory, ProfileFile)) ? ReadJson<PackageProfile>(directory, ProfileFile) : null;
        return new ModelPackage(directory, manifest, signature, metadata, profile);
    }

    /// <summary>Checks the manifest and every file's SHA-256 and size; returns the problems found (empty when sound).</summary>
    public static IReadOnlyList<string> Verify(string directory)
    {
        var problems = new List<string>();
        PackageManifest manifest;
        try { manifest = ReadManifest(directory); }
        catch (KilnException e) { return [e.Message]; }
        foreach (var (relative, entry) in manifest.Files)
        {
            var path = Resolve(directory, relative);
            if (path is null) { problems.Add($"{relative}: path escapes the package"); continue; }
            if (!File.Exists(path)) { problems.Add($"{relative}: file is missing"); continue; }
            var size = new FileInfo(path).Length;
            if (size != entry.Size) { problems.Add($"{relative}: size {size} differs from the manifest's {entry.Size}"); continue; }
            var hash = Sha256OfFile(path);
            if (!string.Equals(hash, entry.Sha256, StringComparison.OrdinalIgnoreCase)) problems.Add($"{relative}: SHA-256 mismatch (file {hash[..12]}…, manifest {entry.Sha256[..Math.Min(12, entry.Sha256.Length)]}…)");
        }
        foreach (var file in System.IO.Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(directory, file).Replace('\\', '/');
            if (relative != PackageManifest.FileName && !manifest.Files.ContainsKey(relative)) problems.Add($"{relative}: file is not in the manifest");
        }
        if (!manifest.Files.ContainsKey(manifest.ModelFile)) problems.Add($"{manifest.ModelFile}: the model file is not in the manifest");
        foreach (var required in new[] { SignatureFile, MetadataFile })
            if (!manifest.Files.ContainsKey(required)) problems.Add($"{required}: required file is not in the manifest");
        return problems;
    }

    /// <summary>Is this directory a Kiln package (has a manifest)?</summary>
    public static bool IsPackage(string directory) => File.Exists(Path.Combine(directory, PackageManifest.FileName));

    private static PackageManifest ReadManifest(string directory)
    {
        if (!System.IO.Directory.Exists(directory)) throw new KilnException($"{directory}: no such package directory");
        var path = Path.Combine(directory, PackageManifest.FileName);
        if (!File.Exists(path)) throw new KilnException($"{directory}: not a Kiln package ({PackageManifest.FileName} is missing)");
        var manifest = ReadJson<PackageManifest>(directory, PackageManifest.FileName);
        if (manifest.FormatVersion > PackageManifest.CurrentFormatVersion)
            throw new KilnException($"{path}: format_version {manifest.FormatVersion} is newer than this Kiln reads ({PackageManifest.CurrentFormatVersion}); upgrade Kiln");
        return manifest;
    }

    private static T ReadJson<T>(string directory, string file)
    {
        var path = Path.Combine(directory, file);
        try
        {
            using var s = File.OpenRead(path);
            var info = (System.Text.Json.Serialization.Metadata.JsonTypeInfo<T>)KilnJson.Files.GetTypeInfo(typeof(T));
            return JsonSerializer.Deserialize(s, info) ?? throw new KilnException($"{path}: empty JSON document");
        }
        catch (FileNotFoundException) { throw new KilnException($"{path}: file is missing"); }
        catch (JsonException e) { throw new KilnException($"{path}: invalid JSON ({e.Message})", e); }
    }

    /// <summary>Writes a value as indented snake_case JSON.</summary>
    public static void WriteJson<T>(string path, T value, bool indented = true)
    {
        var info = (System.Text.Json.Serialization.Metadata.JsonTypeInfo<T>)(indented ? KilnJson.Files : KilnJson.Wire).GetTypeInfo(typeof(T));
        using var s = File.Create(path);
        JsonSerializer.Serialize(s, value, info);
    }

    internal static string? Resolve(string directory, string relative)
    {
        if (Path.IsPathRooted(relative) || relative.Split('/').Contains("..")) return null;
        return Path.Combine(directory, relative);
    }

    /// <summary>Lower-case hex SHA-256 of a file.</summary>
    public static string Sha256OfFile(string path)
    {
        using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }
}
