using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;

namespace Vdm.Client.Tests
{
    /// <summary>VdmClient against the real server: sessions, every route family, errors, retries.</summary>
    public class ClientTests
    {
        [LiveTest]
        public async Task SignInKeepsTheSessionAndRefreshReplacesIt()
        {
            var client = new VdmClient(Live.Url);
            var changes = new List<VdmSession>();
            client.SessionChanged += s => changes.Add(s);
            var session = await client.AuthenticateDeviceAsync("sdk-test-" + Guid.NewGuid().ToString("N"));
            Check.That(session != null && session.PlayerId > 0, "signed in with a player id");
            Check.That(session.ExpiresAtUtc > DateTime.UtcNow.AddMinutes(30), "session lasts the server's TTL");

            var refreshed = await client.RefreshSessionAsync();
            Check.That(refreshed.RefreshToken != session.RefreshToken, "a refresh brings a new refresh token");
            Check.Equal(session.PlayerId, refreshed.PlayerId, "same player after refresh");
            Check.Equal(2, changes.Count, "SessionChanged raised for sign-in and refresh");
            var time = await client.GetWorldTimeAsync();
            Check.That(time.Rate > 0, "the refreshed session works");

            // The spent refresh token no longer works: the server revokes
            // the session it belongs to when it is replayed.
            var stale = new VdmClient(Live.Url);
            var error = await Check.Throws<VdmApiException>(() => stale.RefreshTokensAsync(new Refresh { RefreshToken = session.RefreshToken }), "reusing a spent refresh token");
            Check.Equal(401, error.Status, "spent refresh token status");
        }

        [LiveTest]
        public async Task ASessionAboutToExpireIsRefreshedBeforeTheCall()
        {
            var client = await Live.PlayerAsync();
            var s = client.Session;
            // Pretend the token expires in 5 s: within the 60 s margin.
            client.RestoreSession(new VdmSession(s.PlayerId, s.SessionToken, DateTime.UtcNow.AddSeconds(5), s.RefreshToken, s.RefreshExpiresAtUtc));
            await client.ListFactionsAsync();
            Check.That(client.Session.SessionToken != s.SessionToken, "the call refreshed the session first");
            Check.That(client.Session.ExpiresAtUtc > DateTime.UtcNow.AddMinutes(30), "the new session is fresh");
        }

        [LiveTest]
        public async Task AShortSessionIsNotRefreshedOnEveryCall()
        {
            var client = await Live.PlayerAsync();
            var s = client.Session;
            // A 20 s session (a server with short sessions): 20 s left is
            // more than half its life, so no refresh yet, though within the
            // 60 s margin.
            var now = DateTime.UtcNow;
            client.RestoreSession(new VdmSession(s.PlayerId, s.SessionToken, now.AddSeconds(20), s.RefreshToken, s.RefreshExpiresAtUtc, now));
            await client.ListFactionsAsync();
            Check.Equal(s.SessionToken, client.Session.SessionToken, "the session was kept");
        }

        [LiveTest]
        public async Task A401RefreshesOnceAndRetries()
        {
            var client = await Live.PlayerAsync();
            var s = client.Session;
            // A session token the server refuses (as after a key rotation),
            // with a valid refresh token and an expiry far off.
            client.RestoreSession(new VdmSession(s.PlayerId, "not-a-token", DateTime.UtcNow.AddHours(1), s.RefreshToken, s.RefreshExpiresAtUtc));
            var regions = await client.ListRegionsAsync();
            Check.That(regions.Items.Count >= 4, "the call succeeded after the refresh");
            Check.That(client.Session.SessionToken != "not-a-token", "the session was replaced");

            // When the refresh fails too, the 401 reaches the caller.
            client.RestoreSession(new VdmSession(s.PlayerId, "not-a-token", DateTime.UtcNow.AddHours(1), "not-a-refresh-token", s.RefreshExpiresAtUtc));
            var error = await Check.Throws<VdmApiException>(() => client.ListRegionsAsync(), "a dead session");
            Check.Equal(401, error.Status, "dead session status");
        }

