using System;
using System.Globalization;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Newtonsoft.Json.Linq;

namespace Vdm.Client
{
    /// <summary>Settings of a <see cref="VdmClient"/>.</summary>
    public sealed class VdmClientOptions
    {
        /// <summary>How long one attempt of a call may take (10 s by default, the server's own deadline).</summary>
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>Attempts per call, the first included (4 by default); only idempotent calls get more than one.</summary>
        public int MaxAttempts { get; set; } = 4;

        /// <summary>The first retry's backoff ceiling; it doubles per attempt (200 ms by default).</summary>
        public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

        /// <summary>The largest backoff between attempts (5 s by default).</summary>
        public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

        /// <summary>The longest Retry-After the client waits for; a longer one fails the call at once (30 s by default).</summary>
        public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(30);

        /// <summary>How long before it expires a session is refreshed (60 s by default, at most half its lifetime).</summary>
        public TimeSpan RefreshMargin { get; set; } = TimeSpan.FromSeconds(60);

        /// <summary>The User-Agent sent with every call.</summary>
        public string UserAgent { get; set; } = "vdm-unity/" + VdmClient.SdkVersion;
    }

    /// <summary>
    /// The client of the vdm gateway's REST API: one typed async method per
    /// route (generated, in VdmClient.Routes.cs), a player session that is
    /// kept fresh, retries, and typed errors.
    /// </summary>
    /// <remarks>
    /// <para>Sessions: every token pair the server answers (sign-in, refresh)
    /// becomes the client's session. It is refreshed before it expires and,
    /// once, when a call is answered 401; concurrent calls share one refresh,
    /// because a refresh token works once and a second use revokes the
    /// session.</para>
    /// <para>Retries: 429, 502, 503 and 504 answers and network failures are
    /// retried with jittered exponential backoff, waiting Retry-After when
    /// the server sends it, up to <see cref="VdmClientOptions.MaxAttempts"/>,
    /// but only for idempotent calls (GET, PUT, DELETE) and calls carrying an
    /// Idempotency-Key: a POST without one may have run before its answer was
    /// lost, and running it twice could accept twice or create two of a thing.</para>
    /// <para>Errors: a non-2xx answer throws <see cref="VdmApiException"/>;
    /// an argument that breaks the contract's constraints throws
    /// <see cref="ArgumentException"/> naming the field, before anything is sent.</para>
    /// </remarks>
    public partial class VdmClient : IDisposable
    {
        /// <summary>The version of this SDK.</summary>
        public const string SdkVersion = "0.1.0";

        private static readonly int[] Retryable = { 429, 502, 503, 504 };

        private readonly IVdmTransport transport;
        private readonly VdmClientOptions options;
        private readonly SemaphoreSlim refreshing = new SemaphoreSlim(1, 1);
        private readonly object sessionLock = new object();
        private readonly Random random = new Random();
        private VdmSession session;

        // Set on the client of VdmSocket.Calls: the socket authenticates
        // every request with its own token, so this client sends none.
        private readonly bool overSocket;

        /// <summary>
        /// Creates a client of the gateway at <paramref name="baseUrl"/>
        /// (<c>https://game.example.com</c>), over <paramref name="transport"/>
        /// (an <see cref="HttpClientTransport"/> when null).
        /// </summary>
        public VdmClient(string baseUrl, VdmClientOptions options = null, IVdmTransport transport = null)
        {
            if (baseUrl == null) throw new ArgumentNullException(nameof(baseUrl));
            BaseUrl = new Uri(baseUrl.TrimEnd('/') + "/");
            this.options = options ?? new VdmClientOptions();
            this.transport = transport ?? new HttpClientTransport();
        }

        /// <summary>
        /// The client of <see cref="VdmSocket.Calls"/>: the same route
        /// methods, carried by the socket, which authenticates them.
        /// </summary>
        internal VdmClient(VdmClient parent, IVdmTransport socketTransport)
        {
            BaseUrl = parent.BaseUrl;
            options = parent.options;
            transport = socketTransport;
            overSocket = true;
        }

        /// <summary>
        /// Raised after the session changes (signed in, refreshed, signed
        /// out: null), on the thread of the call that changed it. Store it
        /// to resume the session on the next start with <see cref="RestoreSession"/>.
        /// </summary>
        public event Action<VdmSession> SessionChanged;

        /// <summary>The gateway's base URL.</summary>
        public Uri BaseUrl { get; }

        /// <summary>The settings.</summary>
        public VdmClientOptions Options { get { return options; } }

        /// <summary>
        /// The operator's admin token, for admin routes (content tools, tests).
        /// A game leaves it unset: it must never ship in a client build.
        /// </summary>
        public string AdminToken { get; set; }

        /// <summary>The current session, or null before sign-in.</summary>
        public VdmSession Session
        {
            get { lock (sessionLock) return session; }
        }

        /// <summary>Uses a stored session (it is refreshed when it has expired).</summary>
        public void RestoreSession(VdmSession stored)
        {
            SetSession(stored);
        }

