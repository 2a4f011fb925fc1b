//! `vdm-fuzz <target|all|list> --seconds N [--corpus DIR] [--seed S]`: runs
//! fuzz targets for a fixed time on the stable toolchain (docs/FUZZING.md).
//!
//! Each target runs in a child process (the worker) that loads the target's
//! seed corpus, runs every seed, then mutates inputs for the given time,
//! catching panics per input and timing each one. Before running an input
//! the worker hands it to the parent through a pipe, so that when the
//! worker dies in a way no `catch_unwind` sees (stack overflow, abort, out
//! of memory, a hang) the parent still saves the input that did it.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vdm_fuzz::mutate::{Prng, mutate, words_of};
use vdm_fuzz::{TARGETS, Target, fnv, fuzz_dir, load_corpus, quiet_panics, run_one, target};

/// An input slower than this is reported.
const SLOW: Duration = Duration::from_secs(1);
/// A worker silent for this long is hung.
const HANG: Duration = Duration::from_secs(10);
/// The stack of the fuzzing thread: tokio's worker threads' default, where
/// the decoders run in production.
const STACK: usize = 2 * 1024 * 1024;
/// Inputs kept for mutation.
const POOL: usize = 10_000;

const FRAME_INPUT: u8 = 0;
const FRAME_SUMMARY: u8 = 1;

#[derive(Debug, Clone)]
struct Options {
    what: String,
    seconds: u64,
    corpus: PathBuf,
    artifacts: PathBuf,
    seed: u64,
    max_len: usize,
    rss_mb: u64,
    worker: bool,
}

