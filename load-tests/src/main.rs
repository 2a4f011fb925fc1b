//! `vdm-load`: the load generator behind docs/PERFORMANCE.md.
//!
//! ```text
//! vdm-load get URL [PATH_TEMPLATE] [options]   closed- or open-loop GETs
//! vdm-load device-auth URL [options]          POST /v1/auth/device
//! vdm-load seed URL --admin-token T --count N  create N quests (idempotent)
//! vdm-load baseline --addr A --body-file F     a bare axum server returning F
//! vdm-load sockets URL --sockets N [--pid P]  N idle sockets; gateway RSS per socket
//! vdm-load sockets URL --sockets N --push-url U --admin-token T --region R
//!                                             region pushes to N sockets; delivery latency
//! vdm-load payload URL PATH [--token T]        bytes of PATH as JSON/MessagePack, each compressed
//! vdm-load mock-llm --addr A [--delay-ms D]    a slow chat-completions upstream that counts calls
//! vdm-load talk URL --players A-B --npcs C-D [--stats-url U]
//! vdm-load clients URL --clients N --duration S [--pid P]
//!                                             a population of Unity clients, mixed requests + a socket each
//!                                             every player talks to every NPC; latency, upstream calls
//! ```
//!
//! `PATH_TEMPLATE` may hold `{id}`, replaced by ids from `--ids A-B` in a
//! scrambled order so reads spread over the whole range. Options:
//! `--connections N` (64), `--duration S` (10), `--rate R` (total requests
//! per second, paced per connection; latency counts from the scheduled send
//! time, so a stalled server cannot hide its queueing), `--token T`,
//! `--warmup S` (1), `--devices N` (device-auth: pool of device ids, 1000),
//! `--if-none-match TAG` (get: conditional reads; a 304 counts as a success).
//! Prints a progress line per second and a summary; exits non-zero when
//! any request failed.

mod baseline;
mod clients;
mod engine;
mod payload;
mod rumors;
mod seed;
mod sockets;

use std::time::Duration;

use engine::{Plan, RequestFactory};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(message) => {
            eprintln!("vdm-load: {message}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Parsed `--name value` options.
pub struct Options {
    positional: Vec<String>,
    named: Vec<(String, String)>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut positional = Vec::new();
        let mut named = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if let Some(name) = arg.strip_prefix("--") {
                let value = iter.next().ok_or_else(|| format!("--{name} needs a value"))?;
                named.push((name.to_owned(), value.clone()));
            } else {
                positional.push(arg.clone());
            }
        }
        Ok(Options { positional, named })
    }

    /// A named option's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.named
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A named option parsed, or its default.
    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name}: cannot parse {v:?}")),
        }
    }

    pub fn positional(&self, i: usize, what: &str) -> Result<&str, String> {
        self.positional
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("missing {what}"))
    }
}

async fn run(args: Vec<String>) -> Result<bool, String> {
    let command = args.first().cloned().unwrap_or_default();
    let options = Options::parse(args.get(1..).unwrap_or_default())?;
    match command.as_str() {
        "get" => {
            let url = options.positional(0, "URL")?;
            let template = options.positional.get(1).cloned().unwrap_or_else(|| "/".to_owned());
            let ids = parse_range(options.get("ids").unwrap_or("1-1"))?;
            let token = options.get("token").map(|t| format!("Bearer {t}"));
            let if_none_match = options.get("if-none-match").map(str::to_owned);
            let factory = RequestFactory::get(template, ids, token, if_none_match);
            engine::run(plan(url, &options)?, factory).await
        }
        "device-auth" => {
            let url = options.positional(0, "URL")?;
            let devices: u64 = options.num("devices", 1000)?;
            engine::run(plan(url, &options)?, RequestFactory::device_auth(devices)).await
        }
        "seed" => seed::run(&options).await,
        "sockets" => sockets::run(&options).await,
        "baseline" => baseline::run(&options).await,
        "payload" => payload::run(&options).await,
        "mock-llm" => rumors::mock(&options).await,
        "talk" => rumors::talk(&options).await,
        "clients" => clients::run(&options).await,
        _ => Err(
            "usage: vdm-load get|device-auth|seed|baseline|sockets|payload|mock-llm|talk|clients ... (see the source's header)"
                .to_owned(),
        ),
    }
}

/// The `host:port` of an `http://host:port[/]` URL.
pub fn authority(url: &str) -> Result<String, String> {
    Ok(url
        .strip_prefix("http://")
        .ok_or("URL must start with http://")?
        .trim_end_matches('/')
        .to_owned())
}

fn plan(url: &str, options: &Options) -> Result<Plan, String> {
    let authority = authority(url)?;
    let rate: f64 = options.num("rate", 0.0)?;
    Ok(Plan {
        authority,
        connections: options.num("connections", 64)?,
        duration: Duration::from_secs_f64(options.num("duration", 10.0)?),
        warmup: Duration::from_secs_f64(options.num("warmup", 1.0)?),
        rate: (rate > 0.0).then_some(rate),
    })
}

fn parse_range(raw: &str) -> Result<(u64, u64), String> {
    let (a, b) = raw.split_once('-').ok_or("--ids takes A-B")?;
    let a: u64 = a.parse().map_err(|_| "--ids: bad start")?;
    let b: u64 = b.parse().map_err(|_| "--ids: bad end")?;
    if b < a {
        return Err("--ids: end before start".into());
    }
    Ok((a, b))
}
