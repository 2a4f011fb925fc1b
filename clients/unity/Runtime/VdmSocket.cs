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
    }
}
