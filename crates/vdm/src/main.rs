//! `vdm`: run every service and the gateway in one process (`vdm all`, the
//! default), or one of them (`vdm gateway`, `vdm quest`, `vdm npc`,
//! `vdm world`), or migrate a service's database (`vdm migrate <service>`).

use std::process::ExitCode;

// The request path allocates many small, short-lived buffers across
// threads; mimalloc serves them faster than glibc's malloc
// (docs/history/PERFORMANCE-log.md has the side-by-side numbers).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let command = match vdm::Command::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("{message}\n\n{}", vdm::USAGE);
            return ExitCode::from(2);
        }
    };
    match vdm::run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vdm: {}", vdm::error_chain(&err));
            ExitCode::FAILURE
        }
    }
}