        [LiveTest]
        public async Task WorldRoutes()
        {
            var client = await Live.PlayerAsync();
            var admin = Live.Admin();
            var regions = await client.ListRegionsAsync();
            Check.That(regions.Items.Count >= 4 && regions.Items[0].Cells.Count > 0, "regions with cells");
            var region = await client.GetRegionAsync(2);
            Check.Equal(2L, region.Id, "region id");
            var factions = await client.ListFactionsAsync();
            Check.That(factions.Items.Count > 0 && factions.Relations.All(r => r.Score >= -100 && r.Score <= 100), "factions and relations");
            var time = await client.GetWorldTimeAsync();
            Check.That(time.GameTimeMs > 0, "world time");
            var published = await admin.PublishWorldEventAsync(new NewEvent { Kind = "storm", Text = "A storm rolls in", RegionIds = new List<long> { 3 } }, "sdk-" + Guid.NewGuid().ToString("N"));
            var events = await client.ListWorldEventsAsync(regionId: 3, limit: 100);
            Check.That(events.Items.Any(e => e.Id == published.Id && e.Text == "A storm rolls in"), "the published event is listed");
            Check.That(!string.IsNullOrEmpty(published.At), "dates stay RFC 3339 strings: " + published.At);
        }

        [LiveTest]
        public async Task QuestRoutes()
        {
            var client = await Live.PlayerAsync();
            var admin = Live.Admin();
            var offered = await client.ListQuestsAsync(regionId: 1, limit: 5);
            Check.That(offered.Items.Count > 0, "region 1 offers quests");
            var quest = await Live.NewQuestAsync(admin, target: 3);
            Check.Equal(quest.Title, (await client.GetQuestAsync(quest.Id)).Title, "quest read back");
            var batch = await client.BatchGetQuestsAsync(new QuestBatchGetBody { Ids = new List<long> { quest.Id, offered.Items[0].Id } });
            Check.Equal(2, batch.Items.Count, "batch get");
            var patched = await admin.UpdateQuestAsync(quest.Id, new QuestPatch { Title = "SDK test, renamed" });
            Check.Equal("SDK test, renamed", patched.Title, "patched title");

            var accepted = await client.AcceptQuestAsync(quest.Id);
            Check.Equal(QuestStatus.Active, accepted.Status, "accepted quest status");
            var objective = quest.Objectives[0].Id;
            var progressed = await client.AdvanceObjectiveAsync(quest.Id, new ProgressBody { ObjectiveId = objective, Amount = 1 });
            Check.Equal(1, progressed.Objectives[0].ProgressValue, "progress after one step");
            var log = await client.ListMyQuestsAsync(status: QuestStatus.Active);
            Check.That(log.Items.Any(q => q.QuestId == quest.Id), "the quest log lists it");
            var abandoned = await client.AbandonQuestAsync(quest.Id);
            Check.Equal(QuestStatus.Abandoned, abandoned.Status, "abandoned");

            var again = await client.AcceptQuestAsync(quest.Id);
            Check.Equal(QuestStatus.Active, again.Status, "an abandoned quest can be accepted again");
            var done = await client.AdvanceObjectiveAsync(quest.Id, new ProgressBody { ObjectiveId = objective, Amount = 3 });
            Check.Equal(QuestStatus.Completed, done.Status, "completed when every objective is done");

            var doomed = await Live.NewQuestAsync(admin);
            await admin.DeleteQuestAsync(doomed.Id);
            var gone = await Check.Throws<VdmApiException>(() => client.GetQuestAsync(doomed.Id), "a deleted quest");
            Check.Equal(404, gone.Status, "deleted quest status");
        }

        [LiveTest]
        public async Task ProfileRoutes()
        {
            var client = await Live.PlayerAsync();
            var me = await client.GetMeAsync();
            Check.Equal(client.Session.PlayerId, me.PlayerId, "the caller's profile");
            Check.Equal(1, me.Level, "a new player is level 1");
            Check.Equal(0L, me.Gold, "a new player has no gold");
            Check.That(me.NextLevelXp > 0, "xp for the next level");
            var name = "Sdk " + Guid.NewGuid().ToString("N").Substring(0, 12);
            var renamed = await client.UpdateMeAsync(new ProfilePatch { DisplayName = name });
            Check.Equal(name, renamed.DisplayName, "renamed");
            var other = await Live.PlayerAsync();
            var taken = await Check.Throws<VdmApiException>(() => other.UpdateMeAsync(new ProfilePatch { DisplayName = name.ToUpperInvariant() }), "a taken name");
            Check.Equal(409, taken.Status, "taken name status");
            var inventory = await client.GetMyInventoryAsync();
            Check.Equal(0, inventory.Stacks.Count, "a new player holds nothing");
        }

