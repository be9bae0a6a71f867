//! The abstract syntax tree: exactly what was written, with spans. Produced by
//! [`crate::syntax`], consumed by [`crate::check`] and [`crate::lower`]; printed back
//! as text by [`File::fmt`](std::fmt::Display) (used by `ruleopt compile --emit ast`).

use crate::source::Span;

/// A name as written, with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The text of the name.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// A parsed `.rule` file.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    /// Items in source order.
    pub items: Vec<Item>,
}

impl File {
    /// Every initial value in the file: of model parameters and states, network
    /// parameters, and population and projection overrides.
    pub fn inits(&self) -> Vec<&Init> {
        let mut out = Vec::new();
        for item in &self.items {
            match item {
                Item::Import(_) => {}
                Item::Model(m) => {
                    for mem in &m.members {
                        match mem {
                            Member::Param(p) => out.push(&p.init),
                            Member::State(s) => out.extend(s.init.as_ref()),
                            _ => {}
                        }
                    }
                }
                Item::Network(n) => {
                    for mem in &n.members {
                        match mem {
                            NetMember::Param(p) => out.push(&p.init),
                            NetMember::Population { args, .. } => {
                                out.extend(args.iter().map(|a| &a.init))
                            }
                            NetMember::Projection(p) => out.extend(p.args.iter().map(|a| &a.init)),
                            _ => {}
                        }
                    }
                }
            }
        }
        out
    }

    /// The values files named by `from "..."` initial values: (path, span of `from`).
    pub fn data_files(&self) -> Vec<(&str, Span)> {
        self.inits()
            .into_iter()
            .filter_map(|i| match i {
                Init::File { path, span } => Some((path.as_str(), *span)),
                _ => None,
            })
            .collect()
    }
}

/// A top-level item.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `import "path";`
    Import(Import),
    /// `neuron N { ... }` or `synapse S { ... }`
    Model(Model),
    /// `network N { ... }`
    Network(Network),
}

/// `import "path";`: the path is relative to the importing file.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    /// The path between the quotes.
    pub path: String,
    /// The whole item.
    pub span: Span,
}

/// Whether a model is a neuron model or a synapse (plasticity) rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// `neuron`
    Neuron,
    /// `synapse`
    Synapse,
}

/// A neuron model or synapse rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// Neuron or synapse.
    pub kind: ModelKind,
    /// Its name.
    pub name: Ident,
    /// Declarations and statements in source order.
    pub members: Vec<Member>,
    /// The whole item.
    pub span: Span,
}

/// One declaration or statement inside a model.
#[derive(Clone, Debug, PartialEq)]
pub enum Member {
    /// `param`/`learn` declaration.
    Param(ParamDecl),
    /// `state` declaration.
    State(StateDecl),
    /// `input I, J;`
    Input(Vec<Ident>),
    /// `modulator m;`
    Modulator(Vec<Ident>),
    /// `output y;`
    Output(Ident),
    /// `spike z when a > b surrogate f(...);`
    Spike(SpikeDecl),
    /// `reset { ... }`
    Reset(Vec<Stmt>, Span),
    /// `refractory expr;`
    Refractory(Expr),
    /// `weight = expr;`
    Weight(Expr),
    /// An update statement.
    Stmt(Stmt),
}

/// `param NAME[SPACE] = EXPR in [LO, HI];` or `learn NAME[SPACE] ~ DIST(...);`
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    /// `learn` (meta-parameter tuned by the outer loop) or fixed `param`.
    pub learn: bool,
    /// Its name.
    pub name: Ident,
    /// Index space (`neuron`, `pre`, `post`, `synapse`, or a population); none = shared.
    pub space: Option<Ident>,
    /// Initial value or initializer.
    pub init: Init,
    /// Optional bounds `in [lo, hi]`.
    pub bounds: Option<(Expr, Expr)>,
    /// The whole declaration.
    pub span: Span,
}

/// An initial value: an expression, or a random initializer.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// `= expr`
    Expr(Expr),
    /// `~ normal(mean, sd)` / `~ uniform(lo, hi)`
    Dist(Call),
    /// `from "values.json"`: the values stored under the variable's qualified name in a
    /// JSON file (path relative to this file).
    File {
        /// The path between the quotes.
        path: String,
        /// `from "..."`.
        span: Span,
    },
}

/// `state NAME[SPACE] = INIT clip [LO, HI];`
#[derive(Clone, Debug, PartialEq)]
pub struct StateDecl {
    /// Its name.
    pub name: Ident,
    /// Index space; none = the model's own (neuron or synapse).
    pub space: Option<Ident>,
    /// Initial value; a state without one must be assigned before it is read.
    pub init: Option<Init>,
    /// Clipping applied after every update.
    pub clip: Option<(Expr, Expr)>,
    /// The whole declaration.
    pub span: Span,
}

