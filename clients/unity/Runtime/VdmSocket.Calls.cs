using System;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Vdm.Client
{
    // The transport behind VdmSocket.Calls: route methods carried by the socket.
    public partial class VdmSocket
    {
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

    }
}