        [LiveTest]
        public async Task NpcAndRumorRoutes()
        {
            var client = await Live.PlayerAsync();
            var admin = Live.Admin();
            var npcs = await client.ListNpcsAsync(regionId: 1, limit: 10);
            Check.That(npcs.Items.Count > 2, "region 1 has NPCs");
            var npc = await client.GetNpcAsync(npcs.Items[0].Id);
            Check.Equal(npcs.Items[0].Name, npc.Name, "NPC read back");
            var batch = await client.BatchGetNpcsAsync(new NpcBatchGetBody { Ids = npcs.Items.Select(n => n.Id).ToList() });
            Check.Equal(npcs.Items.Count, batch.Items.Count, "batch get NPCs");
            var disposition = await client.GetMyDispositionAsync(npc.Id);
            Check.Equal(0, disposition.Score, "a new player is neutral");

            var created = await admin.CreateNpcAsync(new NewNpc { Name = "SDK Tester", RegionId = 1, Traits = new Traits { Honesty = 0.9 } }, "sdk-" + Guid.NewGuid().ToString("N"));
            var memory = await admin.RecordNpcMemoryAsync(created.Id, new NewMemory { Kind = "saw", Text = "a stranger with a laptop", Importance = 0.5 });
            var memories = await client.ListNpcMemoriesAsync(created.Id);
            Check.That(memories.Items.Any(m => m.Id == memory.Memory.Id), "the memory is listed");

            var rumor = await admin.CreateRumorAsync(new NewRumor { Text = "The miller hides gold", OriginNpcId = created.Id, RegionId = 1, Truth = 0.4 }, "sdk-" + Guid.NewGuid().ToString("N"));
            Check.Equal(rumor.Text, (await client.GetRumorAsync(rumor.Id)).Text, "rumor read back");
            var spread = await admin.SpreadRumorAsync(rumor.Id, new Spread { FromNpcId = created.Id, ToNpcId = npcs.Items[0].Id, Seed = 7 });
            Check.That(spread.RumorId == rumor.Id, "spread answers the listener's variant");
            var known = await client.ListNpcRumorsAsync(npcs.Items[0].Id);
            Check.That(known.Items.Any(k => k.RumorId == rumor.Id), "the listener knows it");
            var tick = await admin.TickRumorsAsync(new Tick { RegionId = 1, Seed = 1 });
            Check.Equal(1L, tick.RegionId, "tick region");
            var talk = await client.TalkToNpcAsync(created.Id);
            Check.That(talk.Told && talk.Rumor != null, "the NPC tells its rumor");
            var heard = await client.ListMyRumorsAsync(regionId: 1);
            Check.That(heard.Items.Any(k => k.RumorId == rumor.Id), "the player heard it");
        }

