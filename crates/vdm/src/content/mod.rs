//! World content as files: `vdm content validate|import|export`.
//!
//! A world (regions with their hexes, factions and relations, NPCs, items,
//! quests, and the memories, events and rumors that start it off) is a
//! JSON file a game team keeps in version control; docs/CONTENT.md
//! describes it and `content/world.schema.json` is its JSON Schema.
//!
//! # Layout
//! - [`format`]: the file's types and [`format::World::parse`], whose
//!   problems name the file and the JSON pointer of each place.
//! - [`plan`]: what is live and what an import must write ([`plan::Plan`]),
//!   and the export of what is live as a file. No IO.
//! - [`client`]: the gateway's REST API as an operator calls it.
//! - here: the commands, and the writes of a plan.
//!
//! Import and export go through the gateway (the services' public API),
//! never to a database: the commands work on any install, from outside the
//! cluster or as a Job inside it.

pub mod client;
pub mod format;
pub mod plan;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use http::Method;
use serde::Serialize;
use serde_json::Value;
use vdm_kit::config::Env;

use self::client::Gateway;
use self::format::World;
use self::plan::{Live, LiveFactions, LiveItem, LiveNpc, LiveQuest, LiveRegion, Plan, Write};
use crate::VdmError;

/// The gateway the commands call when neither `--url` nor `VDM_URL` says.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// A `vdm content` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentCommand {
    /// Check a file; no server needed.
    Validate(PathBuf),
    /// Make the live world match a file (or print the plan only).
    Import {
        /// The world file.
        file: PathBuf,
        /// Print the plan, write nothing.
        dry_run: bool,
        /// The gateway (`--url`); else `VDM_URL`, else [`DEFAULT_URL`].
        url: Option<String>,
    },
    /// Write the live world as a file.
    Export {
        /// Where to (`--out`); standard output when absent.
        out: Option<PathBuf>,
        /// The gateway (`--url`); else `VDM_URL`, else [`DEFAULT_URL`].
        url: Option<String>,
    },
}

/// The usage of `vdm content`.
pub const USAGE: &str = "usage: vdm content validate FILE
       vdm content import FILE [--dry-run] [--url URL]
       vdm content export [--out FILE] [--url URL]";

impl ContentCommand {
    /// Parses the arguments after `vdm content`.
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<ContentCommand, String> {
        let verb = args.next().ok_or(USAGE)?;
        let mut file = None;
        let mut dry_run = false;
        let mut url = None;
        let mut out = None;
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--dry-run" if verb == "import" => dry_run = true,
                "--url" if verb != "validate" => url = Some(args.next().ok_or("--url needs a URL")?),
                "--out" if verb == "export" => out = Some(PathBuf::from(args.next().ok_or("--out needs a file name")?)),
                flag if flag.starts_with("--") => return Err(format!("unexpected option {flag:?}\n{USAGE}")),
                _ if file.is_none() && verb != "export" => file = Some(PathBuf::from(arg)),
                _ => return Err(format!("unexpected argument {arg:?}\n{USAGE}")),
            }
        }
        let file = || {
            file.clone()
                .ok_or_else(|| format!("vdm content {verb} needs a FILE\n{USAGE}"))
        };
        match verb.as_str() {
            "validate" => Ok(ContentCommand::Validate(file()?)),
            "import" => Ok(ContentCommand::Import {
                file: file()?,
                dry_run,
                url,
            }),
            "export" => Ok(ContentCommand::Export { out, url }),
            other => Err(format!("unknown content command {other:?}\n{USAGE}")),
        }
    }
}

