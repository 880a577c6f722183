using Kiln.Monitoring.Alerts;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kiln.Monitoring.Tests.Alerts;

// Delivery to a real Kestrel receiver on a loopback port: retried on 5xx/408/429/timeouts, not on other 4xx.
public sealed class WebhookDeliveryTests
{
    private static readonly HttpDeliveryOptions Fast = new()
    {
        MaxAttempts = 4,
        InitialBackoff = TimeSpan.FromMilliseconds(20),
        MaxBackoff = TimeSpan.FromMilliseconds(100),
        AttemptTimeout = TimeSpan.FromSeconds(10),
    };

    private static AlertTransition Firing(IReadOnlyList<Uri> hooks) => new()
    {
        Rule = new AlertRule
        {
            Name = "fraud_dataset_drift",
            Metric = "kiln_monitor_dataset_drift",
            Labels = new Dictionary<string, string> { ["model"] = "fraud" },
            Threshold = 0.5,
            For = TimeSpan.FromMinutes(10),
            Severity = "critical",
            Webhooks = hooks,
        },
        Labels = new Dictionary<string, string> { ["model"] = "fraud" },
        From = AlertState.Pending,
        To = AlertState.Firing,
        Value = 1,
        At = new DateTimeOffset(2026, 11, 26, 8, 10, 0, TimeSpan.Zero),
        StartedAt = new DateTimeOffset(2026, 11, 26, 8, 10, 0, TimeSpan.Zero),
    };