        [LiveTest]
        public async Task BootstrapTelemetryAndStats()
        {
            var client = await Live.PlayerAsync();
            var boot = await client.BootstrapAsync(1);
            Check.That(boot.Region != null && boot.Region.Id == 1, "bootstrap carries the region");
            Check.That(boot.Time != null && boot.Npcs.Count > 0 && boot.Quests.Count > 0, "bootstrap carries time, NPCs and quests");
            Check.Equal(0, boot.Missing.Count, "nothing missing (a list the server leaves out reads as empty)");

            var version = "sdk-" + Guid.NewGuid().ToString("N").Substring(0, 8);
            var batch = new ClientBatch { ClientVersion = version, DeviceClass = "desktop", Samples = new List<ClientSample>() };
            for (var i = 0; i < 20; i++)
            {
                batch.Samples.Add(new ClientSample { FrameTimeMs = 10 + i, GcPauseMs = 0.5, GcAllocBytes = 1024 * i, Systems = new Dictionary<string, double> { { "ai", 1.5 } } });
            }
            var accepted = await client.UploadClientTelemetryAsync(batch);
            Check.Equal(20, accepted.AcceptedValue, "samples accepted");
            var stats = await client.GetClientStatsAsync(clientVersion: version);
            Check.Equal(20L, stats.Count, "client stats count the batch");
            Check.That(stats.P50 >= 10 && stats.P99 <= 29, "percentiles within the samples");
            var alloc = await client.GetClientStatsAsync(clientVersion: version, metric: "gc_alloc_bytes");
            Check.Equal(20L, alloc.Count, "allocation stats count the batch");
            Check.That(alloc.P99 <= 19 * 1024, "allocation percentiles within the samples");

            var admin = Live.Admin();
            var backend = await admin.GetStatsAsync();
            Check.That(backend.IntervalMs > 0, "admin stats");
            var budgets = await admin.GetBudgetsAsync();
            Check.That(budgets.BudgetsValue.Count > 0, "budgets");
            var health = await client.HealthAsync();
            Check.Equal("ok", health.Status, "health");
        }

        [LiveTest]
        public async Task ErrorsAreTyped()
        {
            var client = await Live.PlayerAsync();
            var missing = await Check.Throws<VdmApiException>(() => client.GetQuestAsync(987654321), "an unknown quest");
            Check.Equal(404, missing.Status, "status");
            Check.Equal("not_found", missing.Code, "code");
            Check.That(!string.IsNullOrEmpty(missing.ServerMessage), "message");
            Check.That(!string.IsNullOrEmpty(missing.RequestId), "x-request-id is kept");

            var bad = await Check.Throws<VdmApiException>(() => client.ListWorldEventsAsync(since: "yesterday-ish"), "a bad since");
            Check.Equal(400, bad.Status, "status");
            Check.Equal("invalid_argument", bad.Code, "code");
            Check.That(bad.ServerMessage.Contains("since"), "the message names the parameter: " + bad.ServerMessage);

            var forbidden = await Check.Throws<VdmApiException>(() => new VdmClient(Live.Url) { AdminToken = client.Session.SessionToken }.GetStatsAsync(), "a player on an admin route");
            Check.That(forbidden.Status == 401 || forbidden.Status == 403, "admin route refuses a player: " + forbidden.Status);
        }

        [LiveTest]
        public async Task ArgumentsAreCheckedBeforeSending()
        {
            var counting = new CountingTransport(new HttpClientTransport());
            var client = new VdmClient(Live.Url, null, counting);
            var empty = await Check.Throws<ArgumentException>(() => client.SignInDeviceAsync(new DeviceSignIn { DeviceId = "" }), "an empty device id");
            Check.Equal("device_id", empty.ParamName, "the field is named");
            var tooLong = await Check.Throws<ArgumentException>(() => client.SignInDeviceAsync(new DeviceSignIn { DeviceId = new string('x', 129) }), "a 129-character device id");
            Check.Equal("device_id", tooLong.ParamName, "the field is named");
            var range = await Check.Throws<ArgumentOutOfRangeException>(() => client.GetQuestAsync(0), "id 0");
            Check.Equal("id", range.ParamName, "the parameter is named");
            var nested = await Check.Throws<ArgumentException>(() => client.UploadClientTelemetryAsync(new ClientBatch { ClientVersion = "1", DeviceClass = "x", Samples = new List<ClientSample>() }), "no samples");
            Check.Equal("samples", nested.ParamName, "the field is named");
            var trait = new NewNpc { Name = "x", RegionId = 1, Traits = new Traits { Honesty = 2 } };
            var deep = await Check.Throws<ArgumentException>(() => new VdmClient(Live.Url, null, counting) { AdminToken = "x" }.CreateNpcAsync(trait), "honesty 2");
            Check.Equal("traits.honesty", deep.ParamName, "the nested field is named");
            Check.Equal(0, counting.Calls, "nothing was sent");
        }