fn usage() -> String {
    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    format!(
        "usage: vdm-fuzz <target|all|list> [--seconds N] [--corpus DIR] [--artifacts DIR] [--seed S] [--max-len BYTES] [--rss-mb MB]\n       vdm-fuzz msgpack-seeds FROM_DIR TO_DIR\ntargets: {}",
        names.join(", ")
    )
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        what: String::new(),
        seconds: 10,
        corpus: fuzz_dir().join("corpus"),
        artifacts: fuzz_dir().join("artifacts"),
        seed: 1,
        max_len: 4096,
        rss_mb: 2048,
        worker: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--seconds" => options.seconds = value(arg)?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--corpus" => options.corpus = PathBuf::from(value(arg)?),
            "--artifacts" => options.artifacts = PathBuf::from(value(arg)?),
            "--seed" => options.seed = value(arg)?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--max-len" => options.max_len = value(arg)?.parse().map_err(|e| format!("--max-len: {e}"))?,
            "--rss-mb" => options.rss_mb = value(arg)?.parse().map_err(|e| format!("--rss-mb: {e}"))?,
            "--worker" => options.worker = true,
            "-h" | "--help" => return Err(usage()),
            other if other.starts_with('-') => return Err(format!("unknown option {other}\n{}", usage())),
            other if options.what.is_empty() => options.what = other.to_owned(),
            other => return Err(format!("unexpected argument {other}\n{}", usage())),
        }
    }
    if options.what.is_empty() {
        return Err(usage());
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("msgpack-seeds") {
        return match (args.get(1), args.get(2)) {
            (Some(from), Some(to)) => report(msgpack_seeds(Path::new(from), Path::new(to))),
            _ => report(Err(usage())),
        };
    }
    let options = match parse_args(&args) {
        Ok(options) => options,
        Err(message) => return report(Err(message)),
    };
    if options.what == "list" {
        for t in TARGETS {
            println!("{:<18} {}", t.name, t.what);
        }
        return ExitCode::SUCCESS;
    }
    let selected: Vec<Target> = if options.what == "all" {
        TARGETS.to_vec()
    } else {
        match target(&options.what) {
            Some(t) => vec![t],
            None => return report(Err(format!("no target {:?}\n{}", options.what, usage()))),
        }
    };
    if options.worker {
        return match selected.first() {
            Some(t) => worker(*t, &options),
            None => ExitCode::FAILURE,
        };
    }
    let mut summaries = Vec::new();
    for t in &selected {
        match supervise(*t, &options) {
            Ok(summary) => summaries.push(summary),
            Err(message) => return report(Err(message)),
        }
    }
    println!();
    println!(
        "{:<18} {:>7} {:>12} {:>10} {:>10} {:>8} {:>5}  notes",
        "target", "seconds", "executions", "exec/s", "behaviours", "crashes", "slow"
    );
    let mut findings = 0;
    for s in &summaries {
        findings += s.crashes + s.slow;
        println!(
            "{:<18} {:>7.1} {:>12} {:>10.0} {:>10} {:>8} {:>5}  {}",
            s.target,
            s.seconds,
            s.execs,
            s.execs as f64 / s.seconds.max(0.001),
            s.behaviours,
            s.crashes,
            s.slow,
            s.note
        );
    }
    if findings > 0 {
        println!("\nfindings: {findings}; inputs in {}", options.artifacts.display());
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn report(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

#[derive(Debug, Default)]
struct Summary {
    target: String,
    seconds: f64,
    execs: u64,
    behaviours: u64,
    crashes: u64,
    slow: u64,
    note: String,
}

fn summary_line(s: &Summary) -> String {
    format!(
        "{} {} {} {} {} {}",
        s.seconds, s.execs, s.behaviours, s.crashes, s.slow, s.note
    )
}

fn parse_summary(target: &str, line: &str) -> Option<Summary> {
    let mut parts = line.splitn(6, ' ');
    Some(Summary {
        target: target.to_owned(),
        seconds: parts.next()?.parse().ok()?,
        execs: parts.next()?.parse().ok()?,
        behaviours: parts.next()?.parse().ok()?,
        crashes: parts.next()?.parse().ok()?,
        slow: parts.next()?.parse().ok()?,
        note: parts.next().unwrap_or_default().to_owned(),
    })
}

fn save(artifacts: &Path, target: &str, kind: &str, input: &[u8]) -> PathBuf {
    let dir = artifacts.join(target);
    let path = dir.join(format!("{kind}-{:016x}", fnv(input)));
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input)) {
        eprintln!("cannot save {}: {e}", path.display());
    }
    path
}

/// Runs `target` in a worker process and watches it.
fn supervise(target: Target, options: &Options) -> Result<Summary, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let mut child = Command::new(exe)
        .arg(target.name)
        .args(["--worker", "--seconds", &options.seconds.to_string()])
        .args([
            "--seed",
            &options.seed.to_string(),
            "--max-len",
            &options.max_len.to_string(),
        ])
        .arg("--corpus")
        .arg(&options.corpus)
        .arg("--artifacts")
        .arg(&options.artifacts)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the worker: {e}"))?;
    let pid = child.id();
    let mut stdout = child.stdout.take().ok_or("the worker has no stdout")?;
    let last = Arc::new(Mutex::new(Vec::new()));
    let frames = Arc::new(AtomicU64::new(0));
    let summary = Arc::new(Mutex::new(None::<String>));
    let reader = {
        let (last, frames, summary) = (last.clone(), frames.clone(), summary.clone());
        std::thread::spawn(move || {
            let mut head = [0u8; 5];
            while stdout.read_exact(&mut head).is_ok() {
                let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
                let mut bytes = vec![0u8; len];
                if stdout.read_exact(&mut bytes).is_err() {
                    break;
                }
                if head[0] == FRAME_SUMMARY {
                    *summary.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(String::from_utf8_lossy(&bytes).into_owned());
                } else {
                    *last.lock().unwrap_or_else(|e| e.into_inner()) = bytes;
                    frames.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    eprintln!("fuzzing {} for {} s", target.name, options.seconds);
    let started = Instant::now();
    let (mut seen, mut moved) = (0, Instant::now());
    let mut killed: Option<&str> = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(e) => return Err(format!("cannot watch the worker: {e}")),
        }
        std::thread::sleep(Duration::from_millis(50));
        let now = frames.load(Ordering::Relaxed);
        if now != seen {
            (seen, moved) = (now, Instant::now());
        }
        let rss = rss_mb(pid);
        let reason = if moved.elapsed() > HANG {
            Some("timeout")
        } else if rss > options.rss_mb {
            Some("oom")
        } else {
            None
        };
        if let Some(reason) = reason {
            let _ = child.kill();
            let _ = child.wait();
            killed = Some(reason);
            break None;
        }
    };
    let _ = reader.join();
    let elapsed = started.elapsed().as_secs_f64();
    let summary_text = summary.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let last = last.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match (killed, summary_text.and_then(|line| parse_summary(target.name, &line))) {
        (None, Some(summary)) => Ok(summary),
        (reason, _) => {
            // The worker died without reporting: the last input did it.
            let kind = reason.unwrap_or("crash");
            let path = save(&options.artifacts, target.name, kind, &last);
            let how = match (reason, status) {
                (Some(reason), _) => reason.to_owned(),
                (None, Some(status)) => format!("worker died: {status}"),
                (None, None) => "worker died".to_owned(),
            };
            eprintln!("{}: {how}; input saved to {}", target.name, path.display());
            Ok(Summary {
                target: target.name.to_owned(),
                seconds: elapsed,
                execs: frames.load(Ordering::Relaxed),
                behaviours: 0,
                crashes: 1,
                slow: 0,
                note: format!("{how} ({})", path.display()),
            })
        }
    }
}

/// The resident memory of process `pid`, in MB (0 when unknown).
fn rss_mb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn send(out: &mut impl Write, kind: u8, bytes: &[u8]) -> bool {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes();
    out.write_all(&[kind, len[0], len[1], len[2], len[3]]).is_ok()
        && out.write_all(bytes).is_ok()
        && out.flush().is_ok()
}

/// The worker: fuzzes one target and reports through stdout frames.
fn worker(target: Target, options: &Options) -> ExitCode {
    quiet_panics();
    let options = options.clone();
    let run = std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name))
        .stack_size(STACK)
        .spawn(move || fuzz(target, &options));
    match run.map(|handle| handle.join()) {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => ExitCode::from(1),
        _ => ExitCode::from(3),
    }
}

/// Fuzzes `target`; false when it found something.
fn fuzz(target: Target, options: &Options) -> bool {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let seeds = load_corpus(&options.corpus.join(target.name));
    if seeds.is_empty() {
        eprintln!(
            "{}: no seeds in {}",
            target.name,
            options.corpus.join(target.name).display()
        );
    }
    let mut pool: Vec<Vec<u8>> = seeds.iter().map(|(_, bytes)| bytes.clone()).collect();
    let words = words_of(&pool);
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    let mut rng = Prng::new(options.seed ^ fnv(target.name.as_bytes()));
    let mut behaviours = HashSet::new();
    let mut crashes: HashMap<String, PathBuf> = HashMap::new();
    let mut slow = 0u64;
    let mut execs = 0u64;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let mut queue: Vec<Vec<u8>> = pool.clone();
    queue.reverse();
    loop {
        let input = match queue.pop() {
            Some(seed) => seed,
            None => {
                if execs.is_multiple_of(64) && Instant::now() >= deadline {
                    break;
                }
                let mut input = pool[rng.index(pool.len())].clone();
                mutate(&mut input, &pool, &words, options.max_len, &mut rng);
                input
            }
        };
        if !send(&mut out, FRAME_INPUT, &input) {
            break;
        }
        let t0 = Instant::now();
        let result = run_one(&target, &input);
        let took = t0.elapsed();
        execs += 1;
        match result {
            Ok(fingerprint) => {
                if behaviours.insert(fingerprint) && pool.len() < POOL {
                    pool.push(input.clone());
                }
            }
            Err(message) => {
                if let std::collections::hash_map::Entry::Vacant(entry) = crashes.entry(message) {
                    let path = save(&options.artifacts, target.name, "crash", &input);
                    eprintln!(
                        "{}: panic: {}\n  input saved to {}",
                        target.name,
                        entry.key(),
                        path.display()
                    );
                    entry.insert(path);
                }
            }
        }
        if took > SLOW {
            slow += 1;
            let path = save(&options.artifacts, target.name, "slow", &input);
            eprintln!("{}: an input took {took:?}; saved to {}", target.name, path.display());
        }
    }
    let summary = Summary {
        target: target.name.to_owned(),
        seconds: started.elapsed().as_secs_f64(),
        execs,
        behaviours: behaviours.len() as u64,
        crashes: crashes.len() as u64,
        slow,
        note: if crashes.is_empty() {
            String::new()
        } else {
            crashes.keys().cloned().collect::<Vec<_>>().join("; ")
        },
    };
    send(&mut out, FRAME_SUMMARY, summary_line(&summary).as_bytes());
    crashes.is_empty() && slow == 0
}

/// Writes a MessagePack twin (named fields) of every JSON seed in `from`.
fn msgpack_seeds(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for (name, bytes) in load_corpus(from) {
        let value: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(_) => continue,
        };
        let packed = rmp_serde::to_vec_named(&value).map_err(|e| format!("{name}: {e}"))?;
        let out = to.join(name.replace(".json", ".msgpack"));
        std::fs::write(&out, packed).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    Ok(())
}
