using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;

namespace Vdm.Client.Tests
{
    /// <summary>VdmSocket against the real server: requests, typed pushes, resume, the contract check.</summary>
    public class SocketTests
    {
        [LiveTest]
        public async Task WelcomeCarriesTheGeneratedContract()
        {
            var client = await Live.PlayerAsync();
            var socket = new VdmSocket(client);
            var welcome = await socket.ConnectAsync();
            Check.Equal(VdmContract.Version, welcome.Contract, "the server's contract is the generated one");
            Check.Equal(client.Session.PlayerId, welcome.PlayerId, "player");
            Check.That(!welcome.Resumed && welcome.HeartbeatMs > 0 && !string.IsNullOrEmpty(welcome.ResumeToken), "a new session");
            await socket.CloseAsync();
        }

        [LiveTest]
        public async Task RequestsAreAnsweredById()
        {
            var client = await Live.PlayerAsync();
            var socket = new VdmSocket(client);
            await socket.ConnectAsync();
            var quest = await socket.SendAsync<Quest>("GET", "/v1/quests/1");
            Check.Equal(1L, quest.Id, "typed answer");
            // Independent reads may be answered in any order: each answer
            // reaches the request with its id.
            var reads = Enumerable.Range(1, 4).Select(id => socket.SendAsync<Npc>("GET", "/v1/npcs/" + id)).ToList();
            var npcs = await Task.WhenAll(reads);
            for (var i = 0; i < npcs.Length; i++) Check.Equal((long)(i + 1), npcs[i].Id, "answer " + i + " matches its request");
            var missing = await Check.Throws<VdmApiException>(() => socket.SendAsync<Quest>("GET", "/v1/quests/987654321"), "an unknown quest");
            Check.Equal(404, missing.Status, "status over the socket");
            Check.Equal("not_found", missing.Code, "code over the socket");
            var raw = await socket.SendAsync("POST", "/v1/world/events", new NewEvent { Kind = "x", Text = "y", RegionIds = new List<long> { 1 } });
            Check.That(raw.Status == 401 || raw.Status == 403, "a player cannot publish: " + raw.Status);
            await socket.CloseAsync();
        }

        [LiveTest]
        public async Task TypedRouteMethodsGoOverTheSocket()
        {
            var counting = new CountingTransport(new HttpClientTransport());
            var client = await Live.PlayerAsync(Live.Url, null, counting);
            var quest = await Live.NewQuestAsync(Live.Admin(), target: 4);
            var socket = new VdmSocket(client);
            var pushes = new ConcurrentQueue<PlayerQuest>();
            socket.QuestUpdated += q => pushes.Enqueue(q);
            await socket.ConnectAsync();
            var http = counting.Calls;

            var accepted = await socket.Calls.AcceptQuestAsync(quest.Id);
            Check.Equal(QuestStatus.Active, accepted.Status, "accepted over the socket");
            var progressed = await socket.Calls.AdvanceObjectiveAsync(quest.Id, new ProgressBody { ObjectiveId = quest.Objectives[0].Id, Amount = 2 });
            Check.Equal(2, progressed.Objectives[0].ProgressValue, "progress over the socket");
            var log = await socket.Calls.ListMyQuestsAsync(status: QuestStatus.Active, limit: 50);
            Check.That(log.Items.Any(q => q.QuestId == quest.Id), "a query string over the socket");
            var missing = await Check.Throws<VdmApiException>(() => socket.Calls.GetQuestAsync(987654321), "an unknown quest over the socket");
            Check.Equal("not_found", missing.Code, "typed error over the socket");
            await Check.Throws<ArgumentOutOfRangeException>(() => socket.Calls.GetQuestAsync(-1), "arguments are checked");
            await Check.Throws<NotSupportedException>(() => socket.Calls.PublishWorldEventAsync(new NewEvent { Kind = "k", Text = "t", RegionIds = new List<long> { 1 } }, "key-1"), "an Idempotency-Key cannot travel on the socket");
            Check.Equal(http, counting.Calls, "no HTTP request was made");
            await Check.Eventually(() => pushes.Count(q => q.QuestId == quest.Id) == 2, "the accept's and the progress's pushes");
            await socket.CloseAsync();
        }

