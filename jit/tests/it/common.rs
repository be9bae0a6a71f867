//! Loading `.rule` files from disk, as the CLI does.

use lang::ir::Module;
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Loads, checks and lowers `text` (named `name`, imports relative to the repo root).
pub fn lower_text(name: &str, text: &str, network: Option<&str>) -> Module {
    let mut sources = lang::Sources::new();
    let root = sources.add(name, text);
    let mut resolve = |importer: &str, path: &str| -> Result<(String, String), String> {
        let dir = Path::new(importer).parent().unwrap_or(Path::new(""));
        let mut parts: Vec<String> = Vec::new();
        for c in dir.join(path).components() {
            match c {
                std::path::Component::ParentDir => {
                    parts.pop();
                }
                std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
                _ => {}
            }
        }
        let rel = parts.join("/");
        let text = std::fs::read_to_string(repo().join(&rel)).map_err(|e| e.to_string())?;
        Ok((rel, text))
    };
    let files =
        lang::load(&mut sources, root, &mut resolve).unwrap_or_else(|d| panic!("{name}: {d:?}"));
    let prog = lang::check::check(&sources, &files).unwrap_or_else(|d| panic!("{name}: {d:?}"));
    lang::lower::lower(&prog, network).unwrap_or_else(|d| panic!("{name}: {d:?}"))
}

/// Loads a repo file and lowers its network.
pub fn lower_file(rel: &str) -> Module {
    lower_text(
        rel,
        &std::fs::read_to_string(repo().join(rel)).unwrap(),
        None,
    )
}

/// The network files of the corpus, without holes.
pub fn network_files() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(repo().join("rules/networks"))
        .unwrap()
        .map(|e| {
            format!(
                "rules/networks/{}",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .filter(|f| f.ends_with(".rule") && !f.contains("hole"))
        .collect();
    out.sort();
    out
}
