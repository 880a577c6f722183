using System.Globalization;

namespace Kiln.Testing;

/// <summary>The quickstart's fraud model (examples/quickstart/spec.yaml) made small enough for a test to train in seconds.</summary>
public static class QuickstartSpec
{
    /// <summary>The quickstart rows (8,000 transactions).</summary>
    public static string Transactions => Path.Combine(TestEnvironment.RepoRoot, "examples", "quickstart", "transactions.csv");

    /// <summary>
    /// The spec's YAML: binary is_fraud on the quickstart's six inputs (numeric and categorical, one with missing
    /// values), a 0.2 holdout and seed 42, trained on <paramref name="data"/> (the quickstart rows when null).
    /// </summary>
    public static string Yaml(string? data = null, string trainer = "fast_forest", int trees = 10, int leaves = 16) => $"""
        name: fraud
        task: binary
        data: {data ?? Transactions}
        label: is_fraud
        features:
          amount: numeric
          hour: numeric
          merchant_category: categorical
          card_present: categorical
          distance_from_home_km: numeric
          customer_age: numeric
        trainer:
          kind: {trainer}
          trees: {trees.ToString(CultureInfo.InvariantCulture)}
          leaves: {leaves.ToString(CultureInfo.InvariantCulture)}
        holdout: 0.2
        seed: 42
        """;
}