        [LiveTest]
        public async Task PushesArriveAsTypedEvents()
        {
            var client = await Live.PlayerAsync();
            var admin = Live.Admin();
            var socket = new VdmSocket(client);
            var quests = new ConcurrentQueue<PlayerQuest>();
            var events = new ConcurrentQueue<Event>();
            var moves = new ConcurrentQueue<NpcMoved>();
            var heard = new ConcurrentQueue<RumorHeard>();
            socket.QuestUpdated += q => quests.Enqueue(q);
            socket.WorldEvent += e => events.Enqueue(e);
            socket.NpcMoved += m => moves.Enqueue(m);
            socket.RumorHeard += r => heard.Enqueue(r);
            await socket.ConnectAsync();
            await socket.SubscribeAsync(new long[] { 2 });

            var quest = await Live.NewQuestAsync(admin);
            // Each request waits for its answer before the next is sent:
            // the progress depends on the accept.
            await socket.SendAsync<PlayerQuest>("POST", "/v1/quests/" + quest.Id + "/accept");
            await socket.SendAsync<PlayerQuest>("POST", "/v1/me/quests/" + quest.Id + "/progress", new ProgressBody { ObjectiveId = quest.Objectives[0].Id, Amount = 2 });
            await Check.Eventually(() => quests.Count(q => q.QuestId == quest.Id) >= 2, "quest.updated for the accept and the progress");
            var last = quests.Last(q => q.QuestId == quest.Id);
            Check.Equal(2, last.Objectives[0].ProgressValue, "the push carries the progress");

            var published = await admin.PublishWorldEventAsync(new NewEvent { Kind = "festival", Text = "Lanterns on the lake", RegionIds = new List<long> { 2 } });
            await Check.Eventually(() => events.Any(e => e.Id == published.Id), "world.event for a subscribed region");
            Check.Equal("Lanterns on the lake", events.First(e => e.Id == published.Id).Text, "typed world event");

            await admin.MoveNpcAsync(8, new Move { Q = 5, R = -3 });
            await Check.Eventually(() => moves.Any(m => m.NpcId == 8 && m.Q == 5 && m.R == -3), "npc.moved in a subscribed region");

            var npc = await admin.CreateNpcAsync(new NewNpc { Name = "Gossip", RegionId = 2 });
            await admin.CreateRumorAsync(new NewRumor { Text = "The bridge is cursed", OriginNpcId = npc.Id, RegionId = 2, Truth = 0.2 });
            await client.TalkToNpcAsync(npc.Id);
            await Check.Eventually(() => heard.Any(r => r.NpcId == npc.Id), "rumor.heard when an NPC tells the player");

            var spreads = new ConcurrentQueue<RumorSpread>();
            socket.RumorSpread += r => spreads.Enqueue(r);
            var tick = await admin.TickRumorsAsync(new Tick { RegionId = 2, Seed = 3, MaxTellings = 50 });
            Check.That(tick.Tellings > 0, "the tick retold something: " + tick.Tellings);
            await Check.Eventually(() => spreads.Any(r => r.RegionId == 2 && r.Tellings == tick.Tellings), "rumor.spread for a subscribed region");

            Check.That(socket.LastSeq >= 6, "pushes are numbered: " + socket.LastSeq);
            await socket.CloseAsync();
        }

