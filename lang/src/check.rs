//! Checking: collects the models and networks of a set of parsed files, and checks
//! every one of them by lowering it (models on their own, against open stand-in
//! neighbours; networks for real). Lowering is where names, units, spaces, arities and
//! cycles are resolved, so checking and lowering can never disagree.

use crate::ast::{File, Item, Model, ModelKind, Network};
use crate::diag::{did_you_mean, Diagnostic};
use crate::source::{FileId, Sources};
use crate::values::Values;
use std::collections::HashMap;
use std::sync::Arc;

/// Values files by (file, path as written in its `from`); `None` for a file that
/// failed to parse (reported).
pub type ValuesFiles = HashMap<(FileId, String), Option<Arc<Values>>>;

/// A checked set of files: every model and network in it lowers without error.
#[derive(Clone, Debug)]
pub struct Program {
    /// Models by name.
    pub models: HashMap<String, Model>,
    /// Networks in file order (root file first), with the file each comes from.
    pub networks: Vec<(FileId, Network)>,
    /// Model names in file order.
    pub model_order: Vec<String>,
    /// Things worth saying that are not errors.
    pub warnings: Vec<Diagnostic>,
    /// The values files of `from "..."` initial values, by (file, path as written);
    /// `None` for a file that failed to parse (reported).
    pub values: ValuesFiles,
}

impl Program {
    /// Names of the networks, in file order.
    pub fn network_names(&self) -> Vec<String> {
        self.networks
            .iter()
            .map(|(_, n)| n.name.name.clone())
            .collect()
    }
    /// A model by name.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.get(name)
    }
    /// Number of neuron models and synapse rules.
    pub fn model_counts(&self) -> (usize, usize) {
        let n = self
            .models
            .values()
            .filter(|m| m.kind == ModelKind::Neuron)
            .count();
        (n, self.models.len() - n)
    }
}

/// Collects the items of `files` (the root first) and checks them all. Returns every
/// error found, not just the first.
pub fn check(sources: &Sources, files: &[(FileId, File)]) -> Result<Program, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut prog = Program {
        models: HashMap::new(),
        networks: Vec::new(),
        model_order: Vec::new(),
        warnings: Vec::new(),
        values: HashMap::new(),
    };
    let mut parsed: HashMap<FileId, Option<Arc<Values>>> = HashMap::new();
    for (file, ast) in files {
        for (path, span) in ast.data_files() {
            let Some(fid) = sources.linked(*file, path) else {
                diags.push(Diagnostic::error(
                    span,
                    format!("the values file \"{path}\" was not loaded"),
                ));
                continue;
            };
            let v =
                parsed
                    .entry(fid)
                    .or_insert_with(|| match Values::parse(&sources.get(fid).text) {
                        Ok(v) => Some(Arc::new(v)),
                        Err(msg) => {
                            diags.push(Diagnostic::error(
                                span,
                                format!("bad values file \"{path}\": {msg}"),
                            ));
                            None
                        }
                    });
            prog.values.insert((*file, path.to_string()), v.clone());
        }
    }
    let mut net_names: HashMap<String, crate::source::Span> = HashMap::new();
    for (file, ast) in files {
        for item in &ast.items {
            match item {
                Item::Import(_) => {}
                Item::Model(m) => {
                    if let Some(prev) = prog.models.get(&m.name.name) {
                        diags.push(
                            Diagnostic::error(
                                m.name.span,
                                format!("`{}` is defined twice", m.name.name),
                            )
                            .with_secondary(prev.name.span, "first defined here"),
                        );
                    } else {
                        prog.model_order.push(m.name.name.clone());
                        prog.models.insert(m.name.name.clone(), m.clone());
                    }
                }
                Item::Network(n) => {
                    if let Some(prev) = net_names.get(&n.name.name) {
                        diags.push(
                            Diagnostic::error(
                                n.name.span,
                                format!("network `{}` is defined twice", n.name.name),
                            )
                            .with_secondary(*prev, "first defined here"),
                        );
                    } else {
                        net_names.insert(n.name.name.clone(), n.name.span);
                        prog.networks.push((*file, n.clone()));
                    }
                }
            }
        }
    }
    for name in &prog.model_order {
        let m = &prog.models[name];
        match crate::lower::lower_model_alone(m) {
            Ok(w) => prog.warnings.extend(w),
            Err(d) => diags.extend(d),
        }
    }
    for (_, n) in &prog.networks {
        if let Err(d) = crate::lower::lower_network(&prog, n) {
            diags.extend(d);
        }
    }
    if diags.is_empty() {
        Ok(prog)
    } else {
        diags.sort_by_key(|d| (d.span().file, d.span().start));
        diags.dedup();
        Err(diags)
    }
}

/// The network to run: by name, or the last network of the root file.
pub fn pick_network<'p>(prog: &'p Program, name: Option<&str>) -> Result<&'p Network, String> {
    match name {
        Some(n) => prog
            .networks
            .iter()
            .map(|(_, x)| x)
            .find(|x| x.name.name == n)
            .ok_or_else(|| {
                let names = prog.network_names();
                let hint = did_you_mean(n, names.iter().map(String::as_str))
                    .map_or(String::new(), |h| format!(" ({h})"));
                format!(
                    "no network named `{n}`{hint}; networks: {}",
                    names.join(", ")
                )
            }),
        None => {
            let root = prog.networks.first().map(|(f, _)| *f);
            prog.networks
                .iter()
                .filter(|(f, _)| Some(*f) == root)
                .map(|(_, n)| n)
                .next_back()
                .ok_or_else(|| {
                    "no network in this file: a file to simulate needs a `network { ... }` block"
                        .to_string()
                })
        }
    }
}
