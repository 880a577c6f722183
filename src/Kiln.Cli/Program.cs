using Kiln.Cli.Commands;
using Kiln.Core;

StepTimings.Mark("main entered");
var parse = KilnCommand.Create(args.Length > 0 ? args[0] : null).Parse(args);
StepTimings.Mark("arguments parsed");
if (Cli.OldJsonPath(parse) is { } oldJson)
{
    Console.Error.WriteLine($"error: {oldJson}");
    return 1;
}
return await parse.InvokeAsync();
