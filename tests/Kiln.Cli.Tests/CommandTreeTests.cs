using System.CommandLine;
using Kiln.Cli.Commands;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>
/// `kiln AREA ...` builds only AREA's subtree (a fresh process then spends less time building options it never
/// parses); the subtree must be the same one the whole tree holds, and a command line outside the table still
/// gets the whole tree (help, suggestions for a typo).
/// </summary>
public class CommandTreeTests
{
    [Fact]
    public void Each_named_area_builds_the_same_subtree_as_the_whole_tree()
    {
        var whole = KilnCommand.Create();
        Assert.Equal(KilnCommand.Areas.Select(a => a.Name), whole.Subcommands.Select(c => c.Name));
        foreach (var (name, _) in KilnCommand.Areas)
        {
            var only = KilnCommand.Create(name);
            var command = Assert.Single(only.Subcommands);
            Assert.Equal(Describe(whole.Subcommands.Single(c => c.Name == name)), Describe(command));
            Assert.Equal(whole.Options.Select(o => o.Name), only.Options.Select(o => o.Name));
        }
    }

    [Theory]
    [InlineData("drift --model m --current x.parquet --fail-on-drift false")]
    [InlineData("drift --model m --no-such-flag")]
    [InlineData("models list --json")]
    [InlineData("package verify")]
    public void A_command_line_parses_the_same_in_its_subtree_as_in_the_whole_tree(string line)
    {
        var args = line.Split(' ');
        var whole = KilnCommand.Create().Parse(args);
        var only = KilnCommand.Create(args[0]).Parse(args);
        Assert.Equal(whole.Errors.Select(e => e.Message), only.Errors.Select(e => e.Message));
        Assert.Equal(whole.CommandResult.Command.Name, only.CommandResult.Command.Name);
    }

    [Fact]
    public async Task The_root_help_and_an_unknown_command_still_see_every_command()
    {
        var help = await KilnCli.RunAsync(["--help"]);
        Assert.True(help.ExitCode == 0, help.ToString());
        foreach (var (name, _) in KilnCommand.Areas) Assert.Contains($"  {name}", help.StdOut, StringComparison.Ordinal);

        var typo = await KilnCli.RunAsync(["drfit", "--model", "m"]);
        Assert.NotEqual(0, typo.ExitCode);
        Assert.Contains("drfit", typo.StdErr, StringComparison.Ordinal);
    }

    private static string Describe(Command c) =>
        $"{c.Name}({string.Join(",", c.Options.Select(o => o.Name + (o.Required ? "!" : "")))};" +
        $"{string.Join(",", c.Arguments.Select(a => a.Name))})[{string.Join(" ", c.Subcommands.Select(Describe))}]";
}
