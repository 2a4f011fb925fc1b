//! Scrape targets: the services whose `/metrics` the scraper reads, as
//! configured in `VDM_METRICS_TARGETS` (`name=url,name=url`).

/// One service's `/metrics` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The service's name (`gateway`, `quest`, ...): the label of its
    /// snapshots, and the package its RPCs are counted under.
    pub name: String,
    /// An `http://` URL of its Prometheus text.
    pub url: String,
}

/// Checks a service name: 1 to 32 characters of `[a-z0-9_-]`, starting
/// with a letter.
pub fn valid_service_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Parses `name=url` pairs separated by commas (or whitespace); the error
/// names the bad entry.
pub fn parse_targets(raw: &str) -> Result<Vec<Target>, String> {
    let mut targets: Vec<Target> = Vec::new();
    for entry in raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
    {
        let Some((name, url)) = entry.split_once('=') else {
            return Err(format!("{entry:?}: expected name=url"));
        };
        if !valid_service_name(name) {
            return Err(format!(
                "{entry:?}: the name must be 1 to 32 characters of [a-z0-9_-], starting with a letter"
            ));
        }
        let rest = url.strip_prefix("http://").unwrap_or("");
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("{entry:?}: the url must be http://host:port/path"));
        }
        if targets.iter().any(|t| t.name == name) {
            return Err(format!("{name:?} is listed twice"));
        }
        targets.push(Target {
            name: name.to_owned(),
            url: url.to_owned(),
        });
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_pairs_and_names_the_bad_entry() {
        let targets = parse_targets("quest=http://quest:9090/metrics,gateway=http://127.0.0.1:8080/metrics").unwrap();
        assert_eq!(targets[0].name, "quest");
        assert_eq!(targets[1].url, "http://127.0.0.1:8080/metrics");
        assert!(parse_targets("").unwrap().is_empty());
        assert!(parse_targets("quest").unwrap_err().contains("\"quest\""));
        assert!(parse_targets("Quest=http://q/metrics").is_err());
        assert!(parse_targets("quest=https://q/metrics").is_err());
        assert!(parse_targets("quest=http:///metrics").is_err());
        assert!(
            parse_targets("a=http://x/m,a=http://y/m")
                .unwrap_err()
                .contains("twice")
        );
    }
}
