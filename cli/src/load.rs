//! Reading `.rule` files and their imports, and running the front end (parse, check,
//! lower, validate) over them. `lang` does no IO: this module hands it text and a
//! resolver, which reads imports from the file system or from the bundled files.

use crate::{bundled, Error};
use lang::ast;
use lang::check::Program;
use lang::diag::Diagnostic;
use lang::ir::Module;
use lang::{FileId, Sources};
use std::path::{Component, Path, PathBuf};

/// Where the text of imported files comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The file system; names are paths.
    Fs,
    /// The files compiled into the binary ([`bundled::FILES`]).
    Bundled,
}

/// A set of sources rooted at one file, and where to find its imports.
#[derive(Debug)]
pub struct Session {
    /// Every file read so far; diagnostics point into these.
    pub sources: Sources,
    /// The file named on the command line (or the bundled network).
    pub root: FileId,
    origin: Origin,
}

/// The result of a successful check.
pub struct Checked {
    /// The root file and its imports, parsed.
    pub files: Vec<(FileId, ast::File)>,
    /// The checked program.
    pub program: Program,
}

impl Session {
    /// Reads the root file from disk; imports will be read relative to it.
    pub fn open(path: &Path) -> Result<Session, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Session::from_text(
            &path.display().to_string(),
            text,
            Origin::Fs,
        ))
    }

    /// The bundled network.
    pub fn bundled() -> Session {
        Session::bundled_at(bundled::ROOT)
    }

    /// The bundled file `name` (one of [`bundled::FILES`]).
    pub fn bundled_at(name: &str) -> Session {
        let text = bundled::get(name).unwrap_or_default();
        Session::from_text(name, text, Origin::Bundled)
    }

    /// A root file given as text.
    pub fn from_text(name: &str, text: impl Into<String>, origin: Origin) -> Session {
        let mut sources = Sources::new();
        let root = sources.add(name, text);
        Session {
            sources,
            root,
            origin,
        }
    }

    /// The root file's name.
    pub fn root_name(&self) -> &str {
        &self.sources.get(self.root).name
    }

    /// Parses the root file alone (imports are not followed).
    pub fn parse_root(&self) -> Result<ast::File, Vec<Diagnostic>> {
        lang::syntax::parse(&self.sources, self.root)
    }

    /// Parses the root file and, transitively, its imports.
    pub fn load(&mut self) -> Result<Vec<(FileId, ast::File)>, Vec<Diagnostic>> {
        let origin = self.origin;
        let mut resolve = |importer: &str, import: &str| resolve(origin, importer, import);
        lang::load(&mut self.sources, self.root, &mut resolve)
    }

    /// Loads and checks.
    pub fn check(&mut self) -> Result<Checked, Vec<Diagnostic>> {
        let files = self.load()?;
        let program = lang::check::check(&self.sources, &files)?;
        Ok(Checked { files, program })
    }

    /// Loads, checks, lowers one network and validates its IR. Diagnostics (warnings
    /// too) are rendered to `diag_out`; on errors the result is [`Error::Rejected`].
    pub fn module(
        &mut self,
        network: Option<&str>,
        diag_out: &mut dyn std::io::Write,
        color: bool,
    ) -> Result<Module, Error> {
        let checked = self.check().map_err(|d| self.reject(&d, diag_out, color))?;
        if !checked.program.warnings.is_empty() {
            write_diagnostics(&self.sources, &checked.program.warnings, diag_out, color)?;
        }
        let module = lang::lower::lower(&checked.program, network)
            .map_err(|d| self.reject(&d, diag_out, color))?;
        lang::validate::validate(&module).map_err(|e| Error::Invalid {
            network: module.name.clone(),
            message: e.to_string(),
        })?;
        Ok(module)
    }

    /// Like [`Session::module`], also returning the parsed files (to write rule text
    /// back, say).
    pub fn module_and_files(
        &mut self,
        network: Option<&str>,
        diag_out: &mut dyn std::io::Write,
        color: bool,
    ) -> Result<(Module, Vec<(FileId, ast::File)>), Error> {
        let files = self.load().map_err(|d| self.reject(&d, diag_out, color))?;
        let module = self.module(network, diag_out, color)?;
        Ok((module, files))
    }

    /// Renders diagnostics and turns them into the error that ends the command.
    pub fn reject(
        &self,
        diags: &[Diagnostic],
        diag_out: &mut dyn std::io::Write,
        color: bool,
    ) -> Error {
        if let Err(e) = write_diagnostics(&self.sources, diags, diag_out, color) {
            return e;
        }
        Error::Rejected {
            file: self.root_name().to_string(),
            errors: diags.iter().filter(|d| d.is_error()).count(),
        }
    }
}

/// Renders diagnostics to a stream.
pub fn write_diagnostics(
    sources: &Sources,
    diags: &[Diagnostic],
    out: &mut dyn std::io::Write,
    color: bool,
) -> Result<(), Error> {
    out.write_all(crate::render_diagnostics(sources, diags, color).as_bytes())
        .map_err(Error::Output)
}

/// Reads an import: `import` is relative to the directory of the importing file.
fn resolve(origin: Origin, importer: &str, import: &str) -> Result<(String, String), String> {
    let name = import_name(importer, import);
    match origin {
        Origin::Fs => match std::fs::read_to_string(&name) {
            Ok(text) => Ok((name, text)),
            Err(e) => Err(format!("cannot read `{name}`: {e}")),
        },
        Origin::Bundled => match bundled::get(&name) {
            Some(text) => Ok((name, text.to_string())),
            None => Err(format!("`{name}` is not one of the bundled files")),
        },
    }
}

/// The name of an imported file: the import path joined to the importer's directory,
/// with `.` and `..` removed lexically, so a file imported along two routes gets one
/// name (and is loaded once).
pub fn import_name(importer: &str, import: &str) -> String {
    let dir = Path::new(importer).parent().unwrap_or(Path::new(""));
    let joined = dir.join(import);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else if !matches!(
                    out.components().next_back(),
                    Some(Component::RootDir | Component::Prefix(_))
                ) {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_names_are_normalised() {
        assert_eq!(
            import_name("rules/networks/a.rule", "../neurons/lif.rule"),
            "rules/neurons/lif.rule"
        );
        assert_eq!(import_name("a.rule", "./b.rule"), "b.rule");
        assert_eq!(import_name("a.rule", "../b.rule"), "../b.rule");
        assert_eq!(import_name("/x/a.rule", "../../b.rule"), "/b.rule");
        assert_eq!(import_name("x/y/a.rule", "z/../b.rule"), "x/y/b.rule");
    }

    #[test]
    fn bundled_network_checks() {
        let mut used = std::collections::HashSet::new();
        for root in [bundled::ROOT, bundled::SEARCH_ROOT] {
            let mut session = Session::bundled_at(root);
            let checked = session.check().expect("the bundled network checks");
            for (id, _) in &checked.files {
                used.insert(session.sources.get(*id).name.clone());
            }
        }
        assert_eq!(
            used.len(),
            bundled::FILES.len(),
            "every bundled file is used"
        );
    }

    #[test]
    fn bundled_imports_resolve() {
        for (name, text) in bundled::FILES {
            for line in text.lines() {
                let Some(rest) = line.trim().strip_prefix("import \"") else {
                    continue;
                };
                let path = rest.split('"').next().unwrap_or_default();
                assert!(
                    bundled::get(&import_name(name, path)).is_some(),
                    "{name} imports {path}"
                );
            }
        }
    }
}
