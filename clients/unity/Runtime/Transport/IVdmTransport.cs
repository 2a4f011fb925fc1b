using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace Vdm.Client
{
    /// <summary>
    /// Sends one HTTP request and returns its answer, whatever the status.
    /// <see cref="VdmClient"/> does sessions, retries and errors on top, so a
    /// transport only moves bytes: <see cref="HttpClientTransport"/> outside
    /// Unity (and in editors and players that have HttpClient),
    /// <c>UnityWebRequestTransport</c> inside Unity (WebGL needs it).
    /// </summary>
    public interface IVdmTransport : IDisposable
    {
        /// <summary>
        /// Sends <paramref name="request"/>. Throws on a network failure or
        /// when <see cref="VdmHttpRequest.Timeout"/> passes (a
        /// <see cref="TimeoutException"/>), and an
        /// <see cref="OperationCanceledException"/> when cancelled.
        /// </summary>
        Task<VdmHttpResponse> SendAsync(VdmHttpRequest request, CancellationToken cancellationToken);
    }

    /// <summary>An HTTP request on its way to a transport.</summary>
    public sealed class VdmHttpRequest
    {
        /// <summary>GET, POST, ...</summary>
        public string Method { get; set; }

        /// <summary>The absolute URL.</summary>
        public Uri Url { get; set; }

        /// <summary>Request headers (content-type is set when there is a body).</summary>
        public IDictionary<string, string> Headers { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

        /// <summary>The body as UTF-8 JSON, or null.</summary>
        public byte[] Body { get; set; }

        /// <summary>How long this attempt may take.</summary>
        public TimeSpan Timeout { get; set; }
    }

    /// <summary>An HTTP answer, decompressed.</summary>
    public sealed class VdmHttpResponse
    {
        /// <summary>Creates an answer.</summary>
        public VdmHttpResponse(int status, IDictionary<string, string> headers, byte[] body)
        {
            Status = status;
            Headers = new Dictionary<string, string>(headers ?? new Dictionary<string, string>(), StringComparer.OrdinalIgnoreCase);
            Body = body ?? new byte[0];
        }

        /// <summary>The HTTP status.</summary>
        public int Status { get; }

        /// <summary>Response headers, names compared case-insensitively.</summary>
        public IDictionary<string, string> Headers { get; }

        /// <summary>The body, decompressed.</summary>
        public byte[] Body { get; }

        /// <summary>A header's value, or null.</summary>
        public string Header(string name)
        {
            string value;
            return Headers.TryGetValue(name, out value) ? value : null;
        }
    }
}