        [LiveTest]
        public async Task ReadsAreRetriedAfter429HonouringRetryAfter()
        {
            // The limited server allows 2 reads a second per player (burst 2).
            var counting = new CountingTransport(new HttpClientTransport());
            var client = await Live.PlayerAsync(Live.LimitedUrl, new VdmClientOptions { MaxAttempts = 5 }, counting);
            var before = counting.Calls;
            var watch = System.Diagnostics.Stopwatch.StartNew();
            for (var i = 0; i < 5; i++)
            {
                await client.GetWorldTimeAsync();
            }
            Check.That(counting.Statuses.Contains(429), "the server answered 429 at least once");
            Check.That(counting.Calls - before > 5, "429s were retried: " + (counting.Calls - before) + " attempts for 5 calls");
            Check.That(watch.Elapsed >= TimeSpan.FromSeconds(0.9), "Retry-After was waited for: " + watch.ElapsedMilliseconds + " ms");
        }

        [LiveTest]
        public async Task WritesWithoutIdempotencyKeyAreNotRetried()
        {
            var counting = new CountingTransport(new HttpClientTransport());
            var client = await Live.PlayerAsync(Live.LimitedUrl, null, counting);
            // One write a second (burst 1): the second at once is refused.
            await client.TalkToNpcAsync(1);
            var before = counting.Calls;
            var refused = await Check.Throws<VdmApiException>(() => client.TalkToNpcAsync(2), "a write over the limit");
            Check.Equal(429, refused.Status, "status");
            Check.Equal("resource_exhausted", refused.Code, "code");
            Check.That(refused.RetryAfter.HasValue, "Retry-After is parsed");
            Check.Equal(1, counting.Calls - before, "a POST without Idempotency-Key is sent once");
        }

        [LiveTest]
        public async Task RetriedAfter503WithRetryAfter()
        {
            var flaky = new UnavailableFirst(new HttpClientTransport(), failures: 2);
            var client = await Live.PlayerAsync(Live.Url, null, flaky);
            flaky.Arm();
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var time = await client.GetWorldTimeAsync();
            Check.That(time.Rate > 0, "the third attempt succeeded");
            Check.Equal(3, flaky.Calls, "two 503s then the real answer");
            Check.That(watch.Elapsed >= TimeSpan.FromSeconds(2), "waited Retry-After (1 s) twice: " + watch.ElapsedMilliseconds + " ms");

            flaky.Arm();
            var error = await Check.Throws<VdmApiException>(() => client.AcceptQuestAsync(1), "a POST answered 503");
            Check.Equal(503, error.Status, "status");
            Check.Equal(TimeSpan.FromSeconds(1), error.RetryAfter, "Retry-After");
            Check.Equal(1, flaky.Calls, "not retried without an Idempotency-Key");

            flaky.Arm();
            var quest = await Live.NewQuestAsync(new VdmClient(Live.Url, null, flaky) { AdminToken = Live.AdminToken });
            Check.That(quest.Id > 0 && flaky.Calls == 3, "a create with an Idempotency-Key is retried: " + flaky.Calls);
        }

        [LiveTest]
        public async Task CancellationAndTimeout()
        {
            var client = await Live.PlayerAsync();
            client.Options.Timeout = TimeSpan.FromMilliseconds(1);
            client.Options.MaxAttempts = 1;
            await Check.Throws<TimeoutException>(() => client.BootstrapAsync(1), "a 1 ms deadline");
            var cancelled = new CancellationTokenSource();
            cancelled.Cancel();
            await Check.Throws<OperationCanceledException>(() => client.GetWorldTimeAsync(cancelled.Token), "a cancelled call");
        }

        [LiveTest]
        public async Task AnswersComeGzipped()
        {
            // A transport that does not decompress sees what the server sent
            // for the SDK's own headers.
            var probe = new GzipProbe();
            var client = await Live.PlayerAsync(Live.Url, null, probe);
            var document = await client.GetOpenApiAsync();
            Check.That(document["paths"] != null, "the document parsed after inflating");
            Check.That(probe.Asked.Contains("gzip"), "the SDK asks for gzip: " + probe.Asked);
            Check.Equal("gzip", probe.LastEncoding, "the server answered gzip");
            // And the default transport inflates it by itself.
            var plain = await Live.PlayerAsync();
            Check.That((await plain.GetOpenApiAsync())["x-vdm-pushes"] != null, "the default transport reads the gzipped document");
        }