/// Comparison operators (spike conditions and 0/1 comparisons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

/// `spike z when lhs > rhs surrogate f(...);`
#[derive(Clone, Debug, PartialEq)]
pub struct SpikeDecl {
    /// Name of the spike indicator (0/1).
    pub name: Ident,
    /// Left side of the condition.
    pub lhs: Expr,
    /// Comparison.
    pub op: CmpOp,
    /// Right side of the condition.
    pub rhs: Expr,
    /// Surrogate derivative; none = the documented default.
    pub surrogate: Option<Call>,
    /// The whole declaration.
    pub span: Span,
}

/// `=`, `+=`, `-=`, `*=`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`
    Set,
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
}

/// An update statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `let x = e;`
    Let {
        /// The temporary's name.
        name: Ident,
        /// Its value.
        value: Expr,
        /// The whole statement.
        span: Span,
    },
    /// `x op= e;`
    Assign {
        /// The state assigned.
        target: Ident,
        /// Operator.
        op: AssignOp,
        /// Right-hand side.
        value: Expr,
        /// The whole statement.
        span: Span,
    },
    /// `dx/dt = e using method;`
    Ode {
        /// The state integrated.
        var: Ident,
        /// Right-hand side.
        rhs: Expr,
        /// Integrator: `exact`, `exp_euler`, `euler`; none = automatic.
        method: Option<Ident>,
        /// The whole statement.
        span: Span,
    },
    /// `on pre { ... }` / `on post { ... }` / `on z { ... }`: statements gated by a spike.
    On {
        /// The gating spike (`pre`, `post`, or a spike name).
        who: Ident,
        /// The gated statements.
        body: Vec<Stmt>,
        /// The whole statement.
        span: Span,
    },
}

impl Stmt {
    /// The span of the whole statement.
    pub fn span(&self) -> Span {
        match self {
            Stmt::Let { span, .. }
            | Stmt::Assign { span, .. }
            | Stmt::Ode { span, .. }
            | Stmt::On { span, .. } => *span,
        }
    }
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    /// `-x`
    Neg,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `^`
    Pow,
    /// comparison, 0 or 1
    Cmp(CmpOp),
}

/// Time units on literals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// milliseconds (the base unit of time)
    Ms,
    /// seconds
    S,
    /// hertz (1/s)
    Hz,
}

/// An expression with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it was written.
    pub span: Span,
}

/// The kinds of expression.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A literal, with an optional time unit.
    Num(f64, Option<Unit>),
    /// A name or dotted path: `v`, `pre.out`, `rec.v`.
    Path(Vec<Ident>),
    /// `-x`
    Unary(UnOp, Box<Expr>),
    /// `a op b`
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `f(args)`
    Call(Call),
    /// `?name(args)`: an expression left for `ruleopt search` to discover.
    Hole(Ident, Vec<Expr>),
}

/// `f(a, name = b)`
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Function name.
    pub func: Ident,
    /// Arguments.
    pub args: Vec<Arg>,
    /// The whole call.
    pub span: Span,
}

/// A call argument, optionally named.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// `name =`, if given.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
}

/// `network N { ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// Its name.
    pub name: Ident,
    /// Members in source order.
    pub members: Vec<NetMember>,
    /// The whole item.
    pub span: Span,
}

/// A network member.
#[derive(Clone, Debug, PartialEq)]
pub enum NetMember {
    /// `dt = 1 ms;`
    Dt(Expr),
    /// `input x[40];`: channels whose output the task or simulator sets.
    Input {
        /// Name.
        name: Ident,
        /// Number of channels.
        size: usize,
        /// Whole member.
        span: Span,
    },
    /// `signal reward;` / `signal target[out];`
    Signal {
        /// Name.
        name: Ident,
        /// The population it has one value per neuron of; none = one per episode.
        pop: Option<Ident>,
        /// Whole member.
        span: Span,
    },
    /// `population rec: LIF[128](tau_m = 20 ms);`
    Population {
        /// Name.
        name: Ident,
        /// Neuron model.
        model: Ident,
        /// Number of neurons.
        size: usize,
        /// Parameter overrides.
        args: Vec<NetArg>,
        /// Whole member.
        span: Span,
    },
    /// `projection p: a -> b.I with Rule(args) connect dense();`
    Projection(Projection),
    /// A network-level parameter.
    Param(ParamDecl),
    /// `modulator m = expr;`
    Modulator {
        /// Name.
        name: Ident,
        /// Value, recomputed every step.
        value: Expr,
        /// Whole member.
        span: Span,
    },
    /// `readout out.y, rec.z;`
    Readout(Vec<Vec<Ident>>, Span),
}

