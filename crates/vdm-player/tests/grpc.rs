//! The player service over gRPC, started through the kit's skeleton on each
//! back end (`vdm_kit::testing`): what a caller sees of every RPC.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use tonic::Code;
use vdm_kit::bus::EventBody;
use vdm_kit::grpc::GrpcChannel;
use vdm_kit::service::Peers;
use vdm_kit::testing::{Backend, TestService, expect_status};
use vdm_player::domain::LevelCurve;
use vdm_player::{Player, PlayerConfig};
use vdm_proto::player::v1 as pb;
use vdm_proto::player::v1::player_service_client::PlayerServiceClient;

type Client = PlayerServiceClient<GrpcChannel>;

vdm_kit::backend_tests!(
    a_reward_moves_faction_standing_once_and_clamped,
    sign_in_creates_a_player_once,
    session_families_rotate_and_a_reused_token_revokes,
    display_names_are_validated_and_unique,
    level_follows_xp_by_the_curve,
    the_catalog_is_put_read_and_listed,
    stacks_never_pass_their_limit,
    the_ledger_explains_every_balance,
    a_grant_id_applies_once,
    bad_changes_are_refused_and_change_nothing,
    concurrent_changes_keep_balance_and_ledger_consistent,
    the_gateways_players_register_under_its_ids,
    the_ledger_lists_newest_first_when_asked,
);

async fn start(backend: Backend) -> Option<(TestService<Player>, Client)> {
    let player = TestService::<Player>::start(
        backend,
        |database, cache| PlayerConfig {
            database,
            cache,
            // Level 2 at 100 xp, 3 at 300, 4 at 600.
            levels: LevelCurve::parse("100,300,600").unwrap(),
        },
        Peers::default(),
    )
    .await?;
    let client = PlayerServiceClient::new(player.channel());
    Some((player, client))
}

