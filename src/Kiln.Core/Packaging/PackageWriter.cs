namespace Kiln.Core.Packaging;

/// <summary>
/// Writes a package atomically: files go to a hidden staging directory beside the target, the
/// manifest is written last, and one rename publishes it. A failed or interrupted write leaves
/// at most a staging directory (removed on dispose), never a half-written package.
/// </summary>
public sealed class PackageWriter : IDisposable
{
    private readonly string _target;
    private bool _committed;

    public PackageWriter(string targetDirectory)
    {
        _target = Path.GetFullPath(targetDirectory);
        if (Directory.Exists(_target) && !ModelPackage.IsPackage(_target) && Directory.EnumerateFileSystemEntries(_target).Any())
            throw new KilnException($"{targetDirectory}: exists and is not a Kiln package; refusing to replace it");
        var parent = Path.GetDirectoryName(_target) ?? throw new KilnException($"{targetDirectory}: has no parent directory");
        Directory.CreateDirectory(parent);
        StagingDirectory = Path.Combine(parent, $".{Path.GetFileName(_target)}.staging-{Guid.NewGuid():N}");
        Directory.CreateDirectory(StagingDirectory);
    }

    /// <summary>Where files are written until <see cref="Commit"/>.</summary>
    public string StagingDirectory { get; }

    /// <summary>The full path of a file inside the staging directory.</summary>
    public string PathOf(string relative) => Path.Combine(StagingDirectory, relative);

    public void WriteJson<T>(string relative, T value, bool indented = true) => ModelPackage.WriteJson(PathOf(relative), value, indented);

    /// <summary>Checksums every staged file, writes kiln.json and moves the package into place.</summary>
    public string Commit(string name, ModelTask task, ModelRuntime runtime, string modelFile, DateTimeOffset createdAt)
    {
        var files = new SortedDictionary<string, PackageFile>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFiles(StagingDirectory, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(StagingDirectory, path).Replace('\\', '/');
            files[relative] = new PackageFile { Sha256 = ModelPackage.Sha256OfFile(path), Size = new FileInfo(path).Length };
        }
        if (!files.ContainsKey(modelFile)) throw new InvalidOperationException($"the model file {modelFile} was not written");
        WriteJson(PackageManifest.FileName, new PackageManifest
        {
            FormatVersion = PackageManifest.CurrentFormatVersion,
            Name = name,
            Task = task,
            Runtime = runtime,
            ModelFile = modelFile,
            CreatedAt = createdAt,
            Files = files,
        });

        // Replace an older package in two renames: the old one is set aside first, so the target
        // path always holds either the whole old package or the whole new one.
        string? aside = null;
        if (Directory.Exists(_target))
        {
            aside = Path.Combine(Path.GetDirectoryName(_target)!, $".{Path.GetFileName(_target)}.old-{Guid.NewGuid():N}");
            Directory.Move(_target, aside);
        }
        Directory.Move(StagingDirectory, _target);
        _committed = true;
        if (aside is not null) TryDelete(aside);
        return _target;
    }

    public void Dispose()
    {
        if (!_committed) TryDelete(StagingDirectory);
    }

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