/// `projection NAME: PRE -> POST.INPUT with RULE(ARGS) connect CONN;`
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    /// Name.
    pub name: Ident,
    /// Pre-synaptic population or input.
    pub pre: Ident,
    /// Post-synaptic population.
    pub post: Ident,
    /// Which input of the post model receives the current; none = its first.
    pub target: Option<Ident>,
    /// Synapse rule.
    pub rule: Ident,
    /// Parameter overrides and modulator bindings.
    pub args: Vec<NetArg>,
    /// Connectivity; none = dense.
    pub connect: Option<Call>,
    /// Whole member.
    pub span: Span,
}

/// `name = expr` or `name ~ dist(...)` in a population or projection.
#[derive(Clone, Debug, PartialEq)]
pub struct NetArg {
    /// Parameter or modulator name.
    pub name: Ident,
    /// New value.
    pub init: Init,
}

// ------------------------------------------------------------------ text form

use std::fmt;

fn prec(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Binary(BinOp::Cmp(_), ..) => 1,
        ExprKind::Binary(BinOp::Add | BinOp::Sub, ..) => 2,
        ExprKind::Binary(BinOp::Mul | BinOp::Div, ..) => 3,
        ExprKind::Unary(..) => 4,
        ExprKind::Binary(BinOp::Pow, ..) => 5,
        _ => 6,
    }
}

fn cmp_str(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
    }
}

fn paren(f: &mut fmt::Formatter<'_>, e: &Expr, min: u8) -> fmt::Result {
    if prec(e) < min {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Num(v, unit) => {
                write!(f, "{v}")?;
                match unit {
                    Some(Unit::Ms) => f.write_str(" ms"),
                    Some(Unit::S) => f.write_str(" s"),
                    Some(Unit::Hz) => f.write_str(" Hz"),
                    None => Ok(()),
                }
            }
            ExprKind::Path(p) => {
                let names: Vec<&str> = p.iter().map(|i| i.name.as_str()).collect();
                f.write_str(&names.join("."))
            }
            ExprKind::Unary(UnOp::Neg, a) => {
                f.write_str("-")?;
                paren(f, a, 4)
            }
            ExprKind::Binary(op, a, b) => {
                let (s, p) = match op {
                    BinOp::Add => ("+", 2),
                    BinOp::Sub => ("-", 2),
                    BinOp::Mul => ("*", 3),
                    BinOp::Div => ("/", 3),
                    BinOp::Pow => ("^", 5),
                    BinOp::Cmp(c) => (cmp_str(*c), 1),
                };
                // Left-associative operators: the right operand needs a strictly
                // higher precedence; `^` is right-associative.
                let (lp, rp) = if *op == BinOp::Pow {
                    (p + 1, p)
                } else {
                    (p, p + 1)
                };
                paren(f, a, lp)?;
                write!(f, " {s} ")?;
                paren(f, b, rp)
            }
            ExprKind::Call(c) => write!(f, "{c}"),
            ExprKind::Hole(name, args) => {
                write!(f, "?{}(", name.name)?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.func.name)?;
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if let Some(n) = &a.name {
                write!(f, "{} = ", n.name)?;
            }
            write!(f, "{}", a.value)?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Init::Expr(e) => write!(f, "= {e}"),
            Init::Dist(c) => write!(f, "~ {c}"),
            Init::File { path, .. } => write!(f, "from \"{path}\""),
        }
    }
}

fn space_str(s: &Option<Ident>) -> String {
    s.as_ref()
        .map_or(String::new(), |s| format!("[{}]", s.name))
}

impl fmt::Display for ParamDecl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kw = if self.learn { "learn" } else { "param" };
        write!(
            f,
            "{kw} {}{} {}",
            self.name.name,
            space_str(&self.space),
            self.init
        )?;
        if let Some((lo, hi)) = &self.bounds {
            write!(f, " in [{lo}, {hi}]")?;
        }
        f.write_str(";")
    }
}

fn write_stmts(f: &mut fmt::Formatter<'_>, stmts: &[Stmt], indent: usize) -> fmt::Result {
    for s in stmts {
        write_stmt(f, s, indent)?;
    }
    Ok(())
}

fn write_stmt(f: &mut fmt::Formatter<'_>, s: &Stmt, indent: usize) -> fmt::Result {
    let pad = "  ".repeat(indent);
    match s {
        Stmt::Let { name, value, .. } => writeln!(f, "{pad}let {} = {value};", name.name),
        Stmt::Assign {
            target, op, value, ..
        } => {
            let op = match op {
                AssignOp::Set => "=",
                AssignOp::Add => "+=",
                AssignOp::Sub => "-=",
                AssignOp::Mul => "*=",
            };
            writeln!(f, "{pad}{} {op} {value};", target.name)
        }
        Stmt::Ode {
            var, rhs, method, ..
        } => {
            write!(f, "{pad}d{}/dt = {rhs}", var.name)?;
            if let Some(m) = method {
                write!(f, " using {}", m.name)?;
            }
            writeln!(f, ";")
        }
        Stmt::On { who, body, .. } => {
            writeln!(f, "{pad}on {} {{", who.name)?;
            write_stmts(f, body, indent + 1)?;
            writeln!(f, "{pad}}}")
        }
    }
}

