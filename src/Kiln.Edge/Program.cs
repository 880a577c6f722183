using Kiln.Core;
using Kiln.Edge;

try
{
    StartUp.Prepare();
    var options = EdgeOptions.Parse(args);
    if (options is null)
    {
        Console.Out.Write(EdgeOptions.Usage);
        return 0;
    }
    return EdgeScorer.Run(options);
}
catch (KilnException e)
{
    Console.Error.WriteLine($"kiln-score: {e.Message}");
    return 1;
}
catch (IOException e)
{
    Console.Error.WriteLine($"kiln-score: {e.Message}");
    return 1;
}
