using System;
using System.Threading.Tasks;

namespace Vdm.Client.Tests
{
    /// <summary>The servers under test, from the environment check.sh sets.</summary>
    public static class Live
    {
        /// <summary>The server with default limits.</summary>
        public static string Url { get { return Env("VDM_URL"); } }

        /// <summary>A second server started with tight rate limits (VDM_RATE_READ=2/2, VDM_RATE_WRITE=1/1) a 1 s socket heartbeat and 12 s sessions.</summary>
        public static string LimitedUrl { get { return Env("VDM_LIMITED_URL"); } }

        /// <summary>The admin token of both servers.</summary>
        public static string AdminToken { get { return Env("VDM_ADMIN_TOKEN"); } }

        /// <summary>A client signed in as a new player (a fresh device id).</summary>
        public static async Task<VdmClient> PlayerAsync(string url = null, VdmClientOptions options = null, IVdmTransport transport = null)
        {
            var client = new VdmClient(url ?? Url, options, transport);
            await client.AuthenticateDeviceAsync("sdk-test-" + Guid.NewGuid().ToString("N"));
            return client;
        }

        /// <summary>A client with the admin token and no session.</summary>
        public static VdmClient Admin(string url = null)
        {
            return new VdmClient(url ?? Url) { AdminToken = AdminToken };
        }

        /// <summary>A quest in region 1 with one objective of <paramref name="target"/> steps, created by the admin.</summary>
        public static Task<Quest> NewQuestAsync(VdmClient admin, int target = 5, int objectives = 1)
        {
            var body = new NewQuest
            {
                Title = "SDK test " + Guid.NewGuid().ToString("N").Substring(0, 8),
                Description = "made by the Unity SDK's tests",
                GiverNpcId = 1,
                RegionId = 1,
                LevelRequirement = 1,
                Reward = new Reward { Gold = 5, Xp = 10 },
                Objectives = new System.Collections.Generic.List<NewObjective>(),
            };
            for (var i = 0; i < objectives; i++)
            {
                body.Objectives.Add(new NewObjective { Description = "step " + i, TargetCount = target });
            }
            return admin.CreateQuestAsync(body, "sdk-" + Guid.NewGuid().ToString("N"));
        }

        private static string Env(string name)
        {
            var value = Environment.GetEnvironmentVariable(name);
            if (string.IsNullOrEmpty(value)) throw new InvalidOperationException(name + " is not set (clients/unity/check.sh sets it)");
            return value;
        }
    }
}
