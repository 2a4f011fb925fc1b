using System;
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
    // One connection's life: open and welcome, the receive loop, heartbeats,
    // reconnects that resume, and the frames in between.
    public partial class VdmSocket
    {
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