    [Fact]
    public async Task A_500_is_retried_and_the_second_attempt_delivers_the_payload()
    {
        await using var receiver = await WebhookReceiver.StartAsync((500, TimeSpan.Zero), (200, TimeSpan.Zero));
        var delivery = new HttpDelivery("webhook", Fast, NullLogger.Instance);
        await using (delivery)
        {
            await new WebhookSink(delivery, "http://serve.example:8080/metrics").NotifyAsync(Firing([receiver.Url]), default);
            await receiver.WaitForAsync(2);
            await delivery.StopAsync(TimeSpan.FromSeconds(10));
        }
        Assert.Equal(2, receiver.Requests.Count);
        Assert.Equal(1, delivery.Delivered);
        Assert.Equal(0, delivery.Failed);
        var body = receiver.Requests.Last().Body;
        Assert.Equal("fraud_dataset_drift", body.GetProperty("alert").GetString());
        Assert.Equal("firing", body.GetProperty("status").GetString());
        Assert.Equal("critical", body.GetProperty("severity").GetString());
        Assert.Equal("fraud", body.GetProperty("model").GetString());
        Assert.Equal("kiln_monitor_dataset_drift", body.GetProperty("metric").GetString());
        Assert.Equal(1, body.GetProperty("value").GetDouble());
        Assert.Equal(0.5, body.GetProperty("threshold").GetDouble());
        Assert.Equal("above", body.GetProperty("condition").GetString());
        Assert.Equal("fraud", body.GetProperty("labels").GetProperty("model").GetString());
        Assert.Equal(new DateTimeOffset(2026, 11, 26, 8, 10, 0, TimeSpan.Zero), body.GetProperty("started_at").GetDateTimeOffset());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, body.GetProperty("resolved_at").ValueKind);
        Assert.Equal("http://serve.example:8080/metrics", body.GetProperty("link").GetString());
        Assert.Contains("kiln_monitor_dataset_drift{model=\"fraud\"} = 1", body.GetProperty("summary").GetString());
        // The same alert is recognisable across attempts and notifications.
        Assert.Equal(receiver.Requests.First().Body.GetProperty("fingerprint").GetString(), body.GetProperty("fingerprint").GetString());
        Assert.Equal("fraud_dataset_drift", receiver.Requests.Last().Headers["X-Kiln-Alert"]);
    }

    [Fact]
    public async Task A_400_is_not_retried()
    {
        await using var receiver = await WebhookReceiver.StartAsync((400, TimeSpan.Zero), (200, TimeSpan.Zero));
        var delivery = new HttpDelivery("webhook", Fast, NullLogger.Instance);
        await using (delivery)
        {
            await new WebhookSink(delivery).NotifyAsync(Firing([receiver.Url]), default);
            await receiver.WaitForAsync(1);
            await delivery.StopAsync(TimeSpan.FromSeconds(10));
        }
        Assert.Single(receiver.Requests);
        Assert.Equal(1, delivery.Failed);
        Assert.Equal(0, delivery.Delivered);
        Assert.Equal(1, delivery.Attempts);
    }

    [Fact]
    public async Task A_429_and_an_attempt_that_times_out_are_retried()
    {
        await using var receiver = await WebhookReceiver.StartAsync((429, TimeSpan.Zero), (200, TimeSpan.FromSeconds(30)), (200, TimeSpan.Zero));
        var delivery = new HttpDelivery("webhook", Fast with { AttemptTimeout = TimeSpan.FromMilliseconds(500) }, NullLogger.Instance);
        await using (delivery)
        {
            await new WebhookSink(delivery).NotifyAsync(Firing([receiver.Url]), default);
            await receiver.WaitForAsync(3);
            await delivery.StopAsync(TimeSpan.FromSeconds(10));
        }
        Assert.Equal(3, receiver.Requests.Count);
        Assert.Equal(1, delivery.Delivered);
        Assert.Equal(3, delivery.Attempts);
    }

    [Fact]
    public async Task Delivery_stops_after_the_bounded_number_of_attempts()
    {
        await using var receiver = await WebhookReceiver.StartAsync((503, TimeSpan.Zero));
        var delivery = new HttpDelivery("webhook", Fast with { MaxAttempts = 3 }, NullLogger.Instance);
        await using (delivery)
        {
            await new WebhookSink(delivery).NotifyAsync(Firing([receiver.Url]), default);
            await receiver.WaitForAsync(3);
            await delivery.StopAsync(TimeSpan.FromSeconds(10));
        }
        Assert.Equal(3, receiver.Requests.Count);
        Assert.Equal(1, delivery.Failed);
    }

    [Fact]
    public async Task A_slow_receiver_never_blocks_the_caller_the_bounded_queue_drops_the_oldest()
    {
        await using var receiver = await WebhookReceiver.StartAsync((200, TimeSpan.FromSeconds(2)), (200, TimeSpan.Zero));
        var delivery = new HttpDelivery("webhook", Fast with { QueueCapacity = 2 }, NullLogger.Instance);
        await using (delivery)
        {
            var sink = new WebhookSink(delivery);
            await sink.NotifyAsync(Firing([receiver.Url]), default);
            await receiver.WaitForAsync(1); // the first is in flight (held 2 s by the receiver)
            for (var i = 0; i < 10; i++)
            {
                var task = sink.NotifyAsync(Firing([receiver.Url]), default);
                Assert.True(task.IsCompletedSuccessfully); // returns at once, whatever the receiver does
            }
            await delivery.StopAsync(TimeSpan.FromSeconds(20));
        }
        Assert.Equal(8, delivery.Dropped);
        Assert.Equal(3, delivery.Delivered);
        Assert.Equal(3, receiver.Requests.Count);
    }

    [Fact]
    public void Backoff_doubles_from_the_initial_delay_with_jitter_in_the_upper_half_and_is_capped()
    {
        var o = new HttpDeliveryOptions { InitialBackoff = TimeSpan.FromSeconds(1), MaxBackoff = TimeSpan.FromSeconds(10) };
        Assert.Equal(TimeSpan.FromMilliseconds(500), HttpDelivery.Backoff(1, o, 0));
        Assert.Equal(TimeSpan.FromMilliseconds(1000), HttpDelivery.Backoff(1, o, 1));
        Assert.Equal(TimeSpan.FromMilliseconds(2000), HttpDelivery.Backoff(3, o, 0)); // d = 4 s
        Assert.Equal(TimeSpan.FromMilliseconds(4000), HttpDelivery.Backoff(3, o, 1));
        Assert.Equal(TimeSpan.FromSeconds(10), HttpDelivery.Backoff(20, o, 1)); // capped
        Assert.True(HttpDelivery.IsRetryable(System.Net.HttpStatusCode.RequestTimeout));
        Assert.True(HttpDelivery.IsRetryable(System.Net.HttpStatusCode.TooManyRequests));
        Assert.True(HttpDelivery.IsRetryable(System.Net.HttpStatusCode.BadGateway));
        Assert.False(HttpDelivery.IsRetryable(System.Net.HttpStatusCode.NotFound));
        Assert.False(HttpDelivery.IsRetryable(System.Net.HttpStatusCode.Unauthorized));
    }
}