        [LiveTest]
        public async Task ResumeDeliversEveryMissedPushOnce()
        {
            var client = await Live.PlayerAsync();
            var admin = Live.Admin();
            // A long first backoff: the pushes below happen while the socket is away.
            var socket = new VdmSocket(client, new VdmSocketOptions { ReconnectBaseDelay = TimeSpan.FromSeconds(4) });
            var seqs = new ConcurrentQueue<long>();
            var progress = new ConcurrentQueue<int>();
            var welcomes = new ConcurrentQueue<VdmWelcome>();
            var reconnecting = 0;
            socket.Connected += w => welcomes.Enqueue(w);
            socket.Reconnecting += (attempt, delay) => System.Threading.Interlocked.Increment(ref reconnecting);
            var quest = await Live.NewQuestAsync(admin, target: 10);
            socket.QuestUpdated += q =>
            {
                if (q.QuestId != quest.Id) return;
                seqs.Enqueue(socket.LastSeq);
                progress.Enqueue(q.Objectives[0].ProgressValue);
            };
            await socket.ConnectAsync();
            await client.AcceptQuestAsync(quest.Id);
            await Check.Eventually(() => progress.Count == 1, "the accept's push");

            socket.AbortConnection();
            await Check.Eventually(() => reconnecting > 0, "the socket noticed the drop");
            Check.That(!socket.IsConnected, "away");
            for (var i = 0; i < 3; i++)
            {
                await client.AdvanceObjectiveAsync(quest.Id, new ProgressBody { ObjectiveId = quest.Objectives[0].Id, Amount = 1 });
            }
            Check.Equal(1, progress.Count, "no push while away");
            await Check.Eventually(() => welcomes.Count == 2, "reconnected", 15);
            Check.That(welcomes.Last().Resumed, "the session was resumed");
            await Check.Eventually(() => progress.Count >= 4, "the missed pushes replayed");
            await client.AdvanceObjectiveAsync(quest.Id, new ProgressBody { ObjectiveId = quest.Objectives[0].Id, Amount = 1 });
            await Check.Eventually(() => progress.Count >= 5, "live pushes after the replay");
            await Task.Delay(300);
            Check.Equal("0,1,2,3,4", string.Join(",", progress), "each push once, in order");
            var ordered = seqs.ToList();
            Check.That(ordered.Distinct().Count() == ordered.Count && ordered.SequenceEqual(ordered.OrderBy(s => s)), "seqs increase without repeats: " + string.Join(",", ordered));
            await socket.CloseAsync();
        }

        [LiveTest]
        public async Task EventsAreRaisedOnTheContextTheSocketWasCreatedOn()
        {
            var client = await Live.PlayerAsync();
            var admin = Live.Admin();
            using (var pump = new PumpContext())
            {
                // Stands in for Unity's main thread: a socket created under
                // its context must raise every event there.
                var before = SynchronizationContext.Current;
                SynchronizationContext.SetSynchronizationContext(pump);
                VdmSocket socket;
                try
                {
                    socket = new VdmSocket(client);
                }
                finally
                {
                    SynchronizationContext.SetSynchronizationContext(before);
                }
                var threads = new ConcurrentQueue<int>();
                socket.Connected += w => threads.Enqueue(Thread.CurrentThread.ManagedThreadId);
                socket.QuestUpdated += q => threads.Enqueue(Thread.CurrentThread.ManagedThreadId);
                await socket.ConnectAsync();
                var quest = await Live.NewQuestAsync(admin);
                await client.AcceptQuestAsync(quest.Id);
                await Check.Eventually(() => threads.Count >= 2, "Connected and QuestUpdated");
                Check.That(threads.All(id => id == pump.ThreadId), "every event ran on the context's thread");
                await socket.CloseAsync();
            }
        }

        [LiveTest]
        public async Task HeartbeatsKeepAnIdleSocketOpen()
        {
            // The limited server pings every second and closes a socket
            // silent for two intervals (4002).
            var client = await Live.PlayerAsync(Live.LimitedUrl);
            var socket = new VdmSocket(client);
            var reconnects = 0;
            socket.Reconnecting += (attempt, delay) => Interlocked.Increment(ref reconnects);
            var welcome = await socket.ConnectAsync();
            Check.Equal(1000L, welcome.HeartbeatMs, "the server's heartbeat");
            await Task.Delay(TimeSpan.FromSeconds(3));
            Check.That(socket.IsConnected, "still open after three heartbeat intervals");
            Check.Equal(0, reconnects, "no reconnect");
            await socket.CloseAsync();
        }

