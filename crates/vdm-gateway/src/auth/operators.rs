//! Operator credentials: named admin tokens, several at once, rotatable
//! without a restart.
//!
//! `VDM_ADMIN_TOKEN` is the credential named `admin`. `VDM_ADMIN_TOKENS_FILE`
//! names a file of further credentials, one `name token` pair a line (`#`
//! starts a comment); the file is read again whenever it changes (checked
//! every few seconds), so an operator rotates a credential by adding the new
//! one, moving clients over, and deleting the old line: in Kubernetes, by
//! editing the Secret mounted as that file. The name of the credential a
//! request used is what logs and traces show (`operator.name`), never the
//! token.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use subtle::ConstantTimeEq;
use vdm_kit::config::Secret;
use vdm_kit::shutdown::CancellationToken;

/// How often the credentials file is checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// The shortest token accepted (the same rule as `VDM_ADMIN_TOKEN`).
pub const MIN_TOKEN_LEN: usize = 16;

/// One named credential (its token prints masked).
#[derive(Clone, Debug)]
struct Credential {
    name: Arc<str>,
    token: Secret,
}

/// The operator credentials in force.
pub struct Operators {
    fixed: Credential,
    file: Option<PathBuf>,
    from_file: RwLock<FileState>,
}

#[derive(Default)]
struct FileState {
    modified: Option<SystemTime>,
    credentials: Vec<Credential>,
}

/// Why a credentials file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct FileError {
    path: String,
    problem: String,
}

impl Operators {
    /// The `admin` credential and, when given, the credentials file (read
    /// now: a bad file stops start-up).
    pub fn new(admin_token: Secret, file: Option<PathBuf>) -> Result<Operators, FileError> {
        let operators = Operators {
            fixed: Credential {
                name: Arc::from("admin"),
                token: admin_token,
            },
            file,
            from_file: RwLock::new(FileState::default()),
        };
        if let Some(path) = &operators.file {
            let credentials = read_file(path)?;
            let mut state = operators.from_file.write().unwrap_or_else(|e| e.into_inner());
            state.modified = modified(path);
            state.credentials = credentials;
        }
        Ok(operators)
    }

    /// The name of the credential `token` is, if it is one.
    ///
    /// Every credential is compared, each in constant time, so the time
    /// taken does not tell how much of a guess was right, nor which
    /// credential it was close to.
    pub fn name_of(&self, token: &str) -> Option<Arc<str>> {
        let token = token.as_bytes();
        let mut found = None;
        if bool::from(self.fixed.token.expose().as_bytes().ct_eq(token)) {
            found = Some(self.fixed.name.clone());
        }
        let state = self.from_file.read().unwrap_or_else(|e| e.into_inner());
        for credential in &state.credentials {
            if bool::from(credential.token.expose().as_bytes().ct_eq(token)) {
                found = Some(credential.name.clone());
            }
        }
        found
    }

    /// Reads the file again if it changed; a file that became unreadable
    /// or invalid keeps the credentials last read (and says so).
    pub fn reload(&self) {
        let Some(path) = &self.file else { return };
        let now = modified(path);
        {
            let state = self.from_file.read().unwrap_or_else(|e| e.into_inner());
            if now == state.modified {
                return;
            }
        }
        match read_file(path) {
            Ok(credentials) => {
                let names: Vec<&str> = credentials.iter().map(|c| &*c.name).collect();
                tracing::info!(credentials = ?names, "operator credentials reloaded");
                let mut state = self.from_file.write().unwrap_or_else(|e| e.into_inner());
                state.modified = now;
                state.credentials = credentials;
            }
            Err(err) => {
                tracing::error!(error = %err, "operator credentials file refused; keeping the previous credentials");
                let mut state = self.from_file.write().unwrap_or_else(|e| e.into_inner());
                state.modified = now;
            }
        }
    }

    /// Checks the file for changes every [`RELOAD_EVERY`] until `shutdown`.
    pub fn spawn_reloader(self: Arc<Self>, shutdown: CancellationToken) {
        if self.file.is_none() {
            return;
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => self.reload(),
                }
            }
        });
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read_file(path: &Path) -> Result<Vec<Credential>, FileError> {
    let fail = |problem: String| FileError {
        path: path.display().to_string(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    parse(&text).map_err(fail)
}

fn parse(text: &str) -> Result<Vec<Credential>, String> {
    let mut credentials: Vec<Credential> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = index + 1;
        let mut words = line.split_whitespace();
        let (Some(name), Some(token), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("line {n}: expected `name token`"));
        };
        if name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return Err(format!("line {n}: a name is 1 to 64 letters, digits, '-', '_' or '.'"));
        }
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "line {n}: the token of {name:?} is shorter than {MIN_TOKEN_LEN} characters"
            ));
        }
        if credentials.iter().any(|c| &*c.name == name) {
            return Err(format!("line {n}: {name:?} appears twice"));
        }
        credentials.push(Credential {
            name: Arc::from(name),
            token: Secret::new(token.to_owned()),
        });
    }
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn credentials_are_named_and_the_file_is_reloaded() {
        let dir = std::env::temp_dir().join(format!("vdm-operators-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tokens");
        std::fs::write(&file, "# ops\nalice alice-token-0123456789\n").unwrap();
        let operators = Operators::new(Secret::new("admin-token-0123456789"), Some(file.clone())).unwrap();
        assert_eq!(operators.name_of("admin-token-0123456789").as_deref(), Some("admin"));
        assert_eq!(operators.name_of("alice-token-0123456789").as_deref(), Some("alice"));
        assert_eq!(operators.name_of("alice-token-012345678"), None);

        // Rotation: the new line in, the old one out, no restart.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&file, "bob bob-token-0123456789abc\n").unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        let handle = std::fs::File::options().write(true).open(&file).unwrap();
        handle.set_modified(later).unwrap();
        operators.reload();
        assert_eq!(operators.name_of("alice-token-0123456789"), None);
        assert_eq!(operators.name_of("bob-token-0123456789abc").as_deref(), Some("bob"));

        // A broken file keeps what was read before.
        std::fs::write(&file, "carol short\n").unwrap();
        handle.set_modified(later + Duration::from_secs(5)).unwrap();
        operators.reload();
        assert_eq!(operators.name_of("bob-token-0123456789abc").as_deref(), Some("bob"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_lines_are_named() {
        assert!(parse("a b c").unwrap_err().contains("line 1"));
        assert!(parse("\nx short").unwrap_err().contains("line 2"));
        assert!(
            parse("x 0123456789abcdef\nx 0123456789abcdeg")
                .unwrap_err()
                .contains("twice")
        );
        assert!(parse("bad/name 0123456789abcdef").is_err());
    }
}
