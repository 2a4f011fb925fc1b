//! The gateway's top-level modules import each other without a cycle: each
//! `crate::<module>` path in a module's code (comments left out) is an edge,
//! and the graph must have a topological order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Names `lib.rs` re-exports, and the module each comes from.
const REEXPORTS: [(&str, &str); 5] = [
    ("GatewayConfig", "config"),
    ("SecretDefaults", "config"),
    ("GatewayError", "error"),
    ("GatewayResult", "error"),
    ("App", "startup"),
];

fn sources(path: &Path, found: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            sources(&entry.unwrap().path(), found);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        found.push(path.to_owned());
    }
}

/// The first segment of every `crate::` path in `code`, also inside
/// `crate::{a, b::c}`.
fn imported(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let group = match rest.strip_prefix('{') {
            Some(inner) => &inner[..inner.find('}').unwrap_or(inner.len())],
            None => rest,
        };
        for item in group.split(',') {
            let name: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let module = REEXPORTS
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(name, |(_, m)| (*m).to_owned());
            names.push(module);
            if rest.starts_with('{') {
                continue;
            }
            break;
        }
    }
    names
}

#[test]
fn the_top_level_modules_import_each_other_without_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || !(path.is_dir() || path.extension().is_some_and(|e| e == "rs")) {
            continue;
        }
        graph.insert(name, BTreeSet::new());
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for (module, imports) in graph.iter_mut() {
        let mut files = Vec::new();
        let dir = src.join(module);
        if dir.is_dir() {
            sources(&dir, &mut files);
        } else {
            files.push(src.join(format!("{module}.rs")));
        }
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            let code: String = text
                .lines()
                .map(|line| line.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            imports.extend(
                imported(&code)
                    .into_iter()
                    .filter(|m| m != module && modules.contains(m)),
            );
        }
    }
    // Kahn's algorithm: take modules that import nothing left, until none
    // is left or every remaining one imports another remaining one.
    let mut left = graph.clone();
    while let Some(free) = left
        .iter()
        .find(|(_, imports)| imports.is_empty())
        .map(|(m, _)| m.clone())
    {
        left.remove(&free);
        left.values_mut().for_each(|imports| {
            imports.remove(&free);
        });
    }
    assert!(
        left.is_empty(),
        "modules in or behind an import cycle: {left:?}\nthe whole graph: {graph:#?}"
    );
}
