using Kiln.Tracking.Search;

namespace Kiln.Tracking.Tests;

public sealed class SearchFilterTests
{
    [Fact]
    public void Parses_every_entity_and_operator()
    {
        var clauses = SearchFilter.Parse("metrics.auc >= 0.8 and params.`learning rate` = \"0.1\" AND tags.\"mlflow.runName\" ILIKE '%fit%' AND attributes.run_id NOT IN ('a', 'b') AND status != 'FAILED'");
        Assert.Equal(
            [(EntityKind.Metric, "auc", ">="), (EntityKind.Param, "learning rate", "="), (EntityKind.Tag, "mlflow.runName", "ILIKE"),
             (EntityKind.Attribute, "run_id", "NOT IN"), (EntityKind.Attribute, "status", "!=")],
            clauses.Select(c => (c.Kind, c.Key, c.Op)));
        Assert.Equal(0.8, clauses[0].Value);
        Assert.Equal(["a", "b"], (List<string>)clauses[3].Value);
    }

    [Fact]
    public void Parses_order_by()
    {
        var order = SearchFilter.ParseOrderBy(["metrics.auc DESC", "params.lr", "attributes.start_time asc"]);
        Assert.Equal([(EntityKind.Metric, "auc", false), (EntityKind.Param, "lr", true), (EntityKind.Attribute, "start_time", true)],
            order.Select(o => (o.Kind, o.Key, o.Ascending)));
    }

    [Theory]
    [InlineData("metrics.auc > 0.5 OR metrics.auc < 0.1", "AND")]
    [InlineData("metrics.auc", "operator")]
    [InlineData("params.lr = 'unterminated", "unterminated")]
    [InlineData("foo.bar = 'x'", "foo")]
    public void Refuses_what_MLflow_refuses(string filter, string mention)
    {
        var e = Assert.Throws<TrackingException>(() => SearchFilter.Parse(filter));
        Assert.Equal(ErrorCode.InvalidParameterValue, e.Code);
        Assert.Contains(mention, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Page_tokens_round_trip_and_reject_garbage()
    {
        Assert.Equal(12345, PageToken.Decode(PageToken.Encode(12345)));
        Assert.Equal(0, PageToken.Decode(null));
        Assert.Throws<TrackingException>(() => PageToken.Decode("bm90IGpzb24="));
    }

    [Theory]
    [InlineData("models:/churn/3", "churn", 3, null, null)]
    [InlineData("models:/churn@production", "churn", null, "production", null)]
    [InlineData("models:/my model/Staging", "my model", null, null, "Staging")]
    public void Parses_model_uris(string uri, string name, int? version, string? alias, string? stage)
    {
        var r = ModelUris.ParseModelsUri(uri);
        Assert.Equal((name, version, alias, stage), (r.Name, r.Version, r.Alias, r.Stage));
    }

    [Fact]
    public void Parses_runs_uris()
    {
        Assert.Equal(("abc", "model/sub"), ModelUris.ParseRunsUri("runs:/abc/model/sub"));
        Assert.Equal("abc", ModelUris.RunIdOf("runs:/abc/model"));
        Assert.Null(ModelUris.RunIdOf("mlflow-artifacts:/0/abc/artifacts"));
        Assert.Equal("0/abc/artifacts", ArtifactUris.ToStorePath("mlflow-artifacts://host:5000/0/abc/artifacts"));
    }
}
