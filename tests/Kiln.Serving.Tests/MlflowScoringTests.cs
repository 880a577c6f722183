namespace Kiln.Serving.Tests;

public sealed class MlflowScoringTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    public static TheoryData<string, string> Bodies => new()
    {
        { """{"dataframe_split": {"columns": ["amount", "hour", "merchant"], "data": [[12, 14, "grocery"], [420.5, 3, "online"]]}}""", "application/json" },
        { """{"dataframe_split": {"index": [0, 1], "columns": ["merchant", "amount", "hour"], "data": [["grocery", 12, 14], ["online", 420.5, 3]]}}""", "application/json" },
        { """{"dataframe_records": [{"amount": 12, "hour": 14, "merchant": "grocery"}, {"amount": 420.5, "hour": 3, "merchant": "online"}]}""", "application/json" },
        { """{"instances": [{"amount": 12, "hour": 14, "merchant": "grocery"}, {"amount": 420.5, "hour": 3, "merchant": "online"}]}""", "application/json" },
        { """{"instances": [[12, 14, "grocery"], [420.5, 3, "online"]]}""", "application/json" },
        { """{"inputs": {"amount": [12, 420.5], "hour": [14, 3], "merchant": ["grocery", "online"]}}""", "application/json" },
        { """{"inputs": [{"amount": 12, "hour": 14, "merchant": "grocery"}, {"amount": 420.5, "hour": 3, "merchant": "online"}], "params": {}}""", "application/json" },
        { "amount,hour,merchant\n12,14,grocery\r\n420.5,3,\"online\"\n", "text/csv" },
        { "amount,hour,merchant\n12,14,grocery\n420.5,3,online", "text/csv; charset=utf-8" },
    };

    [Theory]
    [MemberData(nameof(Bodies))]
    public async Task Every_mlflow_input_format_scores_the_same_rows(string body, string contentType)
    {
        var (status, json, response) = await server.PostAsync("/invocations", body, contentType);
        Assert.True(status == 200, json.ToString());
        var predictions = json.GetProperty("predictions").EnumerateArray().ToList();
        Assert.Equal(2, predictions.Count);
        var first = TestPackages.PredictWithMlnet(server.FraudPackage, 12, 14, "grocery");
        var second = TestPackages.PredictWithMlnet(server.FraudPackage, 420.5f, 3, "online");
        Assert.Equal(first.Probability, predictions[0].GetProperty("probability").GetDouble(), 5);
        Assert.Equal(second.Probability, predictions[1].GetProperty("probability").GetDouble(), 5);
        Assert.Equal(second.PredictedLabel ? "fraud" : "legit", predictions[1].GetProperty("prediction").GetString());
        Assert.Equal(Kiln.Core.Packaging.DirectoryModelLocator.ContentVersion(server.FraudPackage), response.Headers.GetValues("X-Kiln-Model-Version").Single());
    }

    [Fact]
    public async Task A_regression_model_answers_a_list_of_numbers()
    {
        var (status, json, _) = await server.PostAsync("/invocations/spend", """{"dataframe_records": [{"amount": 100, "hour": 10, "merchant": "travel"}]}""");
        Assert.Equal(200, status);
        Assert.Equal(System.Text.Json.JsonValueKind.Number, json.GetProperty("predictions")[0].ValueKind);
    }

    public static TheoryData<string, string, int, string, string> Errors => new()
    {
        { """{"dataframe_split": {"columns": ["amount", "hour"], "data": [[1, 2]]}}""", "application/json", 400, "BAD_REQUEST", "merchant" },
        { """{"dataframe_split": {"columns": ["amount", "hour", "merchant", "x"], "data": [[1, 2, "online", 3]]}}""", "application/json", 400, "BAD_REQUEST", "x" },
        { """{"dataframe_records": [{"amount": "Infinity", "hour": 2, "merchant": "online"}]}""", "application/json", 400, "BAD_REQUEST", "amount" },
        { """{"instances": [{"amount": 1, "hour": 2, "merchant": "casino"}]}""", "application/json", 400, "BAD_REQUEST", "merchant" },
        { """{"inputs": {"amount": [1, 2], "hour": [1], "merchant": ["online", "fuel"]}}""", "application/json", 400, "BAD_REQUEST", "hour" },
        { """{"dataframe_split": {"columns": ["amount"], "data": [[1]]}, "instances": []}""", "application/json", 400, "BAD_REQUEST", "instances" },
        { """{"rows": []}""", "application/json", 400, "BAD_REQUEST", "rows" },
        { """{"dataframe_records": [""", "application/json", 400, "MALFORMED_REQUEST", "" },
        { "amount,hour,merchant\nabc,2,online\n", "text/csv", 400, "BAD_REQUEST", "amount" },
        { "amount,hour\n1,2\n", "text/csv", 400, "BAD_REQUEST", "merchant" },
        { "amount=1", "application/x-www-form-urlencoded", 415, "BAD_REQUEST", "content type" },
    };

    [Theory]
    [MemberData(nameof(Errors))]
    public async Task Mistakes_answer_mlflows_error_shape_naming_the_field(string body, string contentType, int expectedStatus, string code, string mention)
    {
        var (status, json, _) = await server.PostAsync("/invocations", body, contentType);
        Assert.Equal(expectedStatus, status);
        Assert.Equal(code, json.GetProperty("error_code").GetString());
        Assert.Contains(mention, json.GetProperty("message").GetString());
        var (next, _, _) = await server.PostAsync("/invocations", """{"instances": [{"amount": 1, "hour": 2, "merchant": "online"}]}""");
        Assert.Equal(200, next);
    }

    [Fact]
    public async Task Ping_answers_when_ready()
    {
        var response = await server.Http.GetAsync("/ping");
        Assert.Equal(200, (int)response.StatusCode);
    }
}