/// Runs a content command; what it reports goes to standard output.
pub async fn run(command: ContentCommand, env: &Env) -> Result<(), VdmError> {
    let gateway = |url: Option<String>| {
        let url = url
            .or_else(|| env.string("VDM_URL"))
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        Gateway::new(&url, env.string("VDM_ADMIN_TOKEN").as_deref())
    };
    match command {
        ContentCommand::Validate(file) => {
            let world = read(&file)?;
            println!("{}: valid ({})", file.display(), summary(&world));
            Ok(())
        }
        ContentCommand::Import { file, dry_run, url } => {
            let world = read(&file)?;
            let gateway = gateway(url)?;
            let report = import(&gateway, &world, &file.display().to_string(), dry_run).await?;
            print!("{}", report.plan);
            if dry_run {
                println!("dry run: nothing written");
            } else {
                println!(
                    "imported {}: {} written, {} written once before",
                    file.display(),
                    report.written,
                    report.replayed
                );
            }
            Ok(())
        }
        ContentCommand::Export { out, url } => {
            let world = export(&gateway(url)?).await?;
            let mut text = serde_json::to_string_pretty(&world).map_err(|e| VdmError::Other(format!("export: {e}")))?;
            text.push('\n');
            match out {
                Some(path) => {
                    std::fs::write(&path, text)?;
                    eprintln!("wrote {} to {}", summary(&world), path.display());
                }
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}

/// Reads and checks a world file; every problem names the file and the
/// place in it.
pub fn read(path: &Path) -> Result<World, VdmError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| VdmError::Other(format!("{}: cannot read: {e}", path.display())))?;
    World::parse(&path.display().to_string(), &text).map_err(|problems| VdmError::Other(problems.to_string()))
}

fn summary(world: &World) -> String {
    format!(
        "{} regions, {} factions, {} relations, {} npcs, {} items, {} quests, {} memories, {} events, {} rumors",
        world.regions.len(),
        world.factions.len(),
        world.relations.len(),
        world.npcs.len(),
        world.items.len(),
        world.quests.len(),
        world.memories.len(),
        world.events.len(),
        world.rumors.len()
    )
}

/// What an import did.
#[derive(Debug)]
pub struct ImportReport {
    /// What it compared and decided.
    pub plan: Plan,
    /// Writes that changed something.
    pub written: usize,
    /// Once-only writes the service had already made (replayed).
    pub replayed: usize,
}

/// Reads what is live through the gateway.
pub async fn live(gateway: &Gateway) -> Result<Live, VdmError> {
    #[derive(serde::Deserialize)]
    struct Regions {
        items: Vec<LiveRegion>,
    }
    let regions: Regions = gateway.get("/v1/world/regions").await?;
    let factions: LiveFactions = gateway.get("/v1/world/factions").await?;
    Ok(Live {
        regions: regions.items,
        factions: factions.items,
        relations: factions.relations,
        items: gateway.list::<LiveItem>("/v1/items").await?,
        npcs: gateway.list::<LiveNpc>("/v1/npcs").await?,
        quests: gateway.list::<LiveQuest>("/v1/quests").await?,
    })
}

/// The live world as a file ([`plan::export`]).
pub async fn export(gateway: &Gateway) -> Result<World, VdmError> {
    Ok(plan::export(&live(gateway).await?))
}

/// Compares `world` with what is live and, unless `dry_run`, writes what
/// differs, in dependency order (regions before the NPCs in them, NPCs
/// before their quests). With a conflict nothing is written.
pub async fn import(gateway: &Gateway, world: &World, file: &str, dry_run: bool) -> Result<ImportReport, VdmError> {
    let live = live(gateway).await?;
    let plan = Plan::new(world, &live);
    let mut report = ImportReport {
        plan,
        written: 0,
        replayed: 0,
    };
    if !report.plan.conflicts.is_empty() {
        let conflicts: Vec<String> = report.plan.conflicts.iter().map(|c| format!("{file}: {c}")).collect();
        return Err(VdmError::Other(format!(
            "{}\nnothing imported: resolve the conflicts above first",
            conflicts.join("\n")
        )));
    }
    if dry_run {
        return Ok(report);
    }
    let mut npc_ids: HashMap<&str, i64> = live.npcs.iter().map(|n| (n.name.as_str(), n.id)).collect();
    let writes: Vec<Write> = report.plan.steps.iter().filter_map(|s| s.write.clone()).collect();
    for write in writes {
        let replayed = apply(gateway, world, &write, &mut npc_ids)
            .await
            .map_err(|e| VdmError::Other(format!("{file}: {}: {e}", pointer(&write))))?;
        if replayed {
            report.replayed += 1;
        } else {
            report.written += 1;
        }
    }
    Ok(report)
}

/// The JSON pointer of the file entry a write comes from.
fn pointer(write: &Write) -> String {
    match write {
        Write::Region(i) => format!("/regions/{i}"),
        Write::Faction(i) => format!("/factions/{i}"),
        Write::Relation(a, b, _) => format!("/relations (pair {a}-{b})"),
        Write::Item(i) => format!("/items/{i}"),
        Write::CreateNpc(i) | Write::UpdateNpc { index: i, .. } => format!("/npcs/{i}"),
        Write::CreateQuest(i) | Write::PatchQuest(_, i) => format!("/quests/{i}"),
        Write::Memory(i) => format!("/memories/{i}"),
        Write::Event(i) => format!("/events/{i}"),
        Write::Rumor(i) => format!("/rumors/{i}"),
    }
}

/// Makes one write; `true` when a once-only write had been made before.
async fn apply<'w>(
    gateway: &Gateway,
    world: &'w World,
    write: &Write,
    npc_ids: &mut HashMap<&'w str, i64>,
) -> Result<bool, VdmError> {
    let missing = |what: &str| VdmError::Other(format!("{what} is not in the file"));
    let npc_id = |ids: &HashMap<&str, i64>, name: &str| {
        ids.get(name)
            .copied()
            .ok_or_else(|| VdmError::Other(format!("npc {name:?} is not live")))
    };
    let written = match write {
        Write::Region(i) => {
            let region = world.regions.get(*i).ok_or_else(|| missing("region"))?;
            let body = serde_json::json!({
                "name": region.name,
                "biome": region.biome,
                "cells": region.cells().iter().map(|c| [c.q, c.r]).collect::<Vec<_>>(),
            });
            put(gateway, &format!("/v1/world/regions/{}", region.id), &body).await?
        }
        Write::Faction(i) => {
            let faction = world.factions.get(*i).ok_or_else(|| missing("faction"))?;
            let body = serde_json::json!({ "name": faction.name });
            put(gateway, &format!("/v1/world/factions/{}", faction.id), &body).await?
        }
        Write::Relation(a, b, score) => {
            let body = serde_json::json!({ "a": a, "b": b, "score": score });
            put(gateway, "/v1/world/relations", &body).await?
        }
        Write::Item(i) => {
            let item = world.items.get(*i).ok_or_else(|| missing("item"))?;
            let body = serde_json::json!({
                "key": item.key,
                "name": item.name,
                "kind": item.kind,
                "rarity": item.rarity,
                "max_stack": item.max_stack,
                "tradeable": item.tradeable,
            });
            put(gateway, &format!("/v1/items/{}", item.id), &body).await?
        }
        Write::CreateNpc(i) => {
            let npc = world.npcs.get(*i).ok_or_else(|| missing("npc"))?;
            let at = world.npc_position(*i).ok_or_else(|| missing("the npc's region"))?;
            let mut body = serde_json::json!({
                "name": npc.name,
                "region_id": npc.region,
                "q": at.q,
                "r": at.r,
                "traits": npc.traits,
            });
            if let Some(faction) = npc.faction {
                body["faction_id"] = faction.into();
            }
            let created: Written = gateway.write(Method::POST, "/v1/npcs", &body, None).await?;
            npc_ids.insert(npc.name.as_str(), id_of(&created.body)?);
            false
        }
        Write::UpdateNpc {
            id,
            index,
            moves,
            changes,
        } => {
            let npc = world.npcs.get(*index).ok_or_else(|| missing("npc"))?;
            if *changes {
                let body = serde_json::json!({ "faction_id": npc.faction, "traits": npc.traits });
                gateway
                    .write::<_, Value>(Method::PATCH, &format!("/v1/npcs/{id}"), &body, None)
                    .await?;
            }
            if *moves {
                let at = world.npc_position(*index).ok_or_else(|| missing("the npc's region"))?;
                let body = serde_json::json!({ "q": at.q, "r": at.r });
                gateway
                    .write::<_, Value>(Method::POST, &format!("/v1/npcs/{id}/move"), &body, None)
                    .await?;
            }
            false
        }
        Write::CreateQuest(i) | Write::PatchQuest(_, i) => {
            let quest = world.quests.get(*i).ok_or_else(|| missing("quest"))?;
            let mut body = serde_json::json!({
                "title": quest.title,
                "description": quest.description,
                "giver_npc_id": npc_id(npc_ids, &quest.giver)?,
                "region_id": quest.region,
                "level_requirement": quest.level_requirement,
                "reward": quest.reward,
            });
            match write {
                Write::PatchQuest(id, _) => {
                    gateway
                        .write::<_, Value>(Method::PATCH, &format!("/v1/quests/{id}"), &body, None)
                        .await?;
                }
                _ => {
                    body["objectives"] = serde_json::to_value(&quest.objectives)
                        .map_err(|e| VdmError::Other(format!("objectives: {e}")))?;
                    gateway
                        .write::<_, Value>(Method::POST, "/v1/quests", &body, None)
                        .await?;
                }
            }
            false
        }
        Write::Memory(i) => {
            let memory = world.memories.get(*i).ok_or_else(|| missing("memory"))?;
            let subjects = memory
                .subjects
                .iter()
                .map(|s| npc_id(npc_ids, s))
                .collect::<Result<Vec<_>, _>>()?;
            let body = serde_json::json!({
                "kind": memory.kind,
                "text": memory.text,
                "subject_ids": subjects,
                "importance": memory.importance,
            });
            let path = format!("/v1/npcs/{}/memories", npc_id(npc_ids, &memory.npc)?);
            once(gateway, &path, &body, &format!("content-memory-{i}")).await?
        }
        Write::Event(i) => {
            let event = world.events.get(*i).ok_or_else(|| missing("event"))?;
            let body = serde_json::json!({ "kind": event.kind, "text": event.text, "region_ids": event.regions });
            once(gateway, "/v1/world/events", &body, &format!("content-event-{i}")).await?
        }
        Write::Rumor(i) => {
            let rumor = world.rumors.get(*i).ok_or_else(|| missing("rumor"))?;
            let region = world
                .npc_index(&rumor.origin)
                .and_then(|n| world.npcs.get(n))
                .map(|npc| npc.region)
                .ok_or_else(|| missing("the rumor's origin"))?;
            let body = serde_json::json!({
                "text": rumor.text,
                "origin_npc_id": npc_id(npc_ids, &rumor.origin)?,
                "region_id": region,
                "truth": rumor.truth,
            });
            once(gateway, "/v1/rumors", &body, &format!("content-rumor-{i}")).await?
        }
    };
    Ok(written)
}

