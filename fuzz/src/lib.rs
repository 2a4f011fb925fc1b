//! Fuzz targets for every decoder of the vdm backend that faces the network,
//! and the pieces of the stable-toolchain driver (`vdm-fuzz`) that runs
//! them. See docs/FUZZING.md.

pub mod mutate;
pub mod targets;

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::Mutex;

pub use targets::{TARGETS, Target, fnv, target};

static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

/// Replaces the default panic hook (which prints every caught panic) by one
/// that keeps the last panic's message and location for the report.
pub fn quiet_panics() {
    panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = format!("{message} at {at}");
    }));
}

/// Runs one input; `Err` holds the panic's message and location.
pub fn run_one(target: &Target, input: &[u8]) -> Result<u64, String> {
    panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)))
        .map_err(|_| LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

/// The files of a corpus folder, sorted by name (missing folder: none).
pub fn load_corpus(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            std::fs::read(e.path()).ok().map(|bytes| (name, bytes))
        })
        .collect();
    files.sort();
    files
}

/// Where the repository's corpus and artifacts live.
pub fn fuzz_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
