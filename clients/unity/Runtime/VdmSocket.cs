using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Net.WebSockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Vdm.Client
{
    /// <summary>Settings of a <see cref="VdmSocket"/>.</summary>
    public sealed class VdmSocketOptions
    {
        /// <summary>The contract announced on connect; the generated one by default (tests change it).</summary>
        public string Contract { get; set; } = VdmContract.Version;

        /// <summary>How long a request waits for its response (10 s by default).</summary>
        public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>How long opening the socket may take (10 s by default).</summary>
        public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>Whether a dropped socket reconnects and resumes by itself (true by default).</summary>
        public bool AutoReconnect { get; set; } = true;

        /// <summary>Reconnect attempts before giving up (10 by default).</summary>
        public int MaxReconnectAttempts { get; set; } = 10;

        /// <summary>The first reconnect's backoff ceiling; it doubles per attempt (500 ms by default).</summary>
        public TimeSpan ReconnectBaseDelay { get; set; } = TimeSpan.FromMilliseconds(500);

        /// <summary>The largest wait between reconnect attempts (30 s by default).</summary>
        public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(30);
    }

    /// <summary>The server's first message on a socket.</summary>
    public sealed class VdmWelcome
    {
        /// <summary>The token that resumes this session on a new socket.</summary>
        [JsonProperty("resume_token")] public string ResumeToken { get; set; }

        /// <summary>The player.</summary>
        [JsonProperty("player_id")] public long PlayerId { get; set; }

        /// <summary>The server's contract version.</summary>
        [JsonProperty("contract")] public string Contract { get; set; }

        /// <summary>The server's ping interval.</summary>
        [JsonProperty("heartbeat_ms")] public long HeartbeatMs { get; set; }

        /// <summary>
        /// Whether this socket continues the previous one's session (missed
        /// pushes follow). False after a reconnect means pushes may have been
        /// lost (the resume window passed): load the state again (bootstrap).
        /// </summary>
        [JsonProperty("resumed")] public bool Resumed { get; set; }

        /// <summary>The session's last push seq when the socket opened.</summary>
        [JsonProperty("last_seq")] public long LastSeq { get; set; }
    }

    /// <summary>The answer to a request sent over the socket: what REST would have answered.</summary>
    public sealed class VdmSocketResponse
    {
        /// <summary>Creates a response.</summary>
        public VdmSocketResponse(int status, JToken body)
        {
            Status = status;
            Body = body;
        }

        /// <summary>The HTTP status.</summary>
        public int Status { get; }

        /// <summary>The body (null when REST would have sent none).</summary>
        public JToken Body { get; }
    }

    /// <summary>
    /// The client's one WebSocket (<c>/v1/ws</c>): requests answered by id,
    /// typed events for pushes, heartbeats, and reconnects that resume the
    /// session so that every push arrives once, in order.
    /// </summary>
    /// <remarks>
    /// <para>Events (pushes, <see cref="Connected"/>, <see cref="Reconnecting"/>,
    /// <see cref="Closed"/>) are raised on the SynchronizationContext current
    /// when the socket was created: create it on Unity's main thread and
    /// handlers may touch GameObjects. Without a context they are raised on
    /// the socket's receive thread.</para>
    /// <para>Pushes carry a per-session <c>seq</c>. After a dropped
    /// connection the socket reconnects with backoff and asks the server to
    /// replay what came after the last seq it saw; a push seen already is
    /// dropped, so handlers see each push once.</para>
    /// <para>A request sent when the connection drops fails with
    /// <see cref="VdmSocketException"/>: it may or may not have run, and only
    /// the game knows whether sending it again is safe.</para>
    /// </remarks>
    public partial class VdmSocket : IDisposable
    {
        /// <summary>The subprotocol of JSON sockets.</summary>
        public const string JsonSubprotocol = "vdm.v1.json";

        private const int CloseIncompatibleContract = 4001;
        private const int CloseSessionRevoked = 4003;

        private readonly VdmClient client;
        private readonly VdmSocketOptions options;
        private readonly SynchronizationContext context;
        private readonly ConcurrentDictionary<string, TaskCompletionSource<VdmSocketResponse>> pending =
            new ConcurrentDictionary<string, TaskCompletionSource<VdmSocketResponse>>();
        private readonly SemaphoreSlim sending = new SemaphoreSlim(1, 1);
        private readonly HashSet<long> regions = new HashSet<long>();
        private readonly Random random = new Random();
        private readonly object state = new object();

        private Connection current;
        private string resumeToken;
        private long lastSeq;
        private long nextId;
        private bool closing;

        /// <summary>Creates a socket for the signed-in player of <paramref name="client"/>.</summary>
        public VdmSocket(VdmClient client, VdmSocketOptions options = null)
        {
            this.client = client ?? throw new ArgumentNullException(nameof(client));
            this.options = options ?? new VdmSocketOptions();
            context = SynchronizationContext.Current;
            Calls = new VdmClient(client, new SocketTransport(this));
        }

        /// <summary>
        /// The typed route methods of <see cref="VdmClient"/>, carried by this
        /// socket instead of HTTP: <c>await socket.Calls.AcceptQuestAsync(id)</c>.
        /// Arguments are checked, errors are <see cref="VdmApiException"/>, and
        /// idempotent calls are retried (a dropped connection included) as over
        /// REST. Calls that take an Idempotency-Key cannot go over the socket
        /// (its envelope has no headers) and throw <see cref="NotSupportedException"/>;
        /// sign-in and refresh belong to the REST client.
        /// </summary>
        public VdmClient Calls { get; }

        /// <summary>Raised when a connection opens (the first, and each reconnect).</summary>
        public event Action<VdmWelcome> Connected;

        /// <summary>Raised before each reconnect attempt: its number (from 1) and the wait before it.</summary>
        public event Action<int, TimeSpan> Reconnecting;

        /// <summary>
        /// Raised when the socket stops for good: null when closed by
        /// <see cref="CloseAsync"/>, else why (a <see cref="VdmContractException"/>
        /// for 4001, a <see cref="VdmSocketException"/> with the close code for
        /// a revoked session or when reconnecting gave up).
        /// </summary>
        public event Action<Exception> Closed;

        /// <summary>Raised for a push this SDK has no type for (a newer server): its name and payload.</summary>
        public event Action<string, JToken> UnknownPush;

        /// <summary>Raised when a push handler throws; the socket carries on.</summary>
        public event Action<Exception> HandlerFailed;

        /// <summary>The seq of the last push received.</summary>
        public long LastSeq { get { return Interlocked.Read(ref lastSeq); } }

        /// <summary>Whether a connection is open now.</summary>
        public bool IsConnected
        {
            get
            {
                var c = current;
                return c != null && c.Ws.State == WebSocketState.Open;
            }
        }

        /// <summary>
        /// Opens the socket and waits for the server's welcome. Throws
        /// <see cref="VdmContractException"/> when the server speaks another
        /// contract, <see cref="VdmSocketException"/> when it refuses otherwise.
        /// </summary>
        public async Task<VdmWelcome> ConnectAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            // A second connection would leave the first running unseen,
            // counting against the server's sockets-per-player limit.
            if (IsConnected) throw new InvalidOperationException("the socket is already connected");
            lock (state) closing = false;
            return await OpenAsync(false, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// Sends a REST call over the socket (<c>POST</c>, <c>/v1/quests/42/accept</c>)
        /// and returns its answer, errors included.
        /// </summary>
        public async Task<VdmSocketResponse> SendAsync(string method, string path, object body = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            if (method == null) throw new ArgumentNullException(nameof(method));
            if (path == null || !path.StartsWith("/v1/", StringComparison.Ordinal)) throw new ArgumentException("must be a /v1/ REST path", nameof(path));
            var message = new JObject
            {
                ["type"] = "request",
                ["method"] = method.ToUpperInvariant(),
                ["path"] = path,
            };
            if (body != null) message["body"] = JToken.FromObject(body, VdmJson.Serializer);
            return await RequestAsync(message, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// Sends a REST call over the socket and reads a successful answer as
        /// <typeparamref name="T"/>; an error answer throws <see cref="VdmApiException"/>.
        /// </summary>
        public async Task<T> SendAsync<T>(string method, string path, object body = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            var response = await SendAsync(method, path, body, cancellationToken).ConfigureAwait(false);
            if (response.Status >= 400)
            {
                var error = response.Body == null ? null : response.Body["error"] as JObject;
                throw new VdmApiException(response.Status, error == null ? "http_" + response.Status : (string)error["code"],
                    error == null ? "" : (string)error["message"], null, null, error == null ? null : (string)error["trace_id"]);
            }
            return response.Body == null ? default(T) : response.Body.ToObject<T>(VdmJson.Serializer);
        }

        /// <summary>
        /// Subscribes to the pushes of regions (<c>world.event</c>,
        /// <c>npc.moved</c>, <c>rumor.spread</c>); kept across reconnects.
        /// </summary>
        public async Task SubscribeAsync(IEnumerable<long> regionIds, CancellationToken cancellationToken = default(CancellationToken))
        {
            var ids = new List<long>(regionIds);
            await SubscriptionAsync("subscribe", ids, cancellationToken).ConfigureAwait(false);
            lock (regions) regions.UnionWith(ids);
        }

        /// <summary>Stops the pushes of regions.</summary>
        public async Task UnsubscribeAsync(IEnumerable<long> regionIds, CancellationToken cancellationToken = default(CancellationToken))
        {
            var ids = new List<long>(regionIds);
            await SubscriptionAsync("unsubscribe", ids, cancellationToken).ConfigureAwait(false);
            lock (regions) regions.ExceptWith(ids);
        }

        /// <summary>
        /// Drops the connection as a network loss would; the socket then
        /// reconnects and resumes. Games call it when they know the old
        /// connection is dead (back from the background, Wi-Fi to cellular)
        /// rather than wait for heartbeats to notice.
        /// </summary>
        public void AbortConnection()
        {
            var c = current;
            if (c != null) c.Ws.Abort();
        }

        /// <summary>Closes the socket for good (no reconnect).</summary>
        public async Task CloseAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            Connection c;
            lock (state)
            {
                closing = true;
                c = current;
            }
            if (c == null) return;
            try
            {
                if (c.Ws.State == WebSocketState.Open)
                {
                    // Only the output side: the receive loop reads the
                    // server's close frame (and anything sent before it).
                    await sending.WaitAsync(cancellationToken).ConfigureAwait(false);
                    try
                    {
                        await c.Ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        sending.Release();
                    }
                    await Task.WhenAny(c.Closed.Task, Task.Delay(TimeSpan.FromSeconds(2), cancellationToken)).ConfigureAwait(false);
                }
            }
            catch (WebSocketException)
            {
                // Already gone: nothing to close.
            }
            finally
            {
                c.Stop.Cancel();
            }
        }

        /// <summary>Aborts the connection without a close handshake and stops reconnecting.</summary>
        public void Dispose()
        {
            lock (state) closing = true;
            var c = current;
            if (c != null)
            {
                c.Stop.Cancel();
                c.Ws.Abort();
                c.Ws.Dispose();
            }
        }

        private async Task SubscriptionAsync(string type, List<long> ids, CancellationToken cancellationToken)
        {
            foreach (var id in ids)
            {
                if (id < 1) throw new ArgumentOutOfRangeException(nameof(ids), id, "region ids are positive");
            }
            var response = await RequestAsync(new JObject { ["type"] = type, ["regions"] = new JArray(ids) }, cancellationToken).ConfigureAwait(false);
            if (response.Status != 200)
            {
                var error = response.Body == null ? null : response.Body["error"] as JObject;
                throw new VdmApiException(response.Status, error == null ? "http_" + response.Status : (string)error["code"],
                    error == null ? "" : (string)error["message"], null, null, null);
            }
        }

        private async Task<VdmSocketResponse> RequestAsync(JObject message, CancellationToken cancellationToken)
        {
            var c = current;
            if (c == null || c.Ws.State != WebSocketState.Open) throw new VdmSocketException("the socket is not connected");
            var id = "c" + Interlocked.Increment(ref nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);
            message["id"] = id;
            var answer = new TaskCompletionSource<VdmSocketResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
            pending[id] = answer;
            try
            {
                await SendFrameAsync(c, message, cancellationToken).ConfigureAwait(false);
                using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    timeout.CancelAfter(options.RequestTimeout);
                    using (timeout.Token.Register(() => answer.TrySetCanceled()))
                    {
                        try
                        {
                            return await answer.Task.ConfigureAwait(false);
                        }
                        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
                        {
                            throw new TimeoutException(string.Format("no answer to {0} {1} within {2} ms", message["method"], message["path"], (long)options.RequestTimeout.TotalMilliseconds));
                        }
                    }
                }
            }
            finally
            {
                TaskCompletionSource<VdmSocketResponse> removed;
                pending.TryRemove(id, out removed);
            }
        }

        private async Task SendFrameAsync(Connection c, JObject message, CancellationToken cancellationToken)
        {
            var bytes = Encoding.UTF8.GetBytes(message.ToString(Formatting.None));
            // ClientWebSocket allows one send at a time.
            await sending.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await c.Ws.SendAsync(new ArraySegment<byte>(bytes), WebSocketMessageType.Text, true, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is WebSocketException || e is ObjectDisposedException || e is IOException)
            {
                throw new VdmSocketException("the socket dropped while sending", null, e);
            }
            finally
            {
                sending.Release();
            }
        }

        private Uri SocketUrl(bool resume)
        {
            var builder = new UriBuilder(new Uri(client.BaseUrl, "v1/ws"));
            builder.Scheme = builder.Scheme == "https" ? "wss" : "ws";
            var query = "contract=" + Uri.EscapeDataString(options.Contract);
            if (resume && resumeToken != null)
            {
                query += "&resume=" + Uri.EscapeDataString(resumeToken) + "&last_seq=" + LastSeq.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            builder.Query = query;
            return builder.Uri;
        }

        private async Task<VdmWelcome> OpenAsync(bool resume, CancellationToken cancellationToken)
        {
            var token = await client.GetSessionTokenAsync(cancellationToken).ConfigureAwait(false);
            var session = client.Session;
            var ws = new ClientWebSocket();
            ws.Options.AddSubProtocol(JsonSubprotocol);
            ws.Options.SetRequestHeader("Authorization", "Bearer " + token);
            var c = new Connection(ws);
            VdmWelcome welcome;
            using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                deadline.CancelAfter(options.ConnectTimeout);
                try
                {
                    await ws.ConnectAsync(SocketUrl(resume), deadline.Token).ConfigureAwait(false);
                    var first = await ReceiveAsync(ws, deadline.Token).ConfigureAwait(false);
                    if (first.CloseCode.HasValue)
                    {
                        throw CloseError(first.CloseCode.Value, first.Text);
                    }
                    var message = JObject.Parse(first.Text);
                    if ((string)message["type"] != "welcome") throw new VdmSocketException("expected the server's welcome, got " + (string)message["type"]);
                    welcome = message.ToObject<VdmWelcome>(VdmJson.Serializer);
                }
                catch (Exception e) when (!(e is VdmContractException) && !(e is VdmSocketException) && !cancellationToken.IsCancellationRequested)
                {
                    ws.Dispose();
                    throw new VdmSocketException("could not open the socket: " + e.Message, null, e);
                }
                catch
                {
                    ws.Dispose();
                    throw;
                }
            }
            lock (state)
            {
                resumeToken = welcome.ResumeToken;
                // A new session numbers its pushes afresh; a resumed one
                // replays from our last seq, so ours stays.
                if (!welcome.Resumed) Interlocked.Exchange(ref lastSeq, welcome.LastSeq);
                current = c;
            }
            c.Heartbeat = TimeSpan.FromMilliseconds(welcome.HeartbeatMs > 0 ? welcome.HeartbeatMs : 15000);
            c.RotateAtUtc = session != null && session.SessionToken == token ? client.RefreshDueUtc(session) : DateTime.MaxValue;
            // Both loops end with the connection; failures surface through Closed or a reconnect.
            _ = Task.Run(() => ReceiveLoopAsync(c));
            _ = Task.Run(() => HeartbeatLoopAsync(c));
            List<long> subscribed;
            lock (regions) subscribed = new List<long>(regions);
            if (subscribed.Count > 0 && !welcome.Resumed)
            {
                // A new session has no subscriptions; a resumed one kept them.
                await SubscriptionAsync("subscribe", subscribed, cancellationToken).ConfigureAwait(false);
            }
            Raise(Connected, welcome);
            return welcome;
        }

        private Exception CloseError(int code, string reason)
        {
            if (code == CloseIncompatibleContract) return new VdmContractException(options.Contract, reason);
            return new VdmSocketException(string.Format("the server closed the socket ({0}): {1}", code, reason), code);
        }

        private async Task ReceiveLoopAsync(Connection c)
        {
            Exception failure = null;
            int? closeCode = null;
            string closeReason = null;
            try
            {
                while (!c.Stop.IsCancellationRequested)
                {
                    var frame = await ReceiveAsync(c.Ws, c.Stop.Token).ConfigureAwait(false);
                    c.LastHeard = DateTime.UtcNow;
                    if (frame.CloseCode.HasValue)
                    {
                        closeCode = frame.CloseCode;
                        closeReason = frame.Text;
                        break;
                    }
                    if (frame.Text != null) Handle(frame.Text);
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
            c.Stop.Cancel();
            c.Closed.TrySetResult(true);
            var lost = new VdmSocketException("the socket closed before the answer came; the request may or may not have run", closeCode, failure);
            foreach (var id in pending.Keys)
            {
                TaskCompletionSource<VdmSocketResponse> waiting;
                if (pending.TryRemove(id, out waiting)) waiting.TrySetException(lost);
            }
            bool stopping;
            lock (state) stopping = closing;
            if (stopping)
            {
                Raise(Closed, (Exception)null);
                return;
            }
            if (closeCode == CloseIncompatibleContract || closeCode == CloseSessionRevoked || !options.AutoReconnect)
            {
                Raise(Closed, closeCode.HasValue ? CloseError(closeCode.Value, closeReason) : lost);
                return;
            }
            await ReconnectAsync(c.Rotating).ConfigureAwait(false);
        }

        private async Task ReconnectAsync(bool immediately)
        {
            Exception last = null;
            for (var attempt = 1; attempt <= options.MaxReconnectAttempts; attempt++)
            {
                if (immediately && attempt == 1)
                {
                    // A token rotation, not a failure: no backoff.
                    try
                    {
                        await OpenAsync(true, CancellationToken.None).ConfigureAwait(false);
                        return;
                    }
                    catch (Exception e) when (!(e is VdmContractException) && !(e is VdmApiException))
                    {
                        last = e;
                    }
                }
                // Equal jitter: at least half the ceiling, so a burst of
                // clients dropped together (a gateway restart) spreads out
                // without any of them hammering at once.
                var ceiling = Math.Min(options.ReconnectMaxDelay.TotalMilliseconds,
                    options.ReconnectBaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 20)));
                double r;
                lock (random) r = random.NextDouble();
                var delay = TimeSpan.FromMilliseconds(ceiling / 2 + ceiling / 2 * r);
                Raise(Reconnecting, attempt, delay);
                await Task.Delay(delay).ConfigureAwait(false);
                lock (state)
                {
                    if (closing) return;
                }
                try
                {
                    await OpenAsync(true, CancellationToken.None).ConfigureAwait(false);
                    return;
                }
                catch (VdmContractException e)
                {
                    Raise(Closed, (Exception)e);
                    return;
                }
                catch (VdmApiException e) when (e.Status == 401)
                {
                    // The session cannot be refreshed: only a new sign-in helps.
                    Raise(Closed, (Exception)e);
                    return;
                }
                catch (Exception e)
                {
                    last = e;
                }
            }
            Raise(Closed, (Exception)new VdmSocketException("gave up reconnecting after " + options.MaxReconnectAttempts + " attempts", null, last));
        }

        private async Task HeartbeatLoopAsync(Connection c)
        {
            // The server pings at the protocol level; ClientWebSocket answers
            // those by itself but does not show them. An application ping at
            // half the interval gets an answer we can see, so a dead network
            // is noticed in two intervals even when no push is flowing.
            var interval = TimeSpan.FromMilliseconds(c.Heartbeat.TotalMilliseconds / 2);
            try
            {
                while (!c.Stop.IsCancellationRequested)
                {
                    await Task.Delay(interval, c.Stop.Token).ConfigureAwait(false);
                    if (DateTime.UtcNow - c.LastHeard > c.Heartbeat + c.Heartbeat)
                    {
                        c.Ws.Abort();
                        return;
                    }
                    if (DateTime.UtcNow >= c.RotateAtUtc)
                    {
                        // The server runs socket requests with the token the
                        // socket opened with, so they would fail with 401
                        // once it expires: reconnect now with a fresh one,
                        // resuming, so no push is lost.
                        c.Rotating = true;
                        c.Ws.Abort();
                        return;
                    }
                    await SendFrameAsync(c, new JObject { ["type"] = "ping" }, c.Stop.Token).ConfigureAwait(false);
                }
            }
            catch (Exception)
            {
                // The receive loop sees the same failure and reconnects.
            }
        }

        private void Handle(string text)
        {
            JObject message;
            try
            {
                message = JObject.Parse(text);
            }
            catch (JsonException)
            {
                return;
            }
            var type = (string)message["type"];
            if (type == "response")
            {
                var id = (string)message["id"];
                TaskCompletionSource<VdmSocketResponse> waiting;
                if (id != null && pending.TryRemove(id, out waiting))
                {
                    waiting.TrySetResult(new VdmSocketResponse((int)message["status"], message["body"]));
                }
                return;
            }
            if (type != "event") return;
            var seq = (long)message["seq"];
            // Pushes come in seq order; anything at or below the last one
            // seen is a replay of a push already handled.
            if (seq <= Interlocked.Read(ref lastSeq)) return;
            Interlocked.Exchange(ref lastSeq, seq);
            var name = (string)message["event"];
            var payload = message["payload"];
            if (!DispatchPush(name, payload))
            {
                Raise(UnknownPush, name, payload);
            }
        }

        private void Raise<T>(Action<T> handler, T value)
        {
            if (handler == null) return;
            Run(() => handler(value));
        }

        private void Raise<T1, T2>(Action<T1, T2> handler, T1 a, T2 b)
        {
            if (handler == null) return;
            Run(() => handler(a, b));
        }

        private void Run(Action action)
        {
            Action guarded = () =>
            {
                try
                {
                    action();
                }
                catch (Exception e)
                {
                    var failed = HandlerFailed;
                    if (failed != null) failed(e);
                }
            };
            if (context != null) context.Post(_ => guarded(), null);
            else guarded();
        }

        private static async Task<Frame> ReceiveAsync(ClientWebSocket ws, CancellationToken cancellationToken)
        {
            var buffer = new ArraySegment<byte>(new byte[8192]);
            using (var message = new MemoryStream())
            {
                while (true)
                {
                    var result = await ws.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        var code = result.CloseStatus.HasValue ? (int)result.CloseStatus.Value : 1005;
                        return new Frame { CloseCode = code, Text = result.CloseStatusDescription ?? ws.CloseStatusDescription };
                    }
                    message.Write(buffer.Array, buffer.Offset, result.Count);
                    if (result.EndOfMessage) break;
                }
                return new Frame { Text = Encoding.UTF8.GetString(message.ToArray()) };
            }
        }

        /// <summary>Carries the requests of <see cref="Calls"/> as socket requests.</summary>
        private sealed class SocketTransport : IVdmTransport
        {
            private readonly VdmSocket socket;

            public SocketTransport(VdmSocket socket)
            {
                this.socket = socket;
            }

            public async Task<VdmHttpResponse> SendAsync(VdmHttpRequest request, CancellationToken cancellationToken)
            {
                if (request.Headers.ContainsKey("Idempotency-Key"))
                {
                    // Sent without its key, a retried create would create twice.
                    throw new NotSupportedException("a call with an Idempotency-Key cannot go over the socket; use the REST client");
                }
                var body = request.Body == null ? null : JToken.Parse(Encoding.UTF8.GetString(request.Body));
                using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    deadline.CancelAfter(request.Timeout);
                    VdmSocketResponse response;
                    try
                    {
                        response = await socket.SendAsync(request.Method, ServerPath(request.Url), body, deadline.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        throw new TimeoutException(string.Format("{0} {1} took longer than {2} ms", request.Method, request.Url.AbsolutePath, (long)request.Timeout.TotalMilliseconds));
                    }
                    var bytes = response.Body == null || response.Body.Type == JTokenType.Null
                        ? new byte[0]
                        : Encoding.UTF8.GetBytes(response.Body.ToString(Formatting.None));
                    return new VdmHttpResponse(response.Status, null, bytes);
                }
            }

            /// <summary>
            /// The path as the gateway routes it: behind a proxy that serves
            /// the gateway under a prefix (<c>https://host/game/</c>), the
            /// prefix is the proxy's, not the gateway's.
            /// </summary>
            private string ServerPath(Uri url)
            {
                var prefix = socket.client.BaseUrl.AbsolutePath.TrimEnd('/');
                var path = url.PathAndQuery;
                return prefix.Length > 0 && path.StartsWith(prefix + "/", StringComparison.Ordinal) ? path.Substring(prefix.Length) : path;
            }

            public void Dispose()
            {
            }
        }

        private struct Frame
        {
            public int? CloseCode;
            public string Text;
        }

        /// <summary>One connection: a reconnect makes a new one.</summary>
        private sealed class Connection
        {
            public Connection(ClientWebSocket ws)
            {
                Ws = ws;
                LastHeard = DateTime.UtcNow;
            }

            public readonly ClientWebSocket Ws;
            public readonly CancellationTokenSource Stop = new CancellationTokenSource();
            public readonly TaskCompletionSource<bool> Closed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            public TimeSpan Heartbeat;
            public DateTime RotateAtUtc = DateTime.MaxValue;
            public volatile bool Rotating;
            public DateTime LastHeard;
        }
    }
}