async fn sign_in(client: &mut Client, device: &str) -> i64 {
    client
        .sign_in_device(pb::SignInDeviceRequest {
            device_id: device.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .player_id
}

fn item(id: i64, key: &str, max_stack: u32) -> pb::Item {
    pb::Item {
        id,
        key: key.to_owned(),
        name: format!("The {key}"),
        kind: "potion".to_owned(),
        rarity: "common".to_owned(),
        max_stack,
        tradeable: true,
        ..Default::default()
    }
}

async fn put_item(client: &mut Client, item: pb::Item) -> pb::Item {
    client
        .put_item(pb::PutItemRequest { item: Some(item) })
        .await
        .unwrap()
        .into_inner()
}

fn amounts(gold: i64, xp: i64, items: &[(i64, i64)]) -> Option<pb::Amounts> {
    Some(pb::Amounts {
        gold,
        xp,
        items: items
            .iter()
            .map(|(item_id, quantity)| pb::ItemAmount {
                item_id: *item_id,
                quantity: *quantity,
            })
            .collect(),
    })
}

async fn grant(
    client: &mut Client,
    player_id: i64,
    gold: i64,
    xp: i64,
    items: &[(i64, i64)],
) -> Result<pb::ChangeResponse, tonic::Status> {
    client
        .grant(pb::GrantRequest {
            player_id,
            amounts: amounts(gold, xp, items),
            reason: "test grant".to_owned(),
            source_id: "ticket-1".to_owned(),
            grant_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn remove(
    client: &mut Client,
    player_id: i64,
    gold: i64,
    items: &[(i64, i64)],
) -> Result<pb::ChangeResponse, tonic::Status> {
    client
        .remove(pb::RemoveRequest {
            player_id,
            amounts: amounts(gold, 0, items),
            reason: "spent".to_owned(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

fn reward(grant_id: &str, player_id: i64, gold: i64, xp: i64, item_ids: Vec<i64>) -> pb::GrantRewardRequest {
    pb::GrantRewardRequest {
        grant_id: grant_id.to_owned(),
        player_id,
        gold,
        xp,
        item_ids,
        reason: "quest completed".to_owned(),
        source_id: "quest:7".to_owned(),
        standings: Vec::new(),
    }
}

async fn profile(client: &mut Client, player_id: i64) -> pb::Profile {
    client
        .get_profile(pb::GetProfileRequest { player_id })
        .await
        .unwrap()
        .into_inner()
}

async fn inventory(client: &mut Client, player_id: i64) -> BTreeMap<i64, i64> {
    client
        .get_inventory(pb::GetInventoryRequest { player_id })
        .await
        .unwrap()
        .into_inner()
        .stacks
        .into_iter()
        .map(|s| (s.item.unwrap().id, s.quantity))
        .collect()
}

/// Every ledger row of a player, through every page.
async fn ledger(client: &mut Client, player_id: i64) -> Vec<pb::LedgerEntry> {
    let mut entries = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = client
            .list_ledger(pb::ListLedgerRequest {
                player_id,
                limit: 7,
                cursor,
                newest_first: false,
            })
            .await
            .unwrap()
            .into_inner();
        entries.extend(page.entries);
        if page.next_cursor.is_empty() {
            return entries;
        }
        cursor = page.next_cursor;
    }
}

/// Checks that the ledger sums to the balances, and that each row's
/// `balance_after` follows from the row before it.
async fn assert_ledger_explains(client: &mut Client, player_id: i64) {
    let entries = ledger(client, player_id).await;
    let mut balances: BTreeMap<(i32, i64), i64> = BTreeMap::new();
    for entry in &entries {
        let balance = balances.entry((entry.kind, entry.item_id)).or_insert(0);
        *balance += entry.amount;
        assert_eq!(*balance, entry.balance_after, "{entry:?}");
        assert!(*balance >= 0, "{entry:?}");
    }
    let profile = profile(client, player_id).await;
    let gold = pb::LedgerKind::Gold as i32;
    let xp = pb::LedgerKind::Xp as i32;
    assert_eq!(balances.get(&(gold, 0)).copied().unwrap_or(0), profile.gold);
    assert_eq!(balances.get(&(xp, 0)).copied().unwrap_or(0), profile.xp);
    let held: BTreeMap<i64, i64> = balances
        .iter()
        .filter(|((kind, _), units)| *kind == pb::LedgerKind::Item as i32 && **units > 0)
        .map(|((_, item_id), units)| (*item_id, *units))
        .collect();
    assert_eq!(held, inventory(client, player_id).await);
}

async fn sign_in_creates_a_player_once(backend: Backend) {
    let Some((player, mut client)) = start(backend).await else {
        return;
    };
    assert_eq!(player.ready().await, Ok(()));
    let first = client
        .sign_in_device(pb::SignInDeviceRequest {
            device_id: "device-a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(first.created);
    assert!(first.player_id > 0);
    let again = client
        .sign_in_device(pb::SignInDeviceRequest {
            device_id: " device-a ".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.player_id, again.created), (first.player_id, false));
    let other = sign_in(&mut client, "device-b").await;
    assert_ne!(other, first.player_id);

    // Racing first sign-ins of one device make one player.
    let racers = (0..8).map(|_| {
        let mut client = client.clone();
        async move { sign_in(&mut client, "device-c").await }
    });
    let ids = futures_util::future::join_all(racers).await;
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");

    let fresh = profile(&mut client, first.player_id).await;
    assert_eq!((fresh.gold, fresh.xp, fresh.level), (0, 0, 1));
    assert_eq!(fresh.next_level_xp, 100);
    assert_eq!(fresh.display_name, "");
    assert!(fresh.created_at_ms > 0);

    for bad in ["", "a b", &"x".repeat(129)] {
        let refused = client
            .sign_in_device(pb::SignInDeviceRequest { device_id: bad.into() })
            .await;
        expect_status(refused, Code::InvalidArgument, "device_id");
    }
    player.finish().await;
}

async fn rotate(client: &mut Client, player_id: i64, sid: &str, generation: i64, issued: i64) -> (i32, i64) {
    let r = client
        .rotate_session(pb::RotateSessionRequest {
            player_id,
            sid: sid.to_owned(),
            generation,
            issued_at_ms: issued,
        })
        .await
        .unwrap()
        .into_inner();
    (r.outcome, r.generation)
}

async fn session_families_rotate_and_a_reused_token_revokes(backend: Backend) {
    let Some((player, mut client)) = start(backend).await else {
        return;
    };
    let id = sign_in(&mut client, "device-s").await;
    let issued = vdm_kit::now_ms();
    let rotated = pb::RotationOutcome::Rotated as i32;
    let revoked = pb::RotationOutcome::Revoked as i32;
    assert_eq!(rotate(&mut client, id, "fam-1", 0, issued).await, (rotated, 1));
    assert_eq!(rotate(&mut client, id, "fam-1", 1, issued).await, (rotated, 2));
    // Generation 1 was spent: using it again ends the family.
    assert_eq!(
        rotate(&mut client, id, "fam-1", 1, issued).await,
        (pb::RotationOutcome::Reused as i32, 0)
    );
    assert_eq!(rotate(&mut client, id, "fam-1", 2, issued).await, (revoked, 0));
    // A generation never reached is refused without ending the family.
    assert_eq!(rotate(&mut client, id, "fam-2", 0, issued).await, (rotated, 1));
    assert_eq!(rotate(&mut client, id, "fam-2", 9, issued).await, (revoked, 0));
    assert_eq!(rotate(&mut client, id, "fam-2", 1, issued).await, (rotated, 2));
    // Another player's family.
    let other = sign_in(&mut client, "device-t").await;
    assert_eq!(rotate(&mut client, other, "fam-2", 2, issued).await, (revoked, 0));
    assert_eq!(
        rotate(&mut client, 999_999, "fam-9", 0, issued).await,
        (pb::RotationOutcome::NoPlayer as i32, 0)
    );

    // Two refreshes racing with one token: one wins.
    let racers = (0..4).map(|_| {
        let mut client = client.clone();
        async move { rotate(&mut client, id, "fam-2", 2, issued).await.0 }
    });
    let outcomes = futures_util::future::join_all(racers).await;
    assert_eq!(outcomes.iter().filter(|o| **o == rotated).count(), 1, "{outcomes:?}");

    // Sign out, and sign out everywhere.
    let since = vdm_kit::now_ms() - 60_000;
    client
        .revoke_session(pb::RevokeSessionRequest {
            player_id: id,
            sid: "fam-3".into(),
        })
        .await
        .unwrap();
    assert_eq!(rotate(&mut client, id, "fam-3", 0, issued).await, (revoked, 0));
    let everywhere = client
        .revoke_player_sessions(pb::RevokePlayerSessionsRequest {
            player_id: id,
            at_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(everywhere.revoked_before_ms >= issued);
    assert_eq!(rotate(&mut client, id, "fam-4", 0, issued).await, (revoked, 0));
    assert_eq!(
        rotate(&mut client, id, "fam-4", 0, everywhere.revoked_before_ms + 1).await,
        (rotated, 1)
    );
    expect_status(
        client
            .revoke_player_sessions(pb::RevokePlayerSessionsRequest {
                player_id: 999_999,
                at_ms: 0,
            })
            .await,
        Code::NotFound,
        "player 999999",
    );

    let revocations = client
        .list_revocations(pb::ListRevocationsRequest { since_ms: since })
        .await
        .unwrap()
        .into_inner()
        .revocations;
    use pb::revocation::Scope;
    let sids: Vec<&str> = revocations
        .iter()
        .filter_map(|r| match &r.scope {
            Some(Scope::Session(s)) => Some(s.sid.as_str()),
            _ => None,
        })
        .collect();
    assert!(sids.contains(&"fam-1") && sids.contains(&"fam-3"), "{sids:?}");
    assert!(
        revocations
            .iter()
            .any(|r| r.player_id == id && r.scope == Some(Scope::IssuedBeforeMs(everywhere.revoked_before_ms)))
    );
    expect_status(
        client
            .rotate_session(pb::RotateSessionRequest {
                player_id: id,
                sid: String::new(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "sid",
    );
    player.finish().await;
}

async fn display_names_are_validated_and_unique(backend: Backend) {
    let Some((player, mut client)) = start(backend).await else {
        return;
    };
    let hilda = sign_in(&mut client, "device-h").await;
    let other = sign_in(&mut client, "device-o").await;
    let mut events = player.watch_events().await;

    let named = client
        .update_profile(pb::UpdateProfileRequest {
            player_id: hilda,
            display_name: Some("  Hilda the-Brave_2 ".into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(named.display_name, "Hilda the-Brave_2");
    assert!(named.updated_at_ms >= named.created_at_ms);
    assert_eq!(profile(&mut client, hilda).await, named);
    let pushed = events.next("player.updated").await;
    assert_eq!(pushed.player_id, Some(hilda));
    let Some(EventBody::PlayerUpdated(pushed)) = &pushed.body else {
        panic!("{pushed:?}")
    };
    assert_eq!(pushed.display_name, "Hilda the-Brave_2");

    // Taken, whatever the case.
    let taken = client
        .update_profile(pb::UpdateProfileRequest {
            player_id: other,
            display_name: Some("HILDA THE-BRAVE_2".into()),
        })
        .await;
    expect_status(taken, Code::AlreadyExists, "is taken");
    // Keeping one's own name (in another case) is fine.
    let recased = client
        .update_profile(pb::UpdateProfileRequest {
            player_id: hilda,
            display_name: Some("hilda the-brave_2".into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recased.display_name, "hilda the-brave_2");

    for (bad, message) in [
        ("ab", "3 to 24 characters"),
        (&"x".repeat(25), "3 to 24 characters"),
        ("bad!name", "letters, digits"),
        ("a\u{202E}bcd", "letters, digits"),
        ("two  spaces", "two spaces"),
    ] {
        let refused = client
            .update_profile(pb::UpdateProfileRequest {
                player_id: other,
                display_name: Some(bad.to_owned()),
            })
            .await;
        expect_status(refused, Code::InvalidArgument, message);
    }
    // No change asked: the profile as it is.
    let unchanged = client
        .update_profile(pb::UpdateProfileRequest {
            player_id: other,
            display_name: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.display_name, "");
    expect_status(
        client
            .update_profile(pb::UpdateProfileRequest {
                player_id: 999_999,
                display_name: Some("Nobody".into()),
            })
            .await,
        Code::NotFound,
        "player 999999 not found",
    );
    expect_status(
        client.get_profile(pb::GetProfileRequest { player_id: 999_999 }).await,
        Code::NotFound,
        "player 999999",
    );
    expect_status(
        client.get_profile(pb::GetProfileRequest { player_id: 0 }).await,
        Code::InvalidArgument,
        "player_id",
    );
    player.finish().await;
}

async fn level_follows_xp_by_the_curve(backend: Backend) {
    let Some((player, mut client)) = start(backend).await else {
        return;
    };
    let id = sign_in(&mut client, "device-l").await;
    let mut events = player.watch_events().await;

    let small = grant(&mut client, id, 0, 99, &[]).await.unwrap();
    let p = small.profile.unwrap();
    assert_eq!((p.xp, p.level, p.next_level_xp), (99, 1, 100));
    assert!(!small.leveled_up);
    events.next("player.updated").await;

    let big = grant(&mut client, id, 0, 250, &[]).await.unwrap();
    let p = big.profile.unwrap();
    assert_eq!((p.xp, p.level, p.next_level_xp), (349, 3, 600));
    assert!(big.leveled_up);
    assert_eq!(big.previous_level, 1);
    let up = events.next("player.level_up").await;
    let Some(EventBody::PlayerLevelUp(up)) = &up.body else {
        panic!("{up:?}")
    };
    assert_eq!((up.player_id, up.previous_level, up.level), (id, 1, 3));

    let top = grant(&mut client, id, 0, 10_000, &[]).await.unwrap().profile.unwrap();
    assert_eq!((top.level, top.next_level_xp), (4, 0));
    // Removing xp lowers the level; it is no level-up.
    let lower = client
        .remove(pb::RemoveRequest {
            player_id: id,
            amounts: amounts(0, 10_000, &[]),
            reason: "correction".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lower.profile.unwrap().level, 3);
    assert!(!lower.leveled_up);
    player.finish().await;
}

async fn the_catalog_is_put_read_and_listed(backend: Backend) {
    let Some((player, mut client)) = start(backend).await else {
        return;
    };
    let sword = put_item(
        &mut client,
        pb::Item {
            kind: "weapon".into(),
            rarity: "rare".into(),
            tradeable: false,
            ..item(10, "iron_sword", 1)
        },
    )
    .await;
    assert_eq!(sword.id, 10);
    assert_eq!(sword.rarity, "rare");
    assert!(!sword.tradeable);
    assert!(sword.created_at_ms > 0);
    let got = client
        .get_item(pb::GetItemRequest { id: 10 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, sword);

    // A put of the same id replaces it and keeps its creation time.
    let renamed = put_item(
        &mut client,
        pb::Item {
            name: "Old Iron Sword".into(),
            ..item(10, "iron_sword", 1)
        },
    )
    .await;
    assert_eq!(renamed.name, "Old Iron Sword");
    assert_eq!(renamed.created_at_ms, sword.created_at_ms);

    for id in [3, 5, 7] {
        put_item(&mut client, item(id, &format!("potion_{id}"), 20)).await;
    }
    let page = client
        .list_items(pb::ListItemsRequest {
            limit: 3,
            cursor: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<i64> = page.items.iter().map(|i| i.id).collect();
    assert_eq!(ids, vec![3, 5, 7]);
    let rest = client
        .list_items(pb::ListItemsRequest {
            limit: 3,
            cursor: page.next_cursor,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.items.iter().map(|i| i.id).collect::<Vec<_>>(), vec![10]);
    assert!(rest.next_cursor.is_empty());

    // Another item may not take a key in use.
    let clash = client
        .put_item(pb::PutItemRequest {
            item: Some(item(11, "iron_sword", 1)),
        })
        .await;
    expect_status(clash, Code::AlreadyExists, "iron_sword");
    for (bad, field) in [
        (item(0, "x", 1), "item.id"),
        (item(12, "Bad Key", 1), "item.key"),
        (item(12, "ok", 0), "item.max_stack"),
        (
            pb::Item {
                rarity: "mythic".into(),
                ..item(12, "ok", 1)
            },
            "item.rarity",
        ),
        (
            pb::Item {
                name: " ".into(),
                ..item(12, "ok", 1)
            },
            "item.name",
        ),
    ] {
        let refused = client.put_item(pb::PutItemRequest { item: Some(bad) }).await;
        expect_status(refused, Code::InvalidArgument, field);
    }
    expect_status(
        client.put_item(pb::PutItemRequest { item: None }).await,
        Code::InvalidArgument,
        "item is required",
    );
    expect_status(
        client.get_item(pb::GetItemRequest { id: 99 }).await,
        Code::NotFound,
        "item 99 not found",
    );
    expect_status(
        client
            .list_items(pb::ListItemsRequest {
                limit: 0,
                cursor: "nonsense".into(),
            })
            .await,
        Code::InvalidArgument,
        "cursor",
    );
    player.finish().await;
}

async fn stacks_never_pass_their_limit(backend: Backend) {
    let Some((player, mut client)) = start(backend).await else {
        return;
    };
    put_item(&mut client, item(1, "herb", 5)).await;
    put_item(&mut client, item(2, "crown", 1)).await;
    let id = sign_in(&mut client, "device-i").await;

    grant(&mut client, id, 0, 0, &[(1, 3)]).await.unwrap();
    grant(&mut client, id, 0, 0, &[(1, 2), (2, 1)]).await.unwrap();
    assert_eq!(inventory(&mut client, id).await, BTreeMap::from([(1, 5), (2, 1)]));
    let stacks = client
        .get_inventory(pb::GetInventoryRequest { player_id: id })
        .await
        .unwrap()
        .into_inner()
        .stacks;
    assert_eq!(stacks[0].item.as_ref().unwrap().key, "herb");

    // One more herb would make a stack of 6: refused whole, gold included.
    let full = grant(&mut client, id, 10, 0, &[(1, 1)]).await;
    expect_status(full, Code::FailedPrecondition, "holds at most 5");
    let full = client.grant_reward(reward("full-1", id, 0, 0, vec![2])).await;
    expect_status(full, Code::FailedPrecondition, "item 2 holds at most 1");
    // The same item twice in one change counts twice.
    put_item(&mut client, item(3, "gem", 2)).await;
    let twice = client
        .grant_reward(reward("twice", id, 0, 0, vec![3, 3]))
        .await
        .unwrap()
        .into_inner();
    assert!(!twice.replayed);
    expect_status(
        client.grant_reward(reward("thrice", id, 0, 0, vec![3])).await,
        Code::FailedPrecondition,
        "item 3",
    );
    assert_eq!(profile(&mut client, id).await.gold, 0);

    // Removing more than held is refused; removing all empties the stack.
    expect_status(
        remove(&mut client, id, 0, &[(1, 6)]).await,
        Code::FailedPrecondition,
        "has 5 units of item 1, cannot remove 6",
    );
    remove(&mut client, id, 0, &[(1, 5)]).await.unwrap();
    assert_eq!(inventory(&mut client, id).await, BTreeMap::from([(2, 1), (3, 2)]));
    expect_status(
        grant(&mut client, id, 0, 0, &[(77, 1)]).await,
        Code::NotFound,
        "item 77 not found",
    );
    expect_status(
        client
            .get_inventory(pb::GetInventoryRequest { player_id: 999_999 })
            .await,
        Code::NotFound,
        "player 999999",
    );
    assert_ledger_explains(&mut client, id).await;
    player.finish().await;
}

async fn the_ledger_explains_every_balance(backend: Backend) {
    let Some((player, mut client)) = start(backend).await else {
        return;
    };
    put_item(&mut client, item(1, "herb", 50)).await;
    let id = sign_in(&mut client, "device-g").await;
    grant(&mut client, id, 100, 40, &[(1, 10)]).await.unwrap();
    remove(&mut client, id, 30, &[(1, 4)]).await.unwrap();
    client.grant_reward(reward("q-1", id, 25, 70, vec![1])).await.unwrap();
    for _ in 0..4 {
        remove(&mut client, id, 5, &[]).await.unwrap();
    }

    let p = profile(&mut client, id).await;
    assert_eq!((p.gold, p.xp), (75, 110));
    assert_eq!(inventory(&mut client, id).await, BTreeMap::from([(1, 7)]));
    let entries = ledger(&mut client, id).await;
    assert_eq!(entries.len(), 3 + 2 + 3 + 4);
    assert!(entries.windows(2).all(|w| w[0].id < w[1].id));
    let first = &entries[0];
    assert_eq!(first.kind, pb::LedgerKind::Gold as i32);
    assert_eq!((first.amount, first.balance_after), (100, 100));
    assert_eq!(
        (first.reason.as_str(), first.source_id.as_str()),
        ("test grant", "ticket-1")
    );
    assert_eq!(first.grant_id, "");
    let spent = &entries[3];
    assert_eq!(
        (spent.amount, spent.balance_after, spent.reason.as_str()),
        (-30, 70, "spent")
    );
    let rewarded: Vec<&pb::LedgerEntry> = entries.iter().filter(|e| e.grant_id == "q-1").collect();
    assert_eq!(rewarded.len(), 3);
    assert!(
        rewarded
            .iter()
            .all(|e| e.source_id == "quest:7" && e.reason == "quest completed")
    );
    assert_ledger_explains(&mut client, id).await;

    // Another player's ledger is their own.
    let other = sign_in(&mut client, "device-other").await;
    assert!(ledger(&mut client, other).await.is_empty());
    expect_status(
        client
            .list_ledger(pb::ListLedgerRequest {
                player_id: 999_999,
                ..Default::default()
            })
            .await,
        Code::NotFound,
        "player 999999",
    );
    player.finish().await;
}

async fn a_grant_id_applies_once(backend: Backend) {
    let Some((player, mut client)) = start(backend).await else {
        return;
    };
    put_item(&mut client, item(4, "ring", 3)).await;
    let id = sign_in(&mut client, "device-r").await;
    let mut events = player.watch_events().await;

    let first = client
        .grant_reward(reward("quest-7-player", id, 50, 120, vec![4]))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.replayed);
    assert!(first.leveled_up);
    let applied = first.profile.clone().unwrap();
    assert_eq!((applied.gold, applied.xp, applied.level), (50, 120, 2));
    events.next("player.updated").await;
    events.next("player.level_up").await;

    // Something else changes the profile; a replay still answers with the
    // first result, and applies nothing.
    grant(&mut client, id, 1, 0, &[]).await.unwrap();
    events.next("player.updated").await;
    let replay = client
        .grant_reward(reward("quest-7-player", id, 50, 120, vec![4]))
        .await
        .unwrap()
        .into_inner();
    assert!(replay.replayed);
    assert!(replay.leveled_up);
    assert_eq!(replay.profile, first.profile);
    let now = profile(&mut client, id).await;
    assert_eq!((now.gold, now.xp), (51, 120));
    assert_eq!(inventory(&mut client, id).await, BTreeMap::from([(4, 1)]));
    events.assert_none("player.updated", Duration::from_millis(300)).await;

    // The same grant id with another payload, or for another player.
    expect_status(
        client
            .grant_reward(reward("quest-7-player", id, 51, 120, vec![4]))
            .await,
        Code::AlreadyExists,
        "grant id \"quest-7-player\" was already used",
    );
    let other = sign_in(&mut client, "device-r2").await;
    expect_status(
        client
            .grant_reward(reward("quest-7-player", other, 50, 120, vec![4]))
            .await,
        Code::AlreadyExists,
        "already used",
    );
    assert_eq!(profile(&mut client, other).await.gold, 0);

    // An operator's grant with a grant id is as idempotent.
    let request = pb::GrantRequest {
        player_id: id,
        amounts: amounts(5, 0, &[]),
        reason: "apology".into(),
        source_id: "incident-3".into(),
        grant_id: "apology-3".into(),
    };
    client.grant(request.clone()).await.unwrap();
    assert!(client.grant(request).await.unwrap().into_inner().replayed);
    assert_eq!(profile(&mut client, id).await.gold, 56);

    // Concurrent replays of a new grant id: applied once.
    let racers = (0..6).map(|_| {
        let mut client = client.clone();
        async move {
            client
                .grant_reward(reward("race-1", id, 10, 0, vec![]))
                .await
                .unwrap()
                .into_inner()
        }
    });
    let answers = futures_util::future::join_all(racers).await;
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    assert!(answers.iter().all(|a| a.profile == answers[0].profile));
    assert_eq!(profile(&mut client, id).await.gold, 66);

    // Refused grants.
    expect_status(
        client.grant_reward(reward("", id, 1, 0, vec![])).await,
        Code::InvalidArgument,
        "grant_id is required",
    );
    expect_status(
        client.grant_reward(reward("to-nobody", 999_999, 1, 0, vec![])).await,
        Code::NotFound,
        "player 999999 not found",
    );
    expect_status(
        client.grant_reward(reward("neg", id, -5, 0, vec![])).await,
        Code::InvalidArgument,
        "gold must not be negative",
    );
    expect_status(
        client.grant_reward(reward("unknown-item", id, 0, 0, vec![404])).await,
        Code::NotFound,
        "item 404 not found",
    );
    // A refused grant id was never applied: it may be used once the
    // payload is valid.
    client
        .grant_reward(reward("unknown-item", id, 1, 0, vec![]))
        .await
        .unwrap();
    assert_ledger_explains(&mut client, id).await;
    player.finish().await;
}

async fn bad_changes_are_refused_and_change_nothing(backend: Backend) {
    let Some((player, mut client)) = start(backend).await else {
        return;
    };
    let id = sign_in(&mut client, "device-b").await;
    grant(&mut client, id, 20, 0, &[]).await.unwrap();

    expect_status(
        remove(&mut client, id, 21, &[]).await,
        Code::FailedPrecondition,
        "has 20 gold, cannot remove 21",
    );
    expect_status(
        remove(&mut client, id, -1, &[]).await,
        Code::InvalidArgument,
        "gold must not be negative",
    );
    expect_status(
        grant(&mut client, id, 0, -3, &[]).await,
        Code::InvalidArgument,
        "xp must not be negative",
    );
    expect_status(
        grant(&mut client, id, 0, 0, &[(1, -2)]).await,
        Code::InvalidArgument,
        "quantity of item 1 must be positive",
    );
    expect_status(
        grant(&mut client, id, 0, 0, &[]).await,
        Code::InvalidArgument,
        "must move some gold",
    );
    expect_status(
        grant(&mut client, id, vdm_player::domain::MAX_AMOUNT + 1, 0, &[]).await,
        Code::InvalidArgument,
        "gold must be at most",
    );
    expect_status(
        grant(&mut client, 999_999, 1, 0, &[]).await,
        Code::NotFound,
        "player 999999",
    );
    let no_reason = client
        .grant(pb::GrantRequest {
            player_id: id,
            amounts: amounts(1, 0, &[]),
            ..Default::default()
        })
        .await;
    expect_status(no_reason, Code::InvalidArgument, "reason");

    let p = profile(&mut client, id).await;
    assert_eq!((p.gold, p.xp), (20, 0));
    assert_eq!(ledger(&mut client, id).await.len(), 1);
    player.finish().await;
}

async fn concurrent_changes_keep_balance_and_ledger_consistent(backend: Backend) {
    let Some((player, mut client)) = start(backend).await else {
        return;
    };
    put_item(&mut client, item(1, "arrow", 1000)).await;
    let id = sign_in(&mut client, "device-c").await;
    grant(&mut client, id, 50, 0, &[]).await.unwrap();

    // 20 grants of 10 gold and 2 arrows, 20 spends of 5 gold and 1 arrow,
    // 10 rewards with their own grant ids, each sent twice, all at once.
    let mut calls = Vec::new();
    for i in 0..20 {
        let mut granter = client.clone();
        calls.push(tokio::spawn(async move {
            grant(&mut granter, id, 10, 1, &[(1, 2)]).await.map(|_| "granted")
        }));
        let mut spender = client.clone();
        calls.push(tokio::spawn(async move {
            remove(&mut spender, id, 5, &[(1, 1)]).await.map(|_| "spent")
        }));
        if i < 10 {
            for _ in 0..2 {
                let mut client = client.clone();
                calls.push(tokio::spawn(async move {
                    client
                        .grant_reward(reward(&format!("c-{i}"), id, 3, 0, vec![1]))
                        .await
                        .map(|r| {
                            if r.into_inner().replayed {
                                "replayed"
                            } else {
                                "rewarded"
                            }
                        })
                }));
            }
        }
    }
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for call in calls {
        match call.await.unwrap() {
            Ok(what) => *outcomes.entry(what).or_default() += 1,
            // A spend may find no arrow yet: refused, never applied.
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                *outcomes.entry("refused").or_default() += 1;
            }
        }
    }
    assert_eq!(outcomes.get("granted"), Some(&20), "{outcomes:?}");
    assert_eq!(outcomes.get("rewarded"), Some(&10), "{outcomes:?}");
    assert_eq!(outcomes.get("replayed"), Some(&10), "{outcomes:?}");
    let spent = outcomes.get("spent").copied().unwrap_or(0) as i64;
    let p = profile(&mut client, id).await;
    assert_eq!(p.gold, 50 + 20 * 10 - spent * 5 + 10 * 3);
    assert_eq!(p.xp, 20);
    assert_eq!(inventory(&mut client, id).await, BTreeMap::from([(1, 40 - spent + 10)]));
    assert_ledger_explains(&mut client, id).await;

    // Spends racing for the last gold: exactly as many as it pays for win.
    let gold = p.gold;
    let racers = (0..(gold / 10 + 5)).map(|_| {
        let mut client = client.clone();
        async move { remove(&mut client, id, 10, &[]).await.is_ok() }
    });
    let won = futures_util::future::join_all(racers)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count() as i64;
    assert_eq!(won, gold / 10);
    assert_eq!(profile(&mut client, id).await.gold, gold % 10);
    assert_ledger_explains(&mut client, id).await;
    player.finish().await;
}

async fn the_gateways_players_register_under_its_ids(backend: Backend) {
    let Some((player, mut client)) = start(backend).await else {
        return;
    };
    let register = |player_id: i64, device: &str| pb::RegisterPlayerRequest {
        player_id,
        device_id: device.to_owned(),
    };
    let first = client.register_player(register(41, "gateway-device-41")).await.unwrap();
    assert!(first.into_inner().created);
    let again = client.register_player(register(41, "gateway-device-41")).await.unwrap();
    assert!(!again.into_inner().created, "registering twice is a no-op");
    let fresh = profile(&mut client, 41).await;
    assert_eq!((fresh.player_id, fresh.level, fresh.xp, fresh.gold), (41, 1, 0, 0));
    // The device is 41's: another id cannot take it.
    expect_status(
        client.register_player(register(42, "gateway-device-41")).await,
        Code::AlreadyExists,
        "another player",
    );
    // Ids registered from outside are never handed out by a sign-in here.
    assert!(
        client
            .register_player(register(1, "gateway-device-1"))
            .await
            .unwrap()
            .into_inner()
            .created
    );
    let signed_in = sign_in(&mut client, "device-of-the-player-service").await;
    assert!(![1, 41].contains(&signed_in), "{signed_in}");
    expect_status(
        client.register_player(register(0, "gateway-device-0")).await,
        Code::InvalidArgument,
        "player_id",
    );
    expect_status(
        client.register_player(register(43, "")).await,
        Code::InvalidArgument,
        "device_id",
    );
    player.finish().await;
}

async fn the_ledger_lists_newest_first_when_asked(backend: Backend) {
    let Some((player, mut client)) = start(backend).await else {
        return;
    };
    let id = sign_in(&mut client, "device-newest").await;
    for gold in 1..=5 {
        client
            .grant(pb::GrantRequest {
                player_id: id,
                amounts: Some(pb::Amounts {
                    gold,
                    ..Default::default()
                }),
                reason: format!("gift {gold}"),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let page = |cursor: String| pb::ListLedgerRequest {
        player_id: id,
        limit: 2,
        cursor,
        newest_first: true,
    };
    let first = client.list_ledger(page(String::new())).await.unwrap().into_inner();
    let amounts: Vec<i64> = first.entries.iter().map(|e| e.amount).collect();
    assert_eq!(amounts, vec![5, 4]);
    assert!(first.next_cursor.starts_with('d'), "{}", first.next_cursor);
    let second = client
        .list_ledger(page(first.next_cursor.clone()))
        .await
        .unwrap()
        .into_inner();
    let amounts: Vec<i64> = second.entries.iter().map(|e| e.amount).collect();
    assert_eq!(amounts, vec![3, 2]);
    // A cursor of the other order is refused.
    expect_status(
        client
            .list_ledger(pb::ListLedgerRequest {
                player_id: id,
                cursor: first.next_cursor,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "cursor",
    );
    player.finish().await;
}

async fn a_reward_moves_faction_standing_once_and_clamped(backend: Backend) {
    let Some((player, mut client)) = start(backend).await else {
        return;
    };
    let id = sign_in(&mut client, "device-s").await;
    let standings = |pairs: &[(i64, i32)]| {
        pairs
            .iter()
            .map(|&(faction_id, delta)| pb::StandingChange { faction_id, delta })
            .collect::<Vec<_>>()
    };
    let read = |client: &mut Client| {
        let mut client = client.clone();
        async move {
            client
                .list_standings(pb::ListStandingsRequest { player_id: id })
                .await
                .unwrap()
                .into_inner()
                .standings
                .into_iter()
                .map(|s| (s.faction_id, s.standing))
                .collect::<Vec<_>>()
        }
    };
    assert!(read(&mut client).await.is_empty());

    // Standing alone is a reward; a replay changes nothing.
    let mut only_standing = reward("quest-1-player", id, 0, 0, Vec::new());
    only_standing.standings = standings(&[(3, 60), (5, -10)]);
    client.grant_reward(only_standing.clone()).await.unwrap();
    assert!(client.grant_reward(only_standing).await.unwrap().into_inner().replayed);
    assert_eq!(read(&mut client).await, [(3, 60), (5, -10)]);

    // Clamped at 100; the ledger says how far it moved.
    let mut more = reward("quest-2-player", id, 5, 0, Vec::new());
    more.standings = standings(&[(3, 60)]);
    client.grant_reward(more.clone()).await.unwrap();
    assert_eq!(read(&mut client).await, [(3, 100), (5, -10)]);
    let rows: Vec<_> = ledger(&mut client, id)
        .await
        .into_iter()
        .filter(|e| e.kind() == pb::LedgerKind::Standing)
        .map(|e| (e.faction_id, e.amount, e.balance_after, e.grant_id))
        .collect();
    assert_eq!(
        rows,
        [
            (3, 60, 60, "quest-1-player".to_owned()),
            (5, -10, -10, "quest-1-player".to_owned()),
            (3, 40, 100, "quest-2-player".to_owned())
        ]
    );
    // The standings are part of the payload under the grant id.
    more.standings = standings(&[(3, 61)]);
    expect_status(client.grant_reward(more).await, Code::AlreadyExists, "already used");

    let mut bad = reward("quest-3-player", id, 0, 0, Vec::new());
    bad.standings = standings(&[(3, 0)]);
    expect_status(
        client.grant_reward(bad.clone()).await,
        Code::InvalidArgument,
        "standing delta of faction 3",
    );
    bad.standings = standings(&[(3, 1), (3, 2)]);
    expect_status(client.grant_reward(bad).await, Code::InvalidArgument, "listed twice");
    expect_status(
        client
            .list_standings(pb::ListStandingsRequest { player_id: 999_999 })
            .await,
        Code::NotFound,
        "999999",
    );
    player.finish().await;
}
