using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Testing;

namespace Kiln.Core.Tests;

public class PackageTests
{
    private static string WritePackage(string target)
    {
        using var w = new PackageWriter(target);
        File.WriteAllText(w.PathOf("model.bin"), "weights");
        w.WriteJson(ModelPackage.SignatureFile, new ModelSignature
        {
            Task = ModelTask.Regression,
            Inputs = [new InputField { Name = "x", Type = ColumnKind.Numeric, Min = 0, Max = 1 }],
            Outputs = [new OutputField { Name = "prediction", Type = "numeric" }],
        });
        w.WriteJson(ModelPackage.MetadataFile, new PackageMetadata
        {
            Name = "m", Task = ModelTask.Regression, CreatedAt = DateTimeOffset.UnixEpoch,
            Runtime = new RuntimeInfo { Kiln = "1", Dotnet = "10", Os = "linux" },
        });
        return w.Commit("m", ModelTask.Regression, ModelRuntime.Onnx, "model.bin", DateTimeOffset.UnixEpoch);
    }

    [Fact]
    public void A_written_package_verifies_and_loads()
    {
        using var dir = new TempDir();
        var path = WritePackage(dir.File("m"));
        Assert.Empty(ModelPackage.Verify(path));
        var p = ModelPackage.Load(path);
        Assert.Equal("m", p.Name);
        Assert.Equal(PackageManifest.CurrentFormatVersion, p.Manifest.FormatVersion);
        Assert.Equal(["metadata.json", "model.bin", "signature.json"], p.Manifest.Files.Keys);
        Assert.Equal("x", p.Signature.Inputs[0].Name);
        Assert.Single(Directory.GetDirectories(dir.Path)); // no staging directory left behind
    }

    [Fact]
    public void Tampering_is_detected_and_loading_refuses()
    {
        using var dir = new TempDir();
        var path = WritePackage(dir.File("m"));
        File.WriteAllText(Path.Combine(path, "model.bin"), "weightz"); // same size, other bytes
        var problems = ModelPackage.Verify(path);
        Assert.Contains(problems, p => p.StartsWith("model.bin: SHA-256 mismatch", StringComparison.Ordinal));
        var e = Assert.Throws<KilnException>(() => ModelPackage.Load(path));
        Assert.Contains("package verification failed: model.bin: SHA-256 mismatch", e.Message, StringComparison.Ordinal);

        File.WriteAllText(Path.Combine(path, "extra.txt"), "x");
        Assert.Contains(ModelPackage.Verify(path), p => p == "extra.txt: file is not in the manifest");
        File.Delete(Path.Combine(path, "signature.json"));
        Assert.Contains(ModelPackage.Verify(path), p => p == "signature.json: file is missing");
    }

    [Fact]
    public void A_failed_write_leaves_no_package_and_an_old_package_survives()
    {
        using var dir = new TempDir();
        var target = dir.File("m");
        using (var w = new PackageWriter(target))
        {
            File.WriteAllText(w.PathOf("model.bin"), "half");
            // no Commit: as if training failed here
        }
        Assert.False(Directory.Exists(target));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));

        WritePackage(target);
        using (var w = new PackageWriter(target))
        {
            File.WriteAllText(w.PathOf("model.bin"), "new but unfinished");
        }
        Assert.Empty(ModelPackage.Verify(target));
        Assert.Equal("weights", File.ReadAllText(Path.Combine(target, "model.bin")));
    }

    [Fact]
    public void A_directory_that_is_not_a_package_is_never_replaced()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("precious"));
        File.WriteAllText(dir.File("precious/data.csv"), "x");
        var e = Assert.Throws<KilnException>(() => new PackageWriter(dir.File("precious")));
        Assert.Contains("is not a Kiln package; refusing to replace it", e.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(dir.File("precious/data.csv")));
    }

    [Fact]
    public void A_newer_format_version_is_refused_with_a_clear_message()
    {
        using var dir = new TempDir();
        var path = WritePackage(dir.File("m"));
        var manifest = Path.Combine(path, PackageManifest.FileName);
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace("\"format_version\": 1", "\"format_version\": 99", StringComparison.Ordinal));
        var e = Assert.Throws<KilnException>(() => ModelPackage.Load(path));
        Assert.Contains("format_version 99 is newer than this Kiln reads (1)", e.Message, StringComparison.Ordinal);
    }
}
