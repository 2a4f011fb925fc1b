//! Secrets and identifiers an attacker must not guess.
//!
//! Everything here comes from the operating system's CSPRNG, and fails
//! rather than falling back to anything weaker: a session id or a resume
//! token that could be predicted is worse than a refused sign-in.

/// The operating system's random source failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random source failed: {0}")]
pub struct RandomError(String);

/// A lowercase hex token of `bytes` random bytes (`2 * bytes` characters).
pub fn random_token(bytes: usize) -> Result<String, RandomError> {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).map_err(|e| RandomError(e.to_string()))?;
    Ok(hex(&raw))
}

/// `bytes` random bytes.
pub fn random_bytes(bytes: usize) -> Result<Vec<u8>, RandomError> {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).map_err(|e| RandomError(e.to_string()))?;
    Ok(raw)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn tokens_are_hex_of_the_asked_length_and_differ() {
        let a = random_token(16).unwrap();
        let b = random_token(16).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}
