using Kiln.Cli.Commands;
using Kiln.Core;

StepTimings.Mark("main entered");
var parse = KilnCommand.Create().Parse(args);
StepTimings.Mark("arguments parsed");
if (Cli.OldJsonPath(parse) is { } oldJson)
{
    Console.Error.WriteLine($"error: {oldJson}");
    return 1;
}
return await parse.InvokeAsync();
