using System;
using System.Linq;
using UnityEngine;
using Vdm.Client;

/// <summary>
/// The SDK's quick start: signs this device in, loads region 1, accepts the
/// first quest offered there, and logs the pushes the server sends back.
/// Put it on any GameObject and set the server URL in the inspector.
/// </summary>
public class VdmQuickStart : MonoBehaviour
{
    [SerializeField] private string serverUrl = "http://127.0.0.1:8080";
    [SerializeField] private long regionId = 1;

    private VdmClient client;
    private VdmSocket socket;

    private async void Start()
    {
        try
        {
            client = new VdmClient(serverUrl, transport: new UnityWebRequestTransport());
            var session = await client.AuthenticateDeviceAsync(SystemInfo.deviceUniqueIdentifier);
            Debug.Log("signed in as player " + session.PlayerId);

            // Created on the main thread: push events are raised there too.
            socket = new VdmSocket(client);
            socket.QuestUpdated += update => Debug.Log("quest " + update.QuestId + " is " + update.Status);
            socket.WorldEvent += worldEvent => Debug.Log("world event: " + worldEvent.Text);
            socket.Closed += reason => Debug.LogWarning("socket closed: " + reason);
            await socket.ConnectAsync();
            await socket.SubscribeAsync(new[] { regionId });

            var world = await client.BootstrapAsync(regionId);
            Debug.Log("region " + world.Region.Name + ": " + world.Npcs.Count + " NPCs, " + world.Quests.Count + " quests");
            var quest = world.Quests.FirstOrDefault();   // empty, not null, when the region offers none
            if (quest != null)
            {
                var accepted = await client.AcceptQuestAsync(quest.Id);
                Debug.Log("accepted " + quest.Title + " (" + accepted.Status + ")");
            }
        }
        catch (VdmApiException e)
        {
            Debug.LogError("server said " + e.Status + " " + e.Code + ": " + e.ServerMessage + " (request " + e.RequestId + ")");
        }
        catch (Exception e)
        {
            Debug.LogException(e);
        }
    }

    private void OnDestroy()
    {
        socket?.Dispose();
        client?.Dispose();
    }
}
