using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

/// <summary>
/// An open-loop HTTP/1.1 load generator at a fixed rate, in the manner of wrk2 (not packaged in
/// Debian): one thread sends every request at its scheduled time over a pool of keep-alive
/// connections and reads the answers itself, polling the busy connections between sends. No
/// thread pool, no HttpClient, no task continuations: nothing on the generator's side has to be
/// scheduled by the OS before a send or after an answer, so with a core of its own (taskset) its
/// timestamps are within microseconds of the wire. Latency counts from each request's scheduled
/// time (a late send still counts against the server: no coordinated omission).
/// </summary>
internal static class RateGenerator
{
    private const int MaxConnections = 256;

    public static int Run(string url, byte[] body, int rate, int seconds, bool spin)
    {
        var uri = new Uri(url);
        var endpoint = new IPEndPoint(IPAddress.Parse(uri.Host == "localhost" ? "127.0.0.1" : uri.Host), uri.Port);
        var head = $"POST {uri.PathAndQuery} HTTP/1.1\r\nHost: {uri.Authority}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n";
        byte[] request = [.. Encoding.ASCII.GetBytes(head), .. body];

        var warm = rate; // the first second warms connections and is not counted
        var total = warm + rate * seconds;
        var scheduledAt = new long[total];
        var sentAt = new long[total];
        var doneAt = new long[total];
        var failures = 0;
        var idle = new Stack<Connection>();
        var busy = new List<Connection>();
        var opened = 0;
        for (; opened < 16; opened++) idle.Push(new Connection(endpoint));

        var ticksPerRequest = (double)Stopwatch.Frequency / rate;
        var start = Stopwatch.GetTimestamp();
        var next = 0;
        var done = 0;
        while (done < total)
        {
            var now = Stopwatch.GetTimestamp();
            while (next < total && start + (long)(next * ticksPerRequest) <= now)
            {
                Connection c;
                if (idle.Count > 0) c = idle.Pop();
                else if (opened < MaxConnections) { c = new Connection(endpoint); opened++; }
                else break; // every connection busy: the request waits, its clock already running
                scheduledAt[next] = start + (long)(next * ticksPerRequest);
                sentAt[next] = Stopwatch.GetTimestamp();
                c.Send(request, next);
                busy.Add(c);
                next++;
            }
            for (var i = busy.Count - 1; i >= 0; i--)
            {
                var c = busy[i];
                var answer = c.Poll();
                if (answer is null) continue;
                doneAt[c.Index] = Stopwatch.GetTimestamp();
                if (answer is < 200 or > 299) failures++;
                done++;
                busy[i] = busy[^1];
                busy.RemoveAt(busy.Count - 1);
                idle.Push(c);
            }
            if (!spin) Thread.Yield();
        }
        var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds - 1;
        foreach (var c in idle) c.Dispose();

        var n = total - warm;
        var latencies = new double[n];
        var lags = new double[n];
        var services = new double[n];
        for (var i = 0; i < n; i++)
        {
            var k = warm + i;
            latencies[i] = Stopwatch.GetElapsedTime(scheduledAt[k], doneAt[k]).TotalMilliseconds;
            lags[i] = Stopwatch.GetElapsedTime(scheduledAt[k], sentAt[k]).TotalMilliseconds;
            services[i] = Stopwatch.GetElapsedTime(sentAt[k], doneAt[k]).TotalMilliseconds;
        }
        Array.Sort(latencies);
        Array.Sort(lags);
        Array.Sort(services);
        static double P(double[] sorted, double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"rate={rate}/s requests={n} achieved={n / elapsed:F0}/s failures={failures} connections={opened} p50={P(latencies, 0.50):F2}ms p90={P(latencies, 0.90):F2}ms p99={P(latencies, 0.99):F2}ms p99.9={P(latencies, 0.999):F2}ms max={latencies[^1]:F2}ms"
            + $" | send lag p99={P(lags, 0.99):F3}ms | from send p50={P(services, 0.50):F2}ms p99={P(services, 0.99):F2}ms"));
        return failures == 0 ? 0 : 1;
    }

    /// <summary>A keep-alive connection with at most one request in flight.</summary>
    private sealed class Connection : IDisposable
    {
        private readonly Socket _socket;
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _length;

        public Connection(EndPoint endpoint)
        {
            _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            _socket.Connect(endpoint);
            _socket.Blocking = false;
        }

        /// <summary>The request this connection carries now.</summary>
        public int Index { get; private set; }

        public void Send(byte[] request, int index)
        {
            Index = index;
            _length = 0;
            var sent = 0;
            while (sent < request.Length)
            {
                var n = _socket.Send(request, sent, request.Length - sent, SocketFlags.None, out var error);
                if (error is SocketError.WouldBlock) continue;
                if (error is not SocketError.Success) throw new SocketException((int)error);
                sent += n;
            }
        }

        /// <summary>The HTTP status once the whole answer is in; null while it is not.</summary>
        public int? Poll()
        {
            var n = _socket.Receive(_buffer, _length, _buffer.Length - _length, SocketFlags.None, out var error);
            if (error is SocketError.WouldBlock) return null;
            if (error is not SocketError.Success) throw new SocketException((int)error);
            if (n == 0) throw new IOException("the server closed a keep-alive connection");
            _length += n;
            // Parsed as bytes, without allocating: a GC in the generator would show as server latency.
            var received = _buffer.AsSpan(0, _length);
            var headerEnd = received.IndexOf("\r\n\r\n"u8);
            if (headerEnd < 0) return null;
            var status = int.Parse(received.Slice(9, 3), CultureInfo.InvariantCulture);
            var headers = received[..headerEnd];
            var bodyStart = headerEnd + 4;
            var lengthAt = IndexOfIgnoreCase(headers, "\r\ncontent-length:"u8);
            if (lengthAt >= 0)
            {
                var value = headers[(lengthAt + "\r\ncontent-length:"u8.Length)..];
                var end = value.IndexOf("\r\n"u8);
                var contentLength = int.Parse(value[..(end < 0 ? value.Length : end)].Trim((byte)' '), CultureInfo.InvariantCulture);
                return _length - bodyStart >= contentLength ? status : null;
            }
            // Chunked: one answer at a time per connection, so the last chunk ends what was received.
            return received.EndsWith("\r\n0\r\n\r\n"u8) ? status : null;
        }

        private static int IndexOfIgnoreCase(ReadOnlySpan<byte> text, ReadOnlySpan<byte> lowerNeedle)
        {
            for (var i = 0; i + lowerNeedle.Length <= text.Length; i++)
            {
                var match = true;
                for (var j = 0; j < lowerNeedle.Length && match; j++) match = (byte)(text[i + j] | (text[i + j] is >= (byte)'A' and <= (byte)'Z' ? 0x20 : 0)) == lowerNeedle[j];
                if (match) return i;
            }
            return -1;
        }

        public void Dispose() => _socket.Dispose();
    }
}
