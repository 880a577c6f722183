using Kiln.Tracking.Tests;

namespace Kiln.Server.Tests;

/// <summary>The training client and model resolution through a server: packages are downloaded into the cache.</summary>
public sealed class HttpTrackingClientTests(ServerFixture fixture) : TrackingClientContract(fixture), IClassFixture<ServerFixture>;
