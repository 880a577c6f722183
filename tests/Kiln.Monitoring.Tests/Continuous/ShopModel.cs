using System.Globalization;
using System.Text;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Continuous;

/// <summary>The small real model the monitoring CLI tests serve: x ~ N(0, 1), three colors, trained by `kiln train`.</summary>
internal static class ShopModel
{
    /// <summary>Trains it under <paramref name="dir"/> and returns the package's path (DIR/pkg).</summary>
    public static async Task<string> TrainAsync(TempDir dir)
    {
        var rng = new Random(1);
        var csv = new StringBuilder("x,color,y\n");
        string[] colors = ["red", "green", "blue"];
        for (var i = 0; i < 400; i++)
        {
            var x = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            csv.Append(CultureInfo.InvariantCulture, $"{x:F4},{colors[rng.Next(3)]},{(x + rng.NextDouble() - 0.5 > 0 ? 1 : 0)}\n");
        }
        await File.WriteAllTextAsync(dir.File("train.csv"), csv.ToString());
        await File.WriteAllTextAsync(dir.File("spec.yaml"), """
            name: shop
            task: binary
            data: train.csv
            label: y
            features:
              x: numeric
              color: categorical
            trainer:
              kind: linear
              iterations: 10
            """);
        var train = await KilnCli.RunAsync(["train", dir.File("spec.yaml"), "--out", dir.File("pkg")], timeout: TimeSpan.FromMinutes(3));
        Assert.True(train.ExitCode == 0, train.ToString());
        return dir.File("pkg");
    }
}
