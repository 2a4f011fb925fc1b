using System;

namespace Vdm.Client
{
    /// <summary>
    /// An error answer of the server: its body <c>{"error": {"code", "message"}}</c>
    /// with the HTTP status and the headers that help handle or report it.
    /// </summary>
    public class VdmApiException : Exception
    {
        /// <summary>Creates the exception of one error answer.</summary>
        public VdmApiException(int status, string code, string message, TimeSpan? retryAfter, string requestId, string traceId)
            : base(string.Format("{0} {1}: {2}{3}", status, code, message, requestId == null ? "" : " (request " + requestId + ")"))
        {
            Status = status;
            Code = code;
            ServerMessage = message;
            RetryAfter = retryAfter;
            RequestId = requestId;
            TraceId = traceId;
        }

        /// <summary>The HTTP status (404, 400, 429, ...).</summary>
        public int Status { get; }

        /// <summary>The stable snake_case failure class (<c>not_found</c>, <c>invalid_argument</c>, ...); <c>http_&lt;status&gt;</c> when the body was not an error body.</summary>
        public string Code { get; }

        /// <summary>The server's human-readable explanation.</summary>
        public string ServerMessage { get; }

        /// <summary>How long the server asked to wait (<c>Retry-After</c>), when it did.</summary>
        public TimeSpan? RetryAfter { get; }

        /// <summary>The <c>x-request-id</c> of the answer: quote it when reporting a problem.</summary>
        public string RequestId { get; }

        /// <summary>The trace id the server logged the request under, when it traced it.</summary>
        public string TraceId { get; }
    }

    /// <summary>
    /// The server closed the socket with 4001: this SDK was generated from
    /// another contract than the server's. Update the SDK (or the server);
    /// reconnecting does not help, so the socket does not try.
    /// </summary>
    public class VdmContractException : Exception
    {
        /// <summary>Creates the exception with the server's close reason.</summary>
        public VdmContractException(string clientContract, string reason)
            : base("the server speaks another contract than this SDK (" + clientContract + "): " + reason
                   + "; regenerate the SDK with clients/unity/generator/generate.py or update the package")
        {
            ClientContract = clientContract;
            Reason = reason;
        }

        /// <summary>The contract this client announced.</summary>
        public string ClientContract { get; }

        /// <summary>The server's close reason (it names both contracts).</summary>
        public string Reason { get; }
    }

    /// <summary>
    /// The socket failed: it is not open, it closed while a request waited
    /// for its answer (the request may or may not have run), or it gave up
    /// reconnecting.
    /// </summary>
    public class VdmSocketException : Exception
    {
        /// <summary>Creates the exception.</summary>
        public VdmSocketException(string message, int? closeCode = null, Exception inner = null)
            : base(message, inner)
        {
            CloseCode = closeCode;
        }

        /// <summary>The WebSocket close code, when the server closed the socket.</summary>
        public int? CloseCode { get; }
    }
}