        [LiveTest]
        public async Task SignOutEndsTheSession()
        {
            var client = await Live.PlayerAsync();
            var token = client.Session.SessionToken;
            await client.SignOutAsync();
            Check.That(client.Session == null, "the session is dropped");
            var after = new VdmClient(Live.Url);
            after.RestoreSession(new VdmSession(1, token, DateTime.UtcNow.AddHours(1), "spent", DateTime.UtcNow.AddDays(1)));
            var error = await Check.Throws<VdmApiException>(() => after.GetWorldTimeAsync(), "a signed-out token");
            Check.Equal(401, error.Status, "status");
        }
    }

    /// <summary>Counts the attempts that reach the real transport and the statuses they got.</summary>
    public sealed class CountingTransport : IVdmTransport
    {
        private readonly IVdmTransport inner;
        private int calls;

        public CountingTransport(IVdmTransport inner)
        {
            this.inner = inner;
        }

        public int Calls { get { return calls; } }

        public List<int> Statuses { get; } = new List<int>();

        public async Task<VdmHttpResponse> SendAsync(VdmHttpRequest request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref calls);
            var response = await inner.SendAsync(request, cancellationToken);
            lock (Statuses) Statuses.Add(response.Status);
            return response;
        }

        public void Dispose()
        {
            inner.Dispose();
        }
    }

    /// <summary>Sends over an HttpClient that does not decompress, records the encoding, then inflates.</summary>
    public sealed class GzipProbe : IVdmTransport
    {
        private readonly HttpClientTransport inner = new HttpClientTransport(new System.Net.Http.HttpClient(new System.Net.Http.HttpClientHandler { AutomaticDecompression = System.Net.DecompressionMethods.None }));

        public string Asked { get; private set; } = "";

        public string LastEncoding { get; private set; }

        public async Task<VdmHttpResponse> SendAsync(VdmHttpRequest request, CancellationToken cancellationToken)
        {
            string asked;
            Asked = request.Headers.TryGetValue("Accept-Encoding", out asked) ? asked : "";
            var response = await inner.SendAsync(request, cancellationToken);
            LastEncoding = response.Header("Content-Encoding");
            if (LastEncoding != "gzip") return response;
            using (var zipped = new System.IO.Compression.GZipStream(new System.IO.MemoryStream(response.Body), System.IO.Compression.CompressionMode.Decompress))
            using (var plain = new System.IO.MemoryStream())
            {
                zipped.CopyTo(plain);
                return new VdmHttpResponse(response.Status, response.Headers, plain.ToArray());
            }
        }

        public void Dispose()
        {
            inner.Dispose();
        }
    }

    /// <summary>
    /// Answers the first N attempts after <see cref="Arm"/> with 503 and
    /// Retry-After: 1, as the gateway does while a service is down, then
    /// passes to the real server. (Taking a service of `vdm all` down on
    /// cue is not possible from outside the process.)
    /// </summary>
    public sealed class UnavailableFirst : IVdmTransport
    {
        private readonly IVdmTransport inner;
        private readonly int failures;
        private int left;

        public UnavailableFirst(IVdmTransport inner, int failures)
        {
            this.inner = inner;
            this.failures = failures;
        }

        public int Calls { get; private set; }

        public void Arm()
        {
            left = failures;
            Calls = 0;
        }

        public Task<VdmHttpResponse> SendAsync(VdmHttpRequest request, CancellationToken cancellationToken)
        {
            Calls++;
            if (left > 0)
            {
                left--;
                var headers = new Dictionary<string, string> { { "Retry-After", "1" }, { "x-request-id", "fake-503" } };
                var body = System.Text.Encoding.UTF8.GetBytes("{\"error\":{\"code\":\"unavailable\",\"message\":\"the quest service is unavailable\"}}");
                return Task.FromResult(new VdmHttpResponse(503, headers, body));
            }
            return inner.SendAsync(request, cancellationToken);
        }

        public void Dispose()
        {
            inner.Dispose();
        }
    }
}