        /// <summary>
        /// Signs in with a device id (Unity's SystemInfo.deviceUniqueIdentifier),
        /// creating the player on first use, and keeps the session.
        /// </summary>
        public async Task<VdmSession> AuthenticateDeviceAsync(string deviceId, CancellationToken cancellationToken = default(CancellationToken))
        {
            await SignInDeviceAsync(new DeviceSignIn { DeviceId = deviceId }, cancellationToken).ConfigureAwait(false);
            return Session;
        }

        /// <summary>
        /// Refreshes the session now (calls do it themselves when needed).
        /// Throws <see cref="VdmApiException"/> 401 when the refresh token no
        /// longer works: sign in again.
        /// </summary>
        public Task<VdmSession> RefreshSessionAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            var current = Session;
            if (current == null) throw new InvalidOperationException("no session to refresh: sign in first");
            return RefreshIfStillAsync(current.SessionToken, cancellationToken);
        }

        /// <summary>
        /// A session token that is valid for at least the refresh margin,
        /// refreshing first if needed (the socket connects with it).
        /// </summary>
        public async Task<string> GetSessionTokenAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            var current = Session;
            if (current == null) throw new InvalidOperationException("not signed in: call AuthenticateDeviceAsync first");
            if (NeedsRefresh(current))
            {
                current = await RefreshIfStillAsync(current.SessionToken, cancellationToken).ConfigureAwait(false);
            }
            return current.SessionToken;
        }

        /// <summary>Releases the transport.</summary>
        public void Dispose()
        {
            transport.Dispose();
        }

        /// <summary>A path segment of an id.</summary>
        protected static string Segment(long id)
        {
            return id.ToString(CultureInfo.InvariantCulture);
        }

        /// <summary>Sends a call whose success has no body.</summary>
        protected async Task SendAsync(VdmRequest request, CancellationToken cancellationToken)
        {
            await ExecuteAsync(request, cancellationToken).ConfigureAwait(false);
            if (request.OperationId == "signOut") SetSession(null);
        }

        /// <summary>Sends a call whose success is a text body (metrics, dashboard).</summary>
        protected async Task<string> SendTextAsync(VdmRequest request, CancellationToken cancellationToken)
        {
            var response = await ExecuteAsync(request, cancellationToken).ConfigureAwait(false);
            return Encoding.UTF8.GetString(response.Body);
        }

        /// <summary>Sends a call and reads its JSON answer as <typeparamref name="T"/>.</summary>
        protected async Task<T> SendAsync<T>(VdmRequest request, CancellationToken cancellationToken)
        {
            var response = await ExecuteAsync(request, cancellationToken).ConfigureAwait(false);
            var result = VdmJson.Deserialize<T>(Encoding.UTF8.GetString(response.Body));
            var pair = result as TokenPair;
            if (pair != null) SetSession(VdmSession.From(pair, DateTime.UtcNow));
            return result;
        }

        private async Task<VdmHttpResponse> ExecuteAsync(VdmRequest request, CancellationToken cancellationToken)
        {
            var body = request.Body == null ? null : Encoding.UTF8.GetBytes(VdmJson.Serialize(request.Body));
            var url = new Uri(BaseUrl, request.PathAndQuery().TrimStart('/'));
            var refreshedAfter401 = false;
            var maxAttempts = request.IsIdempotent ? Math.Max(1, options.MaxAttempts) : 1;
            for (var attempt = 1; ; attempt++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var sessionToken = request.Auth == VdmAuth.None || overSocket ? null : await CredentialAsync(request.Auth, cancellationToken).ConfigureAwait(false);
                var http = new VdmHttpRequest { Method = request.Method, Url = url, Body = body, Timeout = options.Timeout };
                http.Headers["Accept"] = "application/json";
                http.Headers["Accept-Encoding"] = "gzip";
                http.Headers["User-Agent"] = options.UserAgent;
                if (sessionToken != null) http.Headers["Authorization"] = "Bearer " + sessionToken;
                foreach (var header in request.Headers) http.Headers[header.Key] = header.Value;

                VdmHttpResponse response;
                try
                {
                    response = await transport.SendAsync(http, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (IsNetworkFailure(e, cancellationToken) && attempt < maxAttempts)
                {
                    await Task.Delay(Backoff(attempt), cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (response.Status == 401 && !refreshedAfter401 && UsedSession(request.Auth, sessionToken))
                {
                    // The token may have been revoked or the clocks disagree:
                    // one refresh, then the call again (not counted as an attempt).
                    refreshedAfter401 = true;
                    await RefreshIfStillAsync(sessionToken, cancellationToken).ConfigureAwait(false);
                    attempt--;
                    continue;
                }
                if (response.Status >= 200 && response.Status < 300) return response;

                var error = ErrorOf(response);
                if (Array.IndexOf(Retryable, response.Status) >= 0 && attempt < maxAttempts)
                {
                    var delay = error.RetryAfter.HasValue ? error.RetryAfter.Value + Jitter(TimeSpan.FromMilliseconds(250)) : Backoff(attempt);
                    if (delay <= options.MaxRetryAfter)
                    {
                        await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                        continue;
                    }
                }
                throw error;
            }
        }

        private bool UsedSession(VdmAuth auth, string token)
        {
            var current = Session;
            return token != null && current != null && (auth == VdmAuth.Session || auth == VdmAuth.SessionOrAdmin) && token != AdminToken;
        }

        private async Task<string> CredentialAsync(VdmAuth auth, CancellationToken cancellationToken)
        {
            var current = Session;
            if (auth == VdmAuth.Admin)
            {
                if (AdminToken == null) throw new InvalidOperationException("this route needs the admin token: set VdmClient.AdminToken");
                return AdminToken;
            }
            if (current == null)
            {
                if (auth == VdmAuth.SessionOrAdmin && AdminToken != null) return AdminToken;
                throw new InvalidOperationException("not signed in: call AuthenticateDeviceAsync first");
            }
            return await GetSessionTokenAsync(cancellationToken).ConfigureAwait(false);
        }

        private bool NeedsRefresh(VdmSession current)
        {
            return DateTime.UtcNow >= RefreshDueUtc(current);
        }

        /// <summary>When <paramref name="current"/> is due for a refresh (the socket reconnects with a fresh token then).</summary>
        internal DateTime RefreshDueUtc(VdmSession current)
        {
            var margin = options.RefreshMargin;
            if (current.IssuedAtUtc.HasValue)
            {
                // A server with short sessions (minutes) would otherwise
                // have every call refresh first.
                var half = TimeSpan.FromTicks((current.ExpiresAtUtc - current.IssuedAtUtc.Value).Ticks / 2);
                if (half < margin) margin = half;
            }
            return current.ExpiresAtUtc - margin;
        }

        /// <summary>
        /// Refreshes unless another call already replaced the token that
        /// <paramref name="staleToken"/> names: concurrent callers that saw
        /// the same expiring (or refused) token share one refresh.
        /// </summary>
        private async Task<VdmSession> RefreshIfStillAsync(string staleToken, CancellationToken cancellationToken)
        {
            await refreshing.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var current = Session;
                if (current == null) throw new InvalidOperationException("not signed in: call AuthenticateDeviceAsync first");
                if (current.SessionToken != staleToken) return current;
                await RefreshTokensAsync(new Refresh { RefreshToken = current.RefreshToken }, cancellationToken).ConfigureAwait(false);
                return Session;
            }
            finally
            {
                refreshing.Release();
            }
        }

        private void SetSession(VdmSession next)
        {
            lock (sessionLock) session = next;
            var changed = SessionChanged;
            if (changed != null) changed(next);
        }

        private static bool IsNetworkFailure(Exception e, CancellationToken cancellationToken)
        {
            if (cancellationToken.IsCancellationRequested) return false;
            return e is TimeoutException || e is System.Net.Http.HttpRequestException || e is System.Net.WebException
                   || e is System.IO.IOException || e is VdmSocketException;
        }

        /// <summary>
        /// Full jitter (AWS's "exponential backoff and jitter"): a random wait
        /// up to a ceiling that doubles per attempt, so clients refused
        /// together do not come back together.
        /// </summary>
        private TimeSpan Backoff(int attempt)
        {
            var ceiling = options.RetryBaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 20));
            ceiling = Math.Min(ceiling, options.RetryMaxDelay.TotalMilliseconds);
            return Jitter(TimeSpan.FromMilliseconds(ceiling));
        }

        private TimeSpan Jitter(TimeSpan ceiling)
        {
            double r;
            lock (random) r = random.NextDouble();
            return TimeSpan.FromMilliseconds(ceiling.TotalMilliseconds * r);
        }

        private static VdmApiException ErrorOf(VdmHttpResponse response)
        {
            string code = "http_" + response.Status, message = "", traceId = null;
            try
            {
                var error = JObject.Parse(Encoding.UTF8.GetString(response.Body))["error"] as JObject;
                if (error != null)
                {
                    code = (string)error["code"] ?? code;
                    message = (string)error["message"] ?? "";
                    traceId = (string)error["trace_id"];
                }
            }
            catch (Newtonsoft.Json.JsonException)
            {
                // Not an error body (a proxy's HTML page): the status speaks.
                message = Encoding.UTF8.GetString(response.Body);
            }
            return new VdmApiException(response.Status, code, message, ParseRetryAfter(response.Header("Retry-After")),
                response.Header("x-request-id"), traceId);
        }

        /// <summary>Retry-After as seconds or as an HTTP date (RFC 9110 allows both).</summary>
        internal static TimeSpan? ParseRetryAfter(string value)
        {
            if (string.IsNullOrEmpty(value)) return null;
            double seconds;
            if (double.TryParse(value.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out seconds))
            {
                return TimeSpan.FromSeconds(Math.Max(0, seconds));
            }
            DateTime at;
            if (DateTime.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out at))
            {
                var wait = at - DateTime.UtcNow;
                return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
            }
            return null;
        }
    }
}
