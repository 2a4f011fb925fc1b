//! The fuzz targets: one `fn(&[u8]) -> u64` per network-facing decoder. Each
//! must never panic, hang or allocate without bound, whatever the bytes; the
//! `u64` is a cheap fingerprint of what the input did (which decode
//! succeeded, which error class it hit), used by the driver as its only
//! feedback. With cargo-fuzz these bodies are the `fuzz_target!` bodies.

use std::collections::HashMap;
use std::fmt::Display;

use axum::extract::ws::Message;
use axum::http::Uri;
use serde::de::DeserializeOwned;
use serde_json::json;
use vdm_gateway::auth::routes as auth;
use vdm_gateway::negotiate::{Format, decode_body, decode_query};
use vdm_gateway::realtime::envelope::decode;
use vdm_gateway::realtime::session::request_of;
use vdm_gateway::routes::{bootstrap, npcs, quests, rumors, shared, stats, telemetry, world};
use vdm_metrics::domain::telemetry::{MAX_GC_ALLOC_BYTES, MAX_SAMPLES, MAX_SYSTEMS};
use vdm_metrics::domain::{ClientBatch, ClientBatchInput};
use vdm_rumor::domain::{MAX_TEXT_CHARS, Traits};
use vdm_rumor::transform::{Ask, LocalTransformer, llm::parse_answer};

/// A fuzz target.
#[derive(Clone, Copy)]
pub struct Target {
    /// Its name: the corpus and artifact folders are named after it.
    pub name: &'static str,
    /// What it decodes.
    pub what: &'static str,
    /// Runs one input; panics on a bug.
    pub run: fn(&[u8]) -> u64,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "body_json",
        what: "gateway request bodies in JSON, through negotiate::decode_body, into every route body type",
        run: body_json,
    },
    Target {
        name: "body_msgpack",
        what: "gateway request bodies in MessagePack, through negotiate::decode_body, into every route body type",
        run: body_msgpack,
    },
    Target {
        name: "query",
        what: "query strings, through negotiate::decode_query, into every query type; the socket's query; since/from/to times",
        run: query,
    },
    Target {
        name: "ws_envelope",
        what: "WebSocket frames (text: JSON, binary: MessagePack) through envelope::decode, then session::request_of",
        run: ws_envelope,
    },
    Target {
        name: "rumor_local",
        what: "the local rumor transformer on an Ask built from the bytes: <= MAX_TEXT_CHARS and deterministic",
        run: rumor_local,
    },
    Target {
        name: "rumor_llm_answer",
        what: "the LLM upstream's answer through llm::parse_answer, raw and as the message content",
        run: rumor_llm_answer,
    },
    Target {
        name: "telemetry",
        what: "client telemetry uploads: decode_body (JSON and MessagePack), then the metrics service's ClientBatch::parse",
        run: telemetry,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.name == name)
}

/// FNV-1a: artifact names and fingerprints.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(17)
}

/// The class of an outcome: `Ok`, or the all-lowercase words of the error
/// message before its first quote (positions, echoed input and map keys
/// vary; the class not).
fn outcome<T, E: Display>(result: &Result<T, E>) -> u64 {
    match result {
        Ok(_) => 1,
        Err(e) => {
            let text = e.to_string();
            let class = text.split(['"', '`', '\'']).next().unwrap_or_default();
            class
                .split(|c: char| c.is_whitespace() || c == ':')
                .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
                .fold(0xcbf2_9ce4_8422_2325, |h, w| mix(h, fnv(w.as_bytes())))
        }
    }
}

/// Decodes a body as `T`; one that decodes must not decode any more with a
/// byte after its value (a complete `nil` in MessagePack): a body is one
/// value, in both formats.
fn whole<T: DeserializeOwned>(format: Format, data: &[u8]) -> u64 {
    let decoded = decode_body::<T>(format, data);
    if decoded.is_ok() {
        let mut longer = data.to_vec();
        longer.push(match format {
            Format::Json => b'x',
            Format::Msgpack => 0xc0,
        });
        assert!(
            decode_body::<T>(format, &longer).is_err(),
            "a {format:?} body with a value after its value decodes"
        );
    }
    outcome(&decoded)
}

