using Kiln.Core.Yaml;

namespace Kiln.Core.Tests.Yaml;

public sealed class YamlFilesTests
{
    [Fact]
    public void A_syntax_error_names_the_file_line_and_column()
    {
        var e = Assert.Throws<KilnException>(() => YamlFiles.ParseMapping("name: a\ntasks:\n  - [unclosed\n", "p.yaml"));
        Assert.Matches(@"^p\.yaml:\d+:\d+: invalid YAML: ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_mapping_root_is_returned_and_anything_else_is_null()
    {
        Assert.NotNull(YamlFiles.ParseMapping("a: 1\n", "f.yaml"));
        Assert.Null(YamlFiles.ParseMapping("- 1\n- 2\n", "f.yaml"));
        Assert.Null(YamlFiles.ParseMapping("", "f.yaml"));
    }

    [Fact]
    public void Where_is_line_and_column_of_the_node()
    {
        var root = YamlFiles.ParseMapping("a: 1\nrules:\n  threshold: 2\n", "m.yaml")!;
        var rules = (YamlDotNet.RepresentationModel.YamlMappingNode)root.Children[new YamlDotNet.RepresentationModel.YamlScalarNode("rules")];
        Assert.Equal("m.yaml:3:3", YamlFiles.Where("m.yaml", rules.Children.Keys.Single()));
    }

    [Theory]
    [InlineData("holdot", "unknown key 'holdot' (did you mean 'holdout'?; expected one of: name, holdout, seed)")]
    [InlineData("Seed", "unknown key 'Seed' (did you mean 'seed'?; expected one of: name, holdout, seed)")]
    [InlineData("colour", "unknown key 'colour' (expected one of: name, holdout, seed)")]
    public void An_unknown_key_suggests_the_nearest_valid_one_when_it_looks_like_a_typo(string key, string message) =>
        Assert.Equal(message, YamlFiles.UnknownKey(key, ["name", "holdout", "seed"]));

    [Fact]
    public void The_nearest_name_is_the_closest_not_the_first_close_one()
    {
        Assert.Equal("interval", YamlFiles.Nearest("intervall", ["internal", "interval"]));
        Assert.Equal("feature_views", YamlFiles.Nearest("feature_veiws", ["feature_views", "feature_services"]));
        Assert.Null(YamlFiles.Nearest("x", ["name", "task"]));
    }
}