fn write_args(f: &mut fmt::Formatter<'_>, args: &[NetArg]) -> fmt::Result {
    if args.is_empty() {
        return Ok(());
    }
    f.write_str("(")?;
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{} {}", a.name.name, a.init)?;
    }
    f.write_str(")")
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kw = if self.kind == ModelKind::Neuron {
            "neuron"
        } else {
            "synapse"
        };
        writeln!(f, "{kw} {} {{", self.name.name)?;
        for m in &self.members {
            match m {
                Member::Param(p) => writeln!(f, "  {p}")?,
                Member::State(s) => {
                    write!(f, "  state {}{}", s.name.name, space_str(&s.space))?;
                    if let Some(i) = &s.init {
                        write!(f, " {i}")?;
                    }
                    if let Some((lo, hi)) = &s.clip {
                        write!(f, " clip [{lo}, {hi}]")?;
                    }
                    writeln!(f, ";")?;
                }
                Member::Input(names) | Member::Modulator(names) => {
                    let kw = if matches!(m, Member::Input(_)) {
                        "input"
                    } else {
                        "modulator"
                    };
                    let names: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
                    writeln!(f, "  {kw} {};", names.join(", "))?;
                }
                Member::Output(n) => writeln!(f, "  output {};", n.name)?,
                Member::Spike(s) => {
                    write!(
                        f,
                        "  spike {} when {} {} {}",
                        s.name.name,
                        s.lhs,
                        cmp_str(s.op),
                        s.rhs
                    )?;
                    if let Some(c) = &s.surrogate {
                        write!(f, " surrogate {c}")?;
                    }
                    writeln!(f, ";")?;
                }
                Member::Reset(body, _) => {
                    writeln!(f, "  reset {{")?;
                    write_stmts(f, body, 2)?;
                    writeln!(f, "  }}")?;
                }
                Member::Refractory(e) => writeln!(f, "  refractory {e};")?,
                Member::Weight(e) => writeln!(f, "  weight = {e};")?,
                Member::Stmt(s) => write_stmt(f, s, 1)?,
            }
        }
        writeln!(f, "}}")
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "network {} {{", self.name.name)?;
        for m in &self.members {
            match m {
                NetMember::Dt(e) => writeln!(f, "  dt = {e};")?,
                NetMember::Input { name, size, .. } => {
                    writeln!(f, "  input {}[{size}];", name.name)?
                }
                NetMember::Signal { name, pop, .. } => match pop {
                    Some(p) => writeln!(f, "  signal {}[{}];", name.name, p.name)?,
                    None => writeln!(f, "  signal {};", name.name)?,
                },
                NetMember::Population {
                    name,
                    model,
                    size,
                    args,
                    ..
                } => {
                    write!(f, "  population {}: {}[{size}]", name.name, model.name)?;
                    write_args(f, args)?;
                    writeln!(f, ";")?;
                }
                NetMember::Projection(p) => {
                    write!(
                        f,
                        "  projection {}: {} -> {}",
                        p.name.name, p.pre.name, p.post.name
                    )?;
                    if let Some(t) = &p.target {
                        write!(f, ".{}", t.name)?;
                    }
                    write!(f, " with {}", p.rule.name)?;
                    write_args(f, &p.args)?;
                    if let Some(c) = &p.connect {
                        write!(f, " connect {c}")?;
                    }
                    writeln!(f, ";")?;
                }
                NetMember::Param(p) => writeln!(f, "  {p}")?,
                NetMember::Modulator { name, value, .. } => {
                    writeln!(f, "  modulator {} = {value};", name.name)?
                }
                NetMember::Readout(paths, _) => {
                    let ps: Vec<String> = paths
                        .iter()
                        .map(|p| {
                            p.iter()
                                .map(|i| i.name.as_str())
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .collect();
                    writeln!(f, "  readout {};", ps.join(", "))?;
                }
            }
        }
        writeln!(f, "}}")
    }
}

impl fmt::Display for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match item {
                Item::Import(imp) => writeln!(f, "import \"{}\";", imp.path)?,
                Item::Model(m) => write!(f, "{m}")?,
                Item::Network(n) => write!(f, "{n}")?,
            }
        }
        Ok(())
    }
}