fn bodies(format: Format, data: &[u8]) -> u64 {
    let mut h = 0;
    h = mix(h, whole::<quests::json::NewQuestJson>(format, data));
    h = mix(h, whole::<quests::json::QuestPatchJson>(format, data));
    h = mix(h, whole::<quests::json::ProgressBody>(format, data));
    h = mix(h, whole::<quests::json::BatchGetBody>(format, data));
    h = mix(h, whole::<npcs::NewNpcJson>(format, data));
    h = mix(h, whole::<npcs::MoveJson>(format, data));
    h = mix(h, whole::<npcs::BatchGetBody>(format, data));
    h = mix(h, whole::<npcs::NewMemoryJson>(format, data));
    h = mix(h, whole::<rumors::NewRumorJson>(format, data));
    h = mix(h, whole::<rumors::SpreadJson>(format, data));
    h = mix(h, whole::<rumors::TickJson>(format, data));
    h = mix(h, whole::<world::NewEventJson>(format, data));
    h = mix(h, whole::<telemetry::ClientBatchJson>(format, data));
    h = mix(h, whole::<auth::DeviceSignIn>(format, data));
    mix(h, whole::<auth::Refresh>(format, data))
}

/// Request bodies in JSON.
pub fn body_json(data: &[u8]) -> u64 {
    bodies(Format::Json, data)
}

/// Request bodies in MessagePack.
pub fn body_msgpack(data: &[u8]) -> u64 {
    bodies(Format::Msgpack, data)
}

/// Query strings: `data` is what follows the `?` of a request target.
pub fn query(data: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(data);
    // The time parser sees the decoded parameter value, any string.
    let mut h = outcome(&shared::parse_time("since", &text));
    // hyper refuses request targets that are not URIs before any extractor.
    let Ok(uri) = Uri::try_from(format!("/v1/x?{text}")) else {
        return mix(h, 2);
    };
    h = mix(h, outcome(&decode_query::<bootstrap::BootstrapQuery>(&uri)));
    h = mix(h, outcome(&decode_query::<npcs::ListNpcsQuery>(&uri)));
    h = mix(h, outcome(&decode_query::<npcs::MemoriesQuery>(&uri)));
    h = mix(h, outcome(&decode_query::<quests::json::ListQuestsQuery>(&uri)));
    h = mix(h, outcome(&decode_query::<quests::json::ListMineQuery>(&uri)));
    h = mix(h, outcome(&decode_query::<rumors::KnownQuery>(&uri)));
    h = mix(h, outcome(&decode_query::<stats::HistoryQuery>(&uri)));
    h = mix(h, outcome(&decode_query::<telemetry::StatsQuery>(&uri)));
    h = mix(h, outcome(&decode_query::<world::EventsQuery>(&uri)));
    // The socket reads its query as pairs, then checks them.
    let pairs = decode_query::<HashMap<String, String>>(&uri);
    h = mix(h, outcome(&pairs));
    if let Ok(pairs) = pairs {
        for value in pairs.values() {
            h = mix(h, outcome(&shared::parse_time("to", value)));
        }
        h = mix(h, outcome(&vdm_gateway::realtime::parse_query(pairs)));
    }
    h
}

/// A WebSocket frame: binary frames are MessagePack; frames that are UTF-8
/// are also tried as text (JSON), as the socket would receive them.
pub fn ws_envelope(data: &[u8]) -> u64 {
    let mut h = 0;
    let mut frames = vec![Message::Binary(data.to_vec().into())];
    if let Ok(text) = std::str::from_utf8(data) {
        frames.push(Message::Text(text.to_owned().into()));
    }
    for frame in &frames {
        let decoded = decode(frame);
        h = mix(h, outcome(&decoded));
        if let Ok(Some(incoming)) = decoded {
            // A frame is one envelope: with a value after it, it is refused.
            let longer = match frame {
                Message::Text(text) => Message::Text(format!("{}x", text.as_str()).into()),
                _ => Message::Binary([data, &[0xc0]].concat().into()),
            };
            assert!(
                decode(&longer).is_err(),
                "a frame with a value after its envelope decodes"
            );
            h = mix(h, fnv(incoming.kind.as_bytes()) & 0xff);
            let request = request_of("session-token", &incoming);
            h = mix(h, u64::from(request.is_ok()));
        }
    }
    h
}

