using System.Net.Http.Headers;
using System.Text;

namespace Kiln.Core;

/// <summary>
/// How Kiln's HTTP clients sign in to a kiln server, the way MLflow's clients do: MLFLOW_TRACKING_TOKEN as a bearer
/// token, else MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD as basic auth; nothing when neither is set.
/// </summary>
public static class ServerCredentials
{
    public static AuthenticationHeaderValue? FromEnvironment()
    {
        var token = Environment.GetEnvironmentVariable("MLFLOW_TRACKING_TOKEN");
        if (!string.IsNullOrEmpty(token)) return new AuthenticationHeaderValue("Bearer", token);
        var user = Environment.GetEnvironmentVariable("MLFLOW_TRACKING_USERNAME");
        var password = Environment.GetEnvironmentVariable("MLFLOW_TRACKING_PASSWORD");
        if (string.IsNullOrEmpty(user) || password is null) return null;
        return new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password)));
    }
}
