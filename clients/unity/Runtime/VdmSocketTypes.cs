using System;
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
}
