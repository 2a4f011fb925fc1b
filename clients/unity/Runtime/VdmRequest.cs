using System;
using System.Collections.Generic;
using System.Globalization;

namespace Vdm.Client
{
    /// <summary>Which credential a route takes.</summary>
    public enum VdmAuth
    {
        /// <summary>None: sign-in, refresh, health.</summary>
        None,
        /// <summary>A player's session token.</summary>
        Session,
        /// <summary>The operator's admin token.</summary>
        Admin,
        /// <summary>A player's session token, else the admin token.</summary>
        SessionOrAdmin,
    }

    /// <summary>
    /// One REST call as the generated route methods describe it to
    /// <see cref="VdmClient"/>: method, path, query, headers, body, and the
    /// credential it takes.
    /// </summary>
    public sealed class VdmRequest
    {
        private readonly List<KeyValuePair<string, string>> query = new List<KeyValuePair<string, string>>();
        private readonly Dictionary<string, string> headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

        /// <summary>Describes a call.</summary>
        public VdmRequest(string method, string path, string template, string operationId, VdmAuth auth)
        {
            Method = method;
            Path = path;
            Template = template;
            OperationId = operationId;
            Auth = auth;
        }

        /// <summary>GET, POST, PATCH, DELETE.</summary>
        public string Method { get; }

        /// <summary>The path with its parameters filled in.</summary>
        public string Path { get; }

        /// <summary>The route template (<c>/v1/quests/{id}</c>), for logs and metrics.</summary>
        public string Template { get; }

        /// <summary>The OpenAPI operation id.</summary>
        public string OperationId { get; }

        /// <summary>The credential the route takes.</summary>
        public VdmAuth Auth { get; }

        /// <summary>The JSON body, if any.</summary>
        public object Body { get; set; }

        /// <summary>Query parameters, in the order added.</summary>
        public IReadOnlyList<KeyValuePair<string, string>> Query { get { return query; } }

        /// <summary>Extra headers (Idempotency-Key).</summary>
        public IReadOnlyDictionary<string, string> Headers { get { return headers; } }

        /// <summary>
        /// Whether sending the request twice does no more than sending it
        /// once: GET, PUT and DELETE are, and so is a request with an
        /// Idempotency-Key (the server answers a repeat with the first answer).
        /// Only these are retried.
        /// </summary>
        public bool IsIdempotent
        {
            get
            {
                return Method == "GET" || Method == "PUT" || Method == "DELETE" || Method == "HEAD"
                       || headers.ContainsKey("Idempotency-Key");
            }
        }

        /// <summary>Adds a query parameter; a null value is left out.</summary>
        public void AddQuery(string name, object value)
        {
            if (value == null) return;
            query.Add(new KeyValuePair<string, string>(name, Format(value)));
        }

        /// <summary>Adds a header; a null value is left out.</summary>
        public void AddHeader(string name, string value)
        {
            if (value == null) return;
            headers[name] = value;
        }

        /// <summary>The path and query, escaped.</summary>
        public string PathAndQuery()
        {
            if (query.Count == 0) return Path;
            var parts = new List<string>(query.Count);
            foreach (var pair in query)
            {
                parts.Add(Uri.EscapeDataString(pair.Key) + "=" + Uri.EscapeDataString(pair.Value));
            }
            return Path + "?" + string.Join("&", parts);
        }

        internal static string Format(object value)
        {
            // Invariant culture: a game running in a German locale must not
            // send "0,5".
            var formattable = value as IFormattable;
            if (value is bool) return (bool)value ? "true" : "false";
            return formattable != null ? formattable.ToString(null, CultureInfo.InvariantCulture) : value.ToString();
        }
    }
}
