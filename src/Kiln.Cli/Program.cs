using Kiln.Cli.Commands;

var parse = KilnCommand.Create().Parse(args);
if (Cli.OldJsonPath(parse) is { } oldJson)
{
    Console.Error.WriteLine($"error: {oldJson}");
    return 1;
}
return await parse.InvokeAsync();