        [LiveTest]
        public async Task TheSocketMovesToAFreshTokenBeforeItsOwnExpires()
        {
            // Sessions on the limited server last 12 s: due for a refresh
            // after 6 s (half their life).
            var client = await Live.PlayerAsync(Live.LimitedUrl);
            var admin = Live.Admin(Live.LimitedUrl);
            var socket = new VdmSocket(client);
            var welcomes = new ConcurrentQueue<VdmWelcome>();
            var progress = new ConcurrentQueue<int>();
            socket.Connected += w => welcomes.Enqueue(w);
            var quest = await Live.NewQuestAsync(admin, target: 10);
            socket.QuestUpdated += q => { if (q.QuestId == quest.Id) progress.Enqueue(q.Objectives[0].ProgressValue); };
            var first = client.Session.SessionToken;
            var firstExpires = client.Session.ExpiresAtUtc;
            await socket.ConnectAsync();
            await client.AcceptQuestAsync(quest.Id);
            await Check.Eventually(() => welcomes.Count == 2, "a second connection before the token expires", 15);
            Check.That(welcomes.Last().Resumed, "the session resumed");
            Check.That(client.Session.SessionToken != first, "with a refreshed token");
            Check.That(DateTime.UtcNow < firstExpires, "rotated before the first token expired");
            var quest2 = await socket.SendAsync<PlayerQuest>("POST", "/v1/me/quests/" + quest.Id + "/progress", new ProgressBody { ObjectiveId = quest.Objectives[0].Id, Amount = 1 });
            Check.Equal(1, quest2.Objectives[0].ProgressValue, "a socket request after the rotation");
            await Check.Eventually(() => progress.Count == 2, "the accept's and the progress's pushes, once each");
            await socket.CloseAsync();
        }

        [LiveTest]
        public async Task AWrongContractIsAClearError()
        {
            var client = await Live.PlayerAsync();
            var socket = new VdmSocket(client, new VdmSocketOptions { Contract = "v1-0000000000000000" });
            var error = await Check.Throws<VdmContractException>(() => socket.ConnectAsync(), "a client of another contract");
            Check.Equal("v1-0000000000000000", error.ClientContract, "the client's contract");
            Check.That(error.Reason.Contains(VdmContract.Version), "the reason names the server's contract: " + error.Reason);
        }

        [LiveTest]
        public async Task SignOutClosesTheSocketForGood()
        {
            var client = await Live.PlayerAsync();
            var socket = new VdmSocket(client);
            Exception closed = null;
            var closedOnce = 0;
            socket.Closed += e => { closed = e; System.Threading.Interlocked.Increment(ref closedOnce); };
            await socket.ConnectAsync();
            await client.SignOutAsync();
            await Check.Eventually(() => closedOnce == 1, "the socket closed");
            var socketError = closed as VdmSocketException;
            Check.That(socketError != null && socketError.CloseCode == 4003, "closed with 4003: " + closed);
        }
    }

    /// <summary>A single-threaded SynchronizationContext, as Unity's main thread has.</summary>
    public sealed class PumpContext : SynchronizationContext, IDisposable
    {
        private readonly BlockingCollection<KeyValuePair<SendOrPostCallback, object>> queue = new BlockingCollection<KeyValuePair<SendOrPostCallback, object>>();
        private readonly Thread thread;

        public PumpContext()
        {
            thread = new Thread(() =>
            {
                foreach (var work in queue.GetConsumingEnumerable()) work.Key(work.Value);
            }) { IsBackground = true };
            thread.Start();
        }

        public int ThreadId { get { return thread.ManagedThreadId; } }

        public override void Post(SendOrPostCallback d, object state)
        {
            queue.Add(new KeyValuePair<SendOrPostCallback, object>(d, state));
        }

        public void Dispose()
        {
            queue.CompleteAdding();
        }
    }
}
