//! The ruleopt rule language: text -> AST -> checked program -> IR, and the reference
//! interpreter that gives the IR its meaning.
//!
//! Central design decision: the IR ([`ir`]) is a pure, hash-consed dataflow graph of one
//! time step over explicit index spaces. The language's sequential statements, ODE
//! integrators, resets, refractoriness and "on spike" forms are all lowered to values
//! in that graph, so the interpreter, symbolic differentiation and the JIT each deal
//! with one small set of nodes.
//!
//! This crate does no IO (callers pass text and a resolver for imports), has no unsafe
//! code and knows nothing of Cranelift.
#![warn(missing_docs)]

pub mod algebra;
pub mod ast;
pub mod check;
pub mod diag;
pub mod diff;
pub mod fill;
pub mod grad;
pub mod init;
pub mod interp;
pub mod ir;
pub mod learned;
pub mod lower;
pub mod print;
pub mod source;
pub mod syntax;
pub mod validate;
pub mod values;

pub use diag::Diagnostic;
pub use source::{FileId, Sources, Span};

/// Finds an imported file: `(importer name, import path) -> (name, text)` or why not.
pub type Resolver<'a> = dyn FnMut(&str, &str) -> Result<(String, String), String> + 'a;

/// Parses `root` and, transitively, every file it imports. `resolve(importer, path)`
/// returns the imported file's name and text (the CLI reads files; tests use maps).
/// The values files that `from "..."` initial values name are read the same way and
/// linked in `sources` (they are parsed by the checker).
/// Each file is parsed once, whatever the number of imports that reach it; files come
/// back in the order they were reached, the root first.
pub fn load(
    sources: &mut Sources,
    root: FileId,
    resolve: &mut Resolver<'_>,
) -> Result<Vec<(FileId, ast::File)>, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut queue = vec![root];
    let mut seen = std::collections::HashSet::from([root]);
    while let Some(id) = queue.pop() {
        match syntax::parse(sources, id) {
            Ok(file) => {
                for item in &file.items {
                    let ast::Item::Import(imp) = item else {
                        continue;
                    };
                    let importer = sources.get(id).name.clone();
                    match resolve(&importer, &imp.path) {
                        Ok((name, text)) => {
                            let fid = match sources.find(&name) {
                                Some(f) => f,
                                None => sources.add(name, text),
                            };
                            if seen.insert(fid) {
                                queue.insert(0, fid);
                            }
                        }
                        Err(why) => errors.push(Diagnostic::error(
                            imp.span,
                            format!("cannot import \"{}\": {why}", imp.path),
                        )),
                    }
                }
                for (path, span) in file.data_files() {
                    if sources.linked(id, path).is_some() {
                        continue;
                    }
                    let importer = sources.get(id).name.clone();
                    match resolve(&importer, path) {
                        Ok((name, text)) => {
                            let fid = match sources.find(&name) {
                                Some(f) => f,
                                None => sources.add(name, text),
                            };
                            sources.link(id, path, fid);
                        }
                        Err(why) => errors.push(Diagnostic::error(
                            span,
                            format!("cannot read \"{path}\": {why}"),
                        )),
                    }
                }
                out.push((id, file));
            }
            Err(d) => errors.extend(d),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
