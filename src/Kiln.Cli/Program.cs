using Kiln.Cli.Commands;

return await KilnCommand.Create().Parse(args).InvokeAsync();
