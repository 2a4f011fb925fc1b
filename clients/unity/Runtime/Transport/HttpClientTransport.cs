using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;

namespace Vdm.Client
{
    /// <summary>
    /// The default transport, over one shared <see cref="HttpClient"/>
    /// (connections are reused), asking for gzip and decompressing it.
    /// </summary>
    public sealed class HttpClientTransport : IVdmTransport
    {
        private readonly HttpClient http;
        private readonly bool owned;

        /// <summary>Creates a transport with its own HttpClient.</summary>
        public HttpClientTransport()
        {
            var handler = new HttpClientHandler
            {
                // The handler adds Accept-Encoding: gzip, deflate and
                // inflates the answer; bootstrap and list answers shrink
                // several times over.
                AutomaticDecompression = DecompressionMethods.GZip | DecompressionMethods.Deflate,
            };
            http = new HttpClient(handler);
            // Each attempt has its own deadline (VdmHttpRequest.Timeout);
            // HttpClient's single global one would cut retries short.
            http.Timeout = System.Threading.Timeout.InfiniteTimeSpan;
            owned = true;
        }

        /// <summary>Wraps an HttpClient the game already has (not disposed with the transport).</summary>
        public HttpClientTransport(HttpClient http)
        {
            this.http = http ?? throw new ArgumentNullException(nameof(http));
        }

        /// <inheritdoc />
        public async Task<VdmHttpResponse> SendAsync(VdmHttpRequest request, CancellationToken cancellationToken)
        {
            using (var message = new HttpRequestMessage(new HttpMethod(request.Method), request.Url))
            using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                foreach (var header in request.Headers)
                {
                    message.Headers.TryAddWithoutValidation(header.Key, header.Value);
                }
                if (request.Body != null)
                {
                    message.Content = new ByteArrayContent(request.Body);
                    message.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
                }
                deadline.CancelAfter(request.Timeout);
                try
                {
                    using (var response = await http.SendAsync(message, HttpCompletionOption.ResponseContentRead, deadline.Token).ConfigureAwait(false))
                    {
                        var body = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                        foreach (var h in response.Headers.Concat(response.Content.Headers))
                        {
                            headers[h.Key] = string.Join(",", h.Value);
                        }
                        return new VdmHttpResponse((int)response.StatusCode, headers, body);
                    }
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException(string.Format("{0} {1} took longer than {2} ms", request.Method, request.Url.AbsolutePath, (long)request.Timeout.TotalMilliseconds));
                }
            }
        }

        /// <inheritdoc />
        public void Dispose()
        {
            if (owned) http.Dispose();
        }
    }
}
