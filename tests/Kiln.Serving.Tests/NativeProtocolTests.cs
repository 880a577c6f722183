namespace Kiln.Serving.Tests;

public sealed class NativeProtocolTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Valid = """{"amount": 420.5, "hour": 3, "merchant": "online"}""";

    [Fact]
    public async Task Predict_one_object_answers_label_probability_model_version_and_request_id_as_mlnet_does()
    {
        var (status, body, response) = await server.PostAsync("/predict", Valid);
        Assert.Equal(200, status);
        // Oracle: ML.NET's own typed PredictionEngine over the same model file.
        var expected = TestPackages.PredictWithMlnet(server.FraudPackage, 420.5f, 3, "online");
        Assert.Equal(expected.PredictedLabel ? "fraud" : "legit", body.GetProperty("prediction").GetString());
        Assert.Equal(expected.Probability, body.GetProperty("probability").GetDouble(), 5);
        Assert.Equal("fraud", body.GetProperty("model").GetString());
        var version = body.GetProperty("version").GetString();
        Assert.Equal(Kiln.Core.Packaging.DirectoryModelLocator.ContentVersion(server.FraudPackage), version);
        Assert.Equal(32, body.GetProperty("request_id").GetString()!.Length);
        Assert.Equal(version, response.Headers.GetValues("X-Kiln-Model-Version").Single());
    }

    [Fact]
    public async Task Predict_array_answers_one_prediction_per_row_in_order()
    {
        var (status, body, _) = await server.PostAsync("/predict",
            """[{"amount": 12, "hour": 14, "merchant": "grocery"}, {"amount": 420.5, "hour": 3, "merchant": "online"}, {"amount": 80, "hour": null, "merchant": "fuel"}]""");
        Assert.Equal(200, status);
        var predictions = body.GetProperty("predictions").EnumerateArray().ToList();
        Assert.Equal(3, predictions.Count);
        var first = TestPackages.PredictWithMlnet(server.FraudPackage, 12, 14, "grocery");
        var second = TestPackages.PredictWithMlnet(server.FraudPackage, 420.5f, 3, "online");
        Assert.Equal(first.Probability, predictions[0].GetProperty("probability").GetDouble(), 5);
        Assert.Equal(second.Probability, predictions[1].GetProperty("probability").GetDouble(), 5);
        Assert.True(predictions[1].GetProperty("probability").GetDouble() > predictions[0].GetProperty("probability").GetDouble());
    }

    [Fact]
    public async Task Rows_that_name_their_fields_in_other_orders_or_escaped_score_as_the_same_rows_sent_in_signature_order()
    {
        // Rows of one body in different orders, one with an escaped name (\u0075 is 'u'), score as the same rows alone.
        var (status, body, _) = await server.PostAsync("/predict",
            """[{"amount": 420.5, "hour": 3, "merchant": "online"}, {"merchant": "grocery", "amount": 12, "hour": 14}, {"hour": 3, "amo\u0075nt": 420.5, "merchant": "online"}, {"amount": 80, "hour": null, "merchant": "fuel"}]""");
        Assert.Equal(200, status);
        var predictions = body.GetProperty("predictions").EnumerateArray().ToList();
        Assert.Equal(4, predictions.Count);
        string[] alone =
        [
            """{"amount": 420.5, "hour": 3, "merchant": "online"}""",
            """{"amount": 12, "hour": 14, "merchant": "grocery"}""",
            """{"amount": 420.5, "hour": 3, "merchant": "online"}""",
            """{"amount": 80, "hour": null, "merchant": "fuel"}""",
        ];
        for (var i = 0; i < alone.Length; i++)
        {
            var (one, single, _) = await server.PostAsync("/predict", alone[i]);
            Assert.Equal(200, one);
            Assert.Equal(single.GetProperty("prediction").GetString(), predictions[i].GetProperty("prediction").GetString());
            Assert.Equal(single.GetProperty("probability").GetDouble(), predictions[i].GetProperty("probability").GetDouble());
        }
        // Oracle for the values themselves: ML.NET's typed PredictionEngine.
        Assert.Equal(TestPackages.PredictWithMlnet(server.FraudPackage, 12, 14, "grocery").Probability, predictions[1].GetProperty("probability").GetDouble(), 5);
        Assert.Equal(TestPackages.PredictWithMlnet(server.FraudPackage, 420.5f, 3, "online").Probability, predictions[2].GetProperty("probability").GetDouble(), 5);

        // A field twice in a later row is still refused, naming it and the row, after the guessed order was learnt.
        var (twice, problem, _) = await server.PostAsync("/predict",
            """[{"amount": 5, "hour": 3, "merchant": "online"}, {"amount": 5, "hour": 3, "amount": 6, "merchant": "online"}]""");
        Assert.Equal(422, twice);
        Assert.Equal("amount", problem.GetProperty("field").GetString());
        Assert.Equal(1, problem.GetProperty("row").GetInt32());
    }

    [Fact]
    public async Task The_answer_is_compact_json_with_the_probability_as_a_round_trip_double()
    {
        using var content = new StringContent(Valid, System.Text.Encoding.UTF8, "application/json");
        using var response = await server.Http.PostAsync("/predict", content);
        Assert.Equal(200, (int)response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        using var doc = System.Text.Json.JsonDocument.Parse(text);
        var root = doc.RootElement;
        var probability = root.GetProperty("probability").GetDouble();
        // Expected bytes written out by hand: property order, no spaces, the shortest text that reads back as the same
        // double (.NET's "R"); the value against ML.NET's typed PredictionEngine.
        var expected = "{\"prediction\":\"" + root.GetProperty("prediction").GetString() + "\",\"probability\":"
            + probability.ToString("R", System.Globalization.CultureInfo.InvariantCulture)
            + ",\"model\":\"fraud\",\"version\":\"" + root.GetProperty("version").GetString()
            + "\",\"request_id\":\"" + root.GetProperty("request_id").GetString() + "\"}";
        Assert.Equal(expected, text);
        Assert.Equal(TestPackages.PredictWithMlnet(server.FraudPackage, 420.5f, 3, "online").Probability, probability, 5);
    }

    [Fact]
    public async Task Predict_names_a_model_and_a_regression_model_answers_its_value()
    {
        var (status, body, _) = await server.PostAsync("/predict/spend", """{"amount": 100, "hour": 10, "merchant": "travel"}""");
        Assert.Equal(200, status);
        Assert.Equal("spend", body.GetProperty("model").GetString());
        var value = body.GetProperty("prediction").GetDouble();
        // The training target was amount * 0.5 + hour = 60; ten small trees land near it.
        Assert.InRange(value, 30, 90);
        Assert.False(body.TryGetProperty("probability", out _));
    }

    public static TheoryData<string, int, string> Invalid => new()
    {
        { """{"hour": 3, "merchant": "online"}""", 422, "amount" },                                 // missing
        { """{"amount": 1, "hour": 3, "merchant": "online", "colour": "red"}""", 422, "colour" },   // unknown
        { """{"amount": "12", "hour": 3, "merchant": "online"}""", 422, "amount" },                 // string for a number
        { """{"amount": true, "hour": 3, "merchant": "online"}""", 422, "amount" },                 // boolean
        { """{"amount": [1], "hour": 3, "merchant": "online"}""", 422, "amount" },                  // array
        { """{"amount": "NaN", "hour": 3, "merchant": "online"}""", 422, "amount" },                // NaN, not nullable
        { """{"amount": 5, "hour": "Infinity", "merchant": "online"}""", 422, "hour" },             // Infinity
        { """{"amount": 5, "hour": 1e999, "merchant": "online"}""", 422, "hour" },                  // overflows to infinity
        { """{"amount": null, "hour": 3, "merchant": "online"}""", 422, "amount" },                 // null, not nullable
        { """{"amount": 5, "hour": 3, "merchant": "casino"}""", 422, "merchant" },                  // unseen category
        { """{"amount": 5, "hour": 3, "merchant": 7}""", 422, "merchant" },                         // number, not a known category
        { """{"amount": 5, "amount": 6, "hour": 3, "merchant": "online"}""", 422, "amount" },       // twice
        { """[{"amount": 5, "hour": 3, "merchant": "online"}, {"amount": 5, "hour": 3}]""", 422, "merchant" }, // row 1 missing
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public async Task Invalid_input_is_a_problem_naming_the_field_and_the_next_request_still_works(string json, int expectedStatus, string field)
    {
        var (status, body, response) = await server.PostAsync("/predict", json);
        Assert.Equal(expectedStatus, status);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(field, body.GetProperty("field").GetString());
        Assert.Contains(field, body.GetProperty("detail").GetString());
        Assert.Equal(expectedStatus, body.GetProperty("status").GetInt32());

        var (next, _, _) = await server.PostAsync("/predict", Valid);
        Assert.Equal(200, next);
    }

    [Fact]
    public async Task A_batch_error_names_the_row()
    {
        var (status, body, _) = await server.PostAsync("/predict", """[{"amount": 5, "hour": 3, "merchant": "online"}, {"amount": "x", "hour": 3, "merchant": "online"}]""");
        Assert.Equal(422, status);
        Assert.Equal(1, body.GetProperty("row").GetInt32());
        Assert.StartsWith("row 1: amount:", body.GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData("""{"amount": 5, "hour": 3,""", "application/json", 400)]
    [InlineData("""{"amount": 5, "hour": 3, "merchant": "online"} {"amount": 6}""", "application/json", 400)]
    [InlineData("42", "application/json", 400)]
    [InlineData("", "application/json", 400)]
    [InlineData("""{"amount": 420.5, "hour": 3, "merchant": "online"}""", "text/plain", 415)]
    [InlineData("amount,hour,merchant\n1,2,online", "text/csv", 415)]
    public async Task Malformed_bodies_and_wrong_content_types_are_4xx_problems(string body, string contentType, int expected)
    {
        var (status, json, response) = await server.PostAsync("/predict", body, contentType);
        Assert.Equal(expected, status);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.False(string.IsNullOrEmpty(json.GetProperty("detail").GetString()));
        var (next, _, _) = await server.PostAsync("/predict", Valid);
        Assert.Equal(200, next);
    }

    [Fact]
    public async Task An_oversized_body_is_413()
    {
        var rows = string.Join(",", Enumerable.Repeat("""{"amount": 420.5, "hour": 3, "merchant": "online"}""", 3000));
        // As curl does for large bodies: ask before sending, so the server can refuse without reading it.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/predict") { Content = new StringContent("[" + rows + "]", System.Text.Encoding.UTF8, "application/json") };
        request.Headers.ExpectContinue = true;
        using var response = await server.Http.SendAsync(request);
        Assert.Equal(413, (int)response.StatusCode);
        var body = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Contains("limit", body.GetProperty("detail").GetString());
        var (next, _, _) = await server.PostAsync("/predict", Valid);
        Assert.Equal(200, next);
    }

    [Fact]
    public async Task An_unknown_model_is_404()
    {
        var (status, body, _) = await server.PostAsync("/predict/nope", Valid);
        Assert.Equal(404, status);
        Assert.Equal("model", body.GetProperty("field").GetString());
    }

    [Fact]
    public async Task A_nullable_field_may_be_null_or_left_out()
    {
        Assert.Equal(200, (await server.PostAsync("/predict", """{"amount": 5, "hour": null, "merchant": "online"}""")).Status);
        Assert.Equal(200, (await server.PostAsync("/predict", """{"amount": 5, "merchant": "online"}""")).Status);
        Assert.Equal(200, (await server.PostAsync("/predict", """{"amount": 5, "hour": "NaN", "merchant": "online"}""")).Status);
    }

    [Fact]
    public async Task Under_the_flag_policy_an_unseen_category_is_scored_and_flagged()
    {
        var (status, body, _) = await server.PostAsync("/predict/fraud-flag", """{"amount": 5, "hour": 3, "merchant": "casino"}""");
        Assert.Equal(200, status);
        Assert.Contains("merchant: unseen category 'casino'", body.GetProperty("flags")[0].GetString());
        Assert.Equal("fraud-flag", body.GetProperty("model").GetString());
    }

    [Fact]
    public async Task Health_and_ready_report_each_model()
    {
        var (h, health) = await server.GetAsync("/health");
        Assert.Equal(200, h);
        Assert.Equal("ok", health.GetProperty("status").GetString());
        var (r, ready) = await server.GetAsync("/ready");
        Assert.Equal(200, r);
        Assert.True(ready.GetProperty("ready").GetBoolean());
        var models = ready.GetProperty("models").EnumerateArray().ToList();
        Assert.Equal(["fraud", "spend", "fraud-flag"], models.Select(m => m.GetProperty("name").GetString()));
        Assert.All(models, m => Assert.Equal("ready", m.GetProperty("state").GetString()));
        Assert.All(models, m => Assert.Equal(12, m.GetProperty("version").GetString()!.Length));
        Assert.All(models, m => Assert.True(m.TryGetProperty("loaded_at", out _), m.ToString()));
    }
}
