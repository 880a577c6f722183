using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Testing;

namespace Kiln.Tracking.Tests;

/// <summary>
/// The one model locator every area uses (serving, batch, monitoring, drift, pipelines, the CLI), against a real
/// SQLite tracking store: what each kind of URI resolves to, and the version serving polls.
/// </summary>
public sealed class RegistryModelLocatorTests : IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-locator");
    private TrackingStores _stores = null!;
    private RegistryModelLocator _locator = null!;
    private string _model = "";
    private string _run1 = "";

    public async Task InitializeAsync()
    {
        _stores = TrackingStores.Open(_dir.File(".kiln"));
        _locator = new RegistryModelLocator(_stores, _dir.File("cache"), new DirectoryModelLocator(_dir.Path));
        var client = new TrackingClient(_stores);
        _model = "fraud";
        var run1 = await client.StartRunAsync("locator");
        _run1 = run1.RunId;
        await client.RegisterModelAsync(_model, await run1.LogArtifactsAsync(Package("v1"), "model"));
        var run2 = await client.StartRunAsync("locator");
        await client.RegisterModelAsync(_model, await run2.LogArtifactsAsync(Package("v2"), "model"));
        await _stores.Registry.SetAliasAsync(_model, "production", 1, "ada");
    }

    public async Task DisposeAsync()
    {
        await _stores.DisposeAsync();
        _dir.Dispose();
    }

    private string Package(string marker)
    {
        var pkg = _dir.File("package-" + marker);
        Directory.CreateDirectory(pkg);
        File.WriteAllText(Path.Combine(pkg, PackageManifest.FileName), $"{{\"format_version\":1,\"marker\":\"{marker}\"}}");
        return pkg;
    }

    private static string Marker(ResolvedModel m) =>
        System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(m.PackageDirectory, PackageManifest.FileName))).RootElement.GetProperty("marker").GetString()!;

    [Fact]
    public async Task A_directory_is_itself_pinned_by_the_hash_of_its_manifest()
    {
        var dir = Package("local");
        var byPath = await _locator.ResolveAsync("package-local");
        Assert.Equal(dir, byPath.PackageDirectory);
        Assert.Equal(DirectoryModelLocator.ContentVersion(dir), byPath.Version);
        Assert.Equal(12, byPath.Version.Length);
        Assert.Null(byPath.Name);
        Assert.Null(byPath.RegistryVersion);
        Assert.Equal(byPath.Version, await _locator.CurrentVersionAsync("file://" + dir));

        // A package rewritten in place is a new version at the next poll.
        File.WriteAllText(Path.Combine(dir, PackageManifest.FileName), "{\"format_version\":1,\"marker\":\"local-2\"}");
        Assert.NotEqual(byPath.Version, await _locator.CurrentVersionAsync(dir));
    }

    [Fact]
    public async Task A_models_uri_with_a_version_pins_that_version_and_its_run()
    {
        var v2 = await _locator.ResolveAsync($"models:/{_model}/2");
        Assert.Equal(("v2", "2", _model, 2), (Marker(v2), v2.Version, v2.Name, v2.RegistryVersion));
        Assert.NotNull(v2.RunId);
        Assert.NotEqual(_run1, v2.RunId);
        Assert.Equal("2", await _locator.CurrentVersionAsync($"models:/{_model}/2"));
    }

    [Fact]
    public async Task An_alias_resolves_to_the_version_it_points_at_and_polling_sees_it_move()
    {
        var prod = await _locator.ResolveAsync($"models:/{_model}@production");
        Assert.Equal(("v1", "1", 1, _run1), (Marker(prod), prod.Version, prod.RegistryVersion, prod.RunId));
        Assert.Equal("1", await _locator.CurrentVersionAsync($"models:/{_model}@production"));

        await _stores.Registry.SetAliasAsync(_model, "production", 2, "ada");
        Assert.Equal("2", await _locator.CurrentVersionAsync($"models:/{_model}@production"));
        Assert.Equal("v2", Marker(await _locator.ResolveAsync($"models:/{_model}@production")));

        await _stores.Registry.RollbackAliasAsync(_model, "production", "ops");
        Assert.Equal("1", await _locator.CurrentVersionAsync($"models:/{_model}@production"));
    }

    [Fact]
    public async Task A_runs_uri_resolves_to_the_runs_artifact_with_its_content_version()
    {
        var r = await _locator.ResolveAsync($"runs:/{_run1}/model");
        Assert.Equal("v1", Marker(r));
        Assert.Equal(_run1, r.RunId);
        Assert.Null(r.RegistryVersion);
        Assert.Equal(DirectoryModelLocator.ContentVersion(r.PackageDirectory), r.Version);
        Assert.Equal(r.Version, await _locator.CurrentVersionAsync($"runs:/{_run1}/model"));
    }

    [Theory]
    [InlineData("models:/nope/1")]
    [InlineData("models:/nope@production")]
    [InlineData("models:/fraud/9")]
    [InlineData("models:/fraud@staging")]
    [InlineData("runs:/0123456789abcdef/model")]
    [InlineData("models:/fraud")]
    [InlineData("no-such-package")]
    public async Task An_unknown_model_is_one_line_naming_the_uri(string uri)
    {
        var e = await Assert.ThrowsAnyAsync<KilnException>(() => _locator.ResolveAsync(uri));
        Assert.Contains(uri, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        if (uri.Contains('@', StringComparison.Ordinal))
        {
            var polled = await Assert.ThrowsAnyAsync<KilnException>(() => _locator.CurrentVersionAsync(uri));
            Assert.Contains(uri, polled.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_registered_source_that_is_not_a_package_is_named_by_the_uri()
    {
        var client = new TrackingClient(_stores);
        var run = await client.StartRunAsync("locator");
        var notPackage = _dir.File("not-a-package");
        Directory.CreateDirectory(notPackage);
        File.WriteAllText(Path.Combine(notPackage, "readme.txt"), "hello");
        await client.RegisterModelAsync("plain", await run.LogArtifactsAsync(notPackage, "model"));
        var e = await Assert.ThrowsAnyAsync<KilnException>(() => _locator.ResolveAsync("models:/plain/1"));
        Assert.StartsWith("models:/plain/1: not a Kiln model package", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_registry_registry_uris_are_a_one_line_error()
    {
        var e = await Assert.ThrowsAsync<KilnException>(() => new DirectoryModelLocator().ResolveAsync($"models:/{_model}@production"));
        Assert.StartsWith($"models:/{_model}@production:", e.Message, StringComparison.Ordinal);
        Assert.Contains("registry", e.Message, StringComparison.Ordinal);
    }
}
