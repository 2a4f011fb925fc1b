#if UNITY_5_3_OR_NEWER
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using UnityEngine.Networking;

namespace Vdm.Client
{
    /// <summary>
    /// A transport over <see cref="UnityWebRequest"/>: the one that works on
    /// every Unity platform, WebGL included (there HttpClient and sockets do
    /// not exist). UnityWebRequest may only be used on the main thread, so
    /// the transport is created there and posts each request to that
    /// thread's context, wherever the caller's continuation runs.
    /// </summary>
    public sealed class UnityWebRequestTransport : IVdmTransport
    {
        private readonly SynchronizationContext mainThread;

        /// <summary>Creates the transport; call it on Unity's main thread.</summary>
        public UnityWebRequestTransport()
        {
            mainThread = SynchronizationContext.Current;
            if (mainThread == null)
            {
                throw new InvalidOperationException("create UnityWebRequestTransport on Unity's main thread");
            }
        }

        /// <inheritdoc />
        public Task<VdmHttpResponse> SendAsync(VdmHttpRequest request, CancellationToken cancellationToken)
        {
            var done = new TaskCompletionSource<VdmHttpResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
            cancellationToken.ThrowIfCancellationRequested();
            mainThread.Post(_ => Start(request, cancellationToken, done), null);
            return done.Task;
        }

        private static void Start(VdmHttpRequest request, CancellationToken cancellationToken, TaskCompletionSource<VdmHttpResponse> done)
        {
            UnityWebRequest web;
            try
            {
                web = new UnityWebRequest(request.Url, request.Method);
                web.downloadHandler = new DownloadHandlerBuffer();
                if (request.Body != null)
                {
                    web.uploadHandler = new UploadHandlerRaw(request.Body);
                    web.SetRequestHeader("Content-Type", "application/json");
                }
                foreach (var header in request.Headers)
                {
                    // Unity sets Accept-Encoding itself (and decompresses)
                    // where the platform allows; WebGL forbids setting it.
                    if (string.Equals(header.Key, "Accept-Encoding", StringComparison.OrdinalIgnoreCase)) continue;
                    web.SetRequestHeader(header.Key, header.Value);
                }
                // UnityWebRequest counts whole seconds; 0 would mean none.
                web.timeout = Math.Max(1, (int)Math.Ceiling(request.Timeout.TotalSeconds));
            }
            catch (Exception e)
            {
                done.TrySetException(e);
                return;
            }
            var registration = cancellationToken.Register(() => web.Abort());
            var operation = web.SendWebRequest();
            operation.completed += _ =>
            {
                registration.Dispose();
                try
                {
                    if (cancellationToken.IsCancellationRequested)
                    {
                        done.TrySetCanceled();
                        return;
                    }
#if UNITY_2020_2_OR_NEWER
                    var failed = web.result == UnityWebRequest.Result.ConnectionError;
#else
                    var failed = web.isNetworkError;
#endif
                    if (failed)
                    {
                        if (web.error != null && web.error.IndexOf("timeout", StringComparison.OrdinalIgnoreCase) >= 0)
                        {
                            done.TrySetException(new TimeoutException(request.Method + " " + request.Url.AbsolutePath + ": " + web.error));
                        }
                        else
                        {
                            done.TrySetException(new System.Net.WebException(request.Method + " " + request.Url.AbsolutePath + ": " + web.error));
                        }
                        return;
                    }
                    var headers = web.GetResponseHeaders() ?? new Dictionary<string, string>();
                    done.TrySetResult(new VdmHttpResponse((int)web.responseCode, headers, web.downloadHandler.data));
                }
                catch (Exception e)
                {
                    done.TrySetException(e);
                }
                finally
                {
                    web.Dispose();
                }
            };
        }

        /// <inheritdoc />
        public void Dispose()
        {
        }
    }
}
#endif