type Written = client::Written<Value>;

async fn put<B: Serialize>(gateway: &Gateway, path: &str, body: &B) -> Result<bool, VdmError> {
    gateway.write::<_, Value>(Method::PUT, path, body, None).await?;
    Ok(false)
}

/// A once-only write under its idempotency key; `true` when the service
/// had made it before.
async fn once<B: Serialize>(gateway: &Gateway, path: &str, body: &B, key: &str) -> Result<bool, VdmError> {
    let written: Written = gateway.write(Method::POST, path, body, Some(key)).await?;
    Ok(written.replayed)
}

fn id_of(body: &Value) -> Result<i64, VdmError> {
    body.get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| VdmError::Other("the answer has no id".to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(args: &[&str]) -> Result<ContentCommand, String> {
        ContentCommand::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_content_commands() {
        assert_eq!(
            parse(&["validate", "w.json"]).unwrap(),
            ContentCommand::Validate("w.json".into())
        );
        assert_eq!(
            parse(&["import", "w.json", "--dry-run", "--url", "http://gw:8080"]).unwrap(),
            ContentCommand::Import {
                file: "w.json".into(),
                dry_run: true,
                url: Some("http://gw:8080".into())
            }
        );
        assert_eq!(
            parse(&["export", "--out", "o.json"]).unwrap(),
            ContentCommand::Export {
                out: Some("o.json".into()),
                url: None
            }
        );
        assert!(parse(&["validate"]).is_err());
        assert!(parse(&["validate", "a", "b"]).is_err());
        assert!(parse(&["validate", "a", "--url", "x"]).is_err());
        assert!(parse(&["export", "w.json"]).is_err());
        assert!(parse(&["import", "w.json", "--out", "x"]).is_err());
        assert!(parse(&["bogus"]).is_err());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn a_bad_file_is_reported_by_name_and_place() {
        let dir = std::env::temp_dir().join(format!("vdm-content-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("demo.json");
        let mut world: Value = serde_json::from_str(format::DEMO_WORLD_JSON).unwrap();
        world["quests"][3]["giver"] = "Nobody".into();
        std::fs::write(&path, world.to_string()).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: /quests/3/giver: npc \"Nobody\" is not defined in this file",
                path.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
