//! Writing learned values back as rule text: a network with new initial values for
//! some of its parameters, as one self-contained `.rule` file.
//!
//! The output holds every model of the loaded files (imports dropped, so it runs from
//! any directory) and the chosen network, in which each given parameter gets its value
//! as an override: a shared dimensionless or time-valued scalar as a literal
//! (`eta = 0.1234`, `tau = 21.5 ms`: exact, floats print in their shortest round-trip
//! form), anything else as `from "values.json"` (see [`crate::values`]). Comments of the
//! original files are not kept.

use crate::ast::{Expr, ExprKind, File, Ident, Init, Item, NetArg, NetMember, Network, Unit};
use crate::source::{FileId, Span};
use crate::values::Values;

/// The text of network `network` (from `files`, as [`crate::load`] returns them) with
/// the values of `values` (by qualified name) as its parameters' initial values;
/// non-scalar values are read from `values_path` (relative to the written file).
/// `header` lines are written first as `//` comments. Errors name a value that
/// matches no parameter of the network.
pub fn rule_with_values(
    files: &[(FileId, File)],
    network: &str,
    values: &Values,
    values_path: &str,
    header: &[String],
) -> Result<String, String> {
    rule_text(files, network, header, |net| {
        for (name, entry) in &values.params {
            let scalar = entry.data.len() == 1 && entry.shape.is_empty();
            let init = if scalar && matches!(entry.unit, 0 | 1) {
                let unit = (entry.unit == 1).then_some(Unit::Ms);
                Init::Expr(Expr {
                    kind: ExprKind::Num(entry.data[0], unit),
                    span: Span::default(),
                })
            } else {
                Init::File {
                    path: values_path.to_string(),
                    span: Span::default(),
                }
            };
            set_init(net, name, init)?;
        }
        Ok(())
    })
}

/// The self-contained text of network `network` of `files` (every model, no imports)
/// after `edit`, with `header` lines as `//` comments first.
pub fn rule_text(
    files: &[(FileId, File)],
    network: &str,
    header: &[String],
    edit: impl FnOnce(&mut Network) -> Result<(), String>,
) -> Result<String, String> {
    let mut items = Vec::new();
    let mut net: Option<Network> = None;
    for (_, f) in files {
        for item in &f.items {
            match item {
                Item::Import(_) => {}
                Item::Model(m) => items.push(Item::Model(m.clone())),
                Item::Network(n) if n.name.name == network => net = Some(n.clone()),
                Item::Network(_) => {}
            }
        }
    }
    let mut net = net.ok_or_else(|| format!("no network named `{network}`"))?;
    edit(&mut net)?;
    items.push(Item::Network(net));
    let mut out = String::new();
    for line in header {
        out += &format!("// {line}\n");
    }
    if !header.is_empty() {
        out.push('\n');
    }
    out += &File { items }.to_string();
    Ok(out)
}

/// Sets the size of the input or population `name` of `net`.
pub fn set_size(net: &mut Network, name: &str, new: usize) -> Result<(), String> {
    for m in &mut net.members {
        match m {
            NetMember::Input { name: n, size, .. }
            | NetMember::Population { name: n, size, .. }
                if n.name == name =>
            {
                *size = new;
                return Ok(());
            }
            _ => {}
        }
    }
    Err(format!(
        "network `{}` has no input or population `{name}`",
        net.name.name
    ))
}

/// Gives the parameter `qualified` (`pop.p`, `proj.p` or a network-level name) of
/// `net` the initial value `init`.
fn set_init(net: &mut Network, qualified: &str, init: Init) -> Result<(), String> {
    let upsert = |args: &mut Vec<NetArg>, param: &str, init: Init| match args
        .iter_mut()
        .find(|a| a.name.name == param)
    {
        Some(a) => a.init = init,
        None => args.push(NetArg {
            name: Ident {
                name: param.to_string(),
                span: Span::default(),
            },
            init,
        }),
    };
    match qualified.split_once('.') {
        None => {
            for m in &mut net.members {
                if let NetMember::Param(p) = m {
                    if p.name.name == qualified {
                        p.init = init;
                        return Ok(());
                    }
                }
            }
        }
        Some((owner, param)) => {
            for m in &mut net.members {
                match m {
                    NetMember::Population { name, args, .. } if name.name == owner => {
                        upsert(args, param, init);
                        return Ok(());
                    }
                    NetMember::Projection(p) if p.name.name == owner => {
                        upsert(&mut p.args, param, init);
                        return Ok(());
                    }
                    _ => {}
                }
            }
        }
    }
    Err(format!(
        "network `{}` has no parameter `{qualified}`",
        net.name.name
    ))
}
