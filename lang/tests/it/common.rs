//! Loading `.rule` files from disk or from strings, as the CLI does.

use lang::check::Program;
use lang::ir::Module;
use lang::{Diagnostic, Sources};
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Loads and checks a file (path relative to the repo root), resolving imports from disk.
pub fn load_file(rel: &str) -> (Sources, Result<Program, Vec<Diagnostic>>) {
    let path = repo().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    load_text(rel, &text)
}

/// Loads and checks text named `name`; imports resolve relative to the repo root.
pub fn load_text(name: &str, text: &str) -> (Sources, Result<Program, Vec<Diagnostic>>) {
    let mut sources = Sources::new();
    let root = sources.add(name, text);
    let mut resolve = |importer: &str, path: &str| -> Result<(String, String), String> {
        let dir = Path::new(importer).parent().unwrap_or(Path::new(""));
        let rel = normalize(&dir.join(path));
        let text = std::fs::read_to_string(repo().join(&rel)).map_err(|e| e.to_string())?;
        Ok((rel, text))
    };
    let files = match lang::load(&mut sources, root, &mut resolve) {
        Ok(f) => f,
        Err(d) => return (sources, Err(d)),
    };
    let prog = lang::check::check(&sources, &files);
    (sources, prog)
}

fn normalize(p: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

/// Plain-text rendering of diagnostics: `file:line:col: message` plus the line and a caret.
pub fn render(sources: &Sources, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let sp = d.span();
        let f = sources.get(sp.file);
        let (line, col) = sources.line_col(sp.file, sp.start);
        out += &format!("{}:{line}:{col}: {}\n", f.name, d.message);
        if let Some(text) = f.text.lines().nth(line - 1) {
            out += &format!("  | {text}\n  | {}^\n", " ".repeat(col - 1));
        }
        for n in &d.notes {
            out += &format!("  = {n}\n");
        }
    }
    out
}

/// Loads, checks and lowers; panics with rendered diagnostics on error.
pub fn module_text(name: &str, text: &str) -> Module {
    let (sources, prog) = load_text(name, text);
    let prog = prog.unwrap_or_else(|d| panic!("{}", render(&sources, &d)));
    let m = lang::lower::lower(&prog, None).unwrap_or_else(|d| panic!("{}", render(&sources, &d)));
    lang::validate::validate(&m).unwrap_or_else(|e| panic!("invalid IR: {e}\n{m}"));
    m
}

/// The network files of the corpus that can run (no holes).
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