/// Reads a trait value from one byte: mostly in 0..=1, a few out of range
/// and non-finite values the transformer must survive.
fn unit(b: u8) -> f32 {
    match b {
        0..=250 => f32::from(b) / 250.0,
        251 => f32::NAN,
        252 => -1.0,
        253 => 2.0,
        254 => f32::INFINITY,
        255 => f32::NEG_INFINITY,
    }
}

/// An [`Ask`] from bytes: 8 bytes of seed, 7 bytes of intensity and traits,
/// then NUL-separated parts: the text, then names (places start with `@`).
pub fn ask_of(data: &[u8]) -> Ask {
    let mut head = [0u8; 15];
    let n = data.len().min(15);
    head[..n].copy_from_slice(&data[..n]);
    let rest = &data[n..];
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&head[..8]);
    let mut parts = rest.split(|b| *b == 0).map(|p| String::from_utf8_lossy(p).into_owned());
    let text = parts.next().unwrap_or_default();
    let (mut names, mut places) = (Vec::new(), Vec::new());
    for part in parts {
        match part.strip_prefix('@') {
            Some(place) => places.push(place.to_owned()),
            None => names.push(part),
        }
    }
    Ask {
        text,
        teller: Traits {
            gullibility: unit(head[9]),
            talkativeness: unit(head[10]),
            honesty: unit(head[11]),
        },
        listener: Traits {
            gullibility: unit(head[12]),
            talkativeness: unit(head[13]),
            honesty: unit(head[14]),
        },
        intensity: unit(head[8]),
        seed: u64::from_le_bytes(seed),
        names,
        places,
    }
}

/// The local transformer: never longer than `MAX_TEXT_CHARS`, and the same
/// ask always gives the same text.
pub fn rumor_local(data: &[u8]) -> u64 {
    let ask = ask_of(data);
    let first = LocalTransformer.transform(&ask);
    let chars = first.text.chars().count();
    assert!(chars <= MAX_TEXT_CHARS, "retelling of {chars} chars");
    let second = LocalTransformer.transform(&ask);
    assert_eq!(first, second, "the local transformer is not deterministic");
    mix(chars.min(64) as u64, u64::from(first.text == ask.text))
}

/// The upstream's answer: the raw body, and the bytes as the content of a
/// well-formed completion (where the interesting parsing happens).
pub fn rumor_llm_answer(data: &[u8]) -> u64 {
    let content = String::from_utf8_lossy(data);
    let wrapped = json!({"choices": [{"message": {"role": "assistant", "content": content}}]}).to_string();
    let mut h = 0;
    for body in [data, wrapped.as_bytes()] {
        for expected in 1..=3 {
            let answer = parse_answer(body, expected);
            if let Ok(texts) = &answer {
                assert_eq!(texts.len(), expected, "parse_answer returned the wrong number of texts");
            }
            h = mix(h, outcome(&answer));
        }
    }
    h
}

/// A telemetry upload, decoded as the gateway does, converted as the gateway
/// and the metrics service convert it, then checked as the metrics service
/// does.
pub fn telemetry(data: &[u8]) -> u64 {
    let mut h = 0;
    for format in [Format::Json, Format::Msgpack] {
        let decoded = decode_body::<telemetry::ClientBatchJson>(format, data);
        h = mix(h, outcome(&decoded));
        let Ok(body) = decoded else { continue };
        let input = ClientBatchInput::from(body.into_request(1));
        let parsed = ClientBatch::parse(input);
        h = mix(h, outcome(&parsed));
        if let Ok(batch) = parsed {
            assert!((1..=MAX_SAMPLES).contains(&batch.samples.len()));
            for s in &batch.samples {
                assert!(s.frame_time_ms.is_finite() && s.frame_time_ms >= 0.0);
                assert!(s.systems.len() <= MAX_SYSTEMS);
                assert!(s.systems.values().all(|v| v.is_finite() && *v >= 0.0));
                assert!(
                    s.gc_alloc_bytes
                        .is_none_or(|b| (0..=MAX_GC_ALLOC_BYTES as i64).contains(&b))
                );
            }
        }
    }
    h
}
