//! AST -> IR. Resolves names, checks units, index spaces, arities and cycles, and turns
//! the sequential statements of models into the pure step graph of [`crate::ir`].
//!
//! One network step is built in this order (the meaning documented in
//! `grammar/LANGUAGE.md`): variables of every population and projection; each
//! projection's `weight` from start-of-step values; populations in declaration order
//! (currents, update statements, ODE integration, refractoriness, spike, reset);
//! modulators; rule statements of every projection.

use crate::ast::{
    self, AssignOp, CmpOp, ExprKind, Ident, Member, ModelKind, NetArg, NetMember, Stmt, Unit,
};
use crate::check::Program;
use crate::diag::{did_you_mean, Diagnostic};
use crate::ir::{
    self, BinOp, Connectivity, Expr, ExprId, Module, Pop, PopId, Proj, ProjId, Side, Surrogate,
    SurrogateKind, UnOp, Var, VarId, VarKind,
};
use crate::source::Span;
use std::collections::{HashMap, HashSet};

/// Lowers the network `name` (or the root file's last network) of a checked program.
pub fn lower(prog: &Program, name: Option<&str>) -> Result<Module, Vec<Diagnostic>> {
    let net = crate::check::pick_network(prog, name).map_err(|msg| vec![Diagnostic::plain(msg)])?;
    lower_network(prog, net)
}

/// The power of time of a value; `None` for a bare `0`, which fits any unit.
type U = Option<i8>;

/// Where a value lives, as the language sees it (rules distinguish pre and post even
/// when both are the same population).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sp {
    Global,
    Pop(PopId),
    Pre,
    Post,
    Syn,
}

#[derive(Clone, Copy, Debug)]
struct Val {
    e: ExprId,
    u: U,
    sp: Sp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Param,
    State,
    Input,
    Let,
    Spike,
    Modulator,
}

#[derive(Clone, Debug)]
struct Slot {
    val: Option<Val>,
    role: Role,
    var: Option<VarId>,
    decl: Span,
}

/// What a dotted path resolves against.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Parameter initial values: parameters only.
    Init,
    /// Start of step (weights): pre/post read start-of-step values.
    Start,
    /// After the neuron updates (rule statements, modulators).
    After,
}

struct Scope {
    names: HashMap<String, Slot>,
    phase: Phase,
    /// Rule context: the projection.
    proj: Option<ProjId>,
    /// Network context (modulators, bindings).
    net: bool,
    /// Holes seen in this model: name -> arity.
    holes: HashMap<String, (usize, Span)>,
}

impl Scope {
    fn new(phase: Phase, proj: Option<ProjId>) -> Scope {
        Scope {
            names: HashMap::new(),
            phase,
            proj,
            net: false,
            holes: HashMap::new(),
        }
    }
    fn bind(&mut self, name: &str, val: Option<Val>, role: Role, var: Option<VarId>, decl: Span) {
        self.names.insert(
            name.to_string(),
            Slot {
                val,
                role,
                var,
                decl,
            },
        );
    }
}

/// Declared names of one model instance (a population or a projection).
#[derive(Clone, Debug, Default)]
struct Inst {
    /// name -> (role, var, unit, space)
    decls: Vec<(String, Role, Option<VarId>, U, Sp, Span)>,
    /// state name -> has an initial value
    has_init: HashMap<String, bool>,
    clips: HashMap<String, (ast::Expr, ast::Expr)>,
    spike: Option<(String, VarId)>,
    output: Option<String>,
    inputs: Vec<String>,
    modulators: Vec<(String, Span)>,
    refr: Option<VarId>,
}

struct Lowerer {
    m: Module,
    diags: Vec<Diagnostic>,
    /// Per population: exported values at the start of the step.
    pop_start: Vec<HashMap<String, (ExprId, U)>>,
    /// Per population: exported values after its update.
    pop_new: Vec<HashMap<String, (ExprId, U)>>,
    /// Stand-in populations of a model checked alone: unknown names become inputs.
    open: HashSet<PopId>,
    /// Final value of every state variable.
    finals: HashMap<VarId, ExprId>,
    insts: Vec<Inst>,
    proj_insts: Vec<Inst>,
    /// Network scope entries.
    net_names: HashMap<String, Slot>,
    net_mods: HashMap<String, (ast::Expr, Span)>,
    mod_vals: HashMap<String, Option<Val>>,
    visiting: Vec<String>,
    /// Parameters on a definition cycle (already reported).
    cyclic: HashSet<String>,
    /// Values files by `(file, path)` of their `from`; `None` when a model is lowered
    /// alone (no qualified names to look up: such values are only unit-checked).
    values: Option<crate::check::ValuesFiles>,
}

const UNARY: &[(&str, UnOp)] = &[
    ("exp", UnOp::Exp),
    ("log", UnOp::Log),
    ("tanh", UnOp::Tanh),
    ("sigmoid", UnOp::Sigmoid),
    ("sqrt", UnOp::Sqrt),
    ("abs", UnOp::Abs),
    ("relu", UnOp::Relu),
    ("sin", UnOp::Sin),
    ("cos", UnOp::Cos),
];
const FUNCS: &[&str] = &[
    "exp", "log", "tanh", "sigmoid", "sqrt", "abs", "relu", "sin", "cos", "min", "max", "pow",
    "clip", "sum", "mean",
];

fn unit_name(u: i8) -> String {
    match u {
        0 => "dimensionless".into(),
        1 => "a time (ms)".into(),
        -1 => "a rate (1/ms)".into(),
        k => format!("ms^{k}"),
    }
}

impl Lowerer {
    fn new(name: &str, dt: f64) -> Self {
        Lowerer {
            m: Module::new(name, dt),
            diags: Vec::new(),
            pop_start: Vec::new(),
            pop_new: Vec::new(),
            open: HashSet::new(),
            finals: HashMap::new(),
            insts: Vec::new(),
            proj_insts: Vec::new(),
            net_names: HashMap::new(),
            net_mods: HashMap::new(),
            mod_vals: HashMap::new(),
            visiting: Vec::new(),
            cyclic: HashSet::new(),
            values: None,
        }
    }

    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.push(Diagnostic::error(span, msg));
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn add_pop(&mut self, name: &str, size: usize, model: Option<String>) -> PopId {
        let p = self.m.pops.push(Pop {
            name: name.into(),
            size,
            model,
            out: None,
        });
        self.pop_start.push(HashMap::new());
        self.pop_new.push(HashMap::new());
        self.insts.push(Inst::default());
        p
    }

    fn add_var(&mut self, name: String, space: ir::Space, kind: VarKind, unit: i8) -> VarId {
        self.m.vars.push(Var {
            name,
            space,
            kind,
            unit,
        })
    }

    fn zero(&mut self) -> ExprId {
        self.m.constant(0.0)
    }

    // ------------------------------------------------------------ spaces

    fn ir_space(&self, sp: Sp, proj: Option<ProjId>) -> ir::Space {
        match (sp, proj) {
            (Sp::Global, _) => ir::Space::Global,
            (Sp::Pop(p), _) => ir::Space::Pop(p),
            (Sp::Pre, Some(q)) => ir::Space::Pop(self.m.projs[q].pre),
            (Sp::Post, Some(q)) => ir::Space::Pop(self.m.projs[q].post),
            (Sp::Syn, Some(q)) => ir::Space::Syn(q),
            _ => ir::Space::Global,
        }
    }

    /// Brings `v` into space `to` (broadcasting pre/post values to synapses), or None.
    fn coerce(&mut self, v: Val, to: Sp, proj: Option<ProjId>) -> Option<Val> {
        if v.sp == to || v.sp == Sp::Global {
            return Some(Val { sp: to, ..v });
        }
        match (v.sp, to, proj) {
            (Sp::Pre, Sp::Syn, Some(q)) => Some(Val {
                e: self.m.add(Expr::Bcast(q, Side::Pre, v.e)),
                u: v.u,
                sp: Sp::Syn,
            }),
            (Sp::Post, Sp::Syn, Some(q)) => Some(Val {
                e: self.m.add(Expr::Bcast(q, Side::Post, v.e)),
                u: v.u,
                sp: Sp::Syn,
            }),
            _ => None,
        }
    }

    fn join_sp(a: Sp, b: Sp) -> Option<Sp> {
        match (a, b) {
            (Sp::Global, s) | (s, Sp::Global) => Some(s),
            (a, b) if a == b => Some(a),
            (Sp::Pre | Sp::Post | Sp::Syn, Sp::Pre | Sp::Post | Sp::Syn) => Some(Sp::Syn),
            _ => None,
        }
    }

    fn sp_name(&self, sp: Sp) -> String {
        match sp {
            Sp::Global => "shared".into(),
            Sp::Pop(p) => format!("one per neuron of `{}`", self.m.pops[p].name),
            Sp::Pre => "one per pre-synaptic neuron".into(),
            Sp::Post => "one per post-synaptic neuron".into(),
            Sp::Syn => "one per synapse".into(),
        }
    }

    /// Makes the operands of an n-ary node live in one space.
    fn unify(
        &mut self,
        vals: &[Val],
        span: Span,
        proj: Option<ProjId>,
    ) -> Option<(Vec<ExprId>, Sp)> {
        let mut sp = Sp::Global;
        for v in vals {
            match Self::join_sp(sp, v.sp) {
                Some(s) => sp = s,
                None => {
                    let msg = format!(
                        "this combines values of different index spaces ({} and {})",
                        self.sp_name(sp),
                        self.sp_name(v.sp)
                    );
                    self.err(span, msg);
                    return None;
                }
            }
        }
        let mut out = Vec::new();
        for v in vals {
            out.push(self.coerce(*v, sp, proj)?.e);
        }
        Some((out, sp))
    }

    fn unit_eq(&mut self, a: U, b: U, span: Span, what: &str) -> U {
        match (a, b) {
            (Some(x), Some(y)) if x != y => {
                let msg = format!(
                    "unit mismatch: {what} {} and {}",
                    unit_name(x),
                    unit_name(y)
                );
                self.err(span, msg);
                Some(x)
            }
            (Some(x), _) | (_, Some(x)) => Some(x),
            _ => None,
        }
    }

    fn dimensionless(&mut self, v: &Val, span: Span, what: &str) {
        if let Some(u) = v.u {
            if u != 0 {
                let msg = format!(
                    "unit mismatch: {what} must be dimensionless, but this is {}",
                    unit_name(u)
                );
                self.push(
                    Diagnostic::error(span, msg)
                        .with_note("divide times by a time constant, e.g. `exp(-dt / tau)`"),
                );
            }
        }
    }

    // ------------------------------------------------------------ expressions

    fn expr(&mut self, e: &ast::Expr, sc: &mut Scope) -> Option<Val> {
        let proj = sc.proj;
        match &e.kind {
            ExprKind::Num(v, unit) => {
                let (x, u) = match unit {
                    None => (*v, if *v == 0.0 { None } else { Some(0) }),
                    Some(Unit::Ms) => (*v, Some(1)),
                    Some(Unit::S) => (*v * 1000.0, Some(1)),
                    Some(Unit::Hz) => (*v / 1000.0, Some(-1)),
                };
                Some(Val {
                    e: self.m.constant(x),
                    u,
                    sp: Sp::Global,
                })
            }
            ExprKind::Path(path) => self.path(path, e.span, sc),
            ExprKind::Unary(_, a) => {
                let a = self.expr(a, sc)?;
                Some(Val {
                    e: self.m.mk_neg(a.e),
                    ..a
                })
            }
            ExprKind::Binary(op, a, b) => {
                let (va, vb) = (self.expr(a, sc), self.expr(b, sc));
                let (va, vb) = (va?, vb?);
                let (ops, sp) = self.unify(&[va, vb], e.span, proj)?;
                let (x, y) = (ops[0], ops[1]);
                let (node, u) = match op {
                    ast::BinOp::Add | ast::BinOp::Sub => {
                        let u = self.unit_eq(va.u, vb.u, e.span, "adding or subtracting");
                        let n = if *op == ast::BinOp::Add {
                            self.m.mk_add(x, y)
                        } else {
                            self.m.mk_sub(x, y)
                        };
                        (n, u)
                    }
                    ast::BinOp::Mul => (
                        self.m.mk_mul(x, y),
                        va.u.zip(vb.u).map(|(p, q)| p + q).or(None),
                    ),
                    ast::BinOp::Div => {
                        let u = match (va.u, vb.u) {
                            (Some(p), Some(q)) => Some(p - q),
                            (None, _) => None,
                            (Some(p), None) => Some(p),
                        };
                        (self.m.mk_div(x, y), u)
                    }
                    ast::BinOp::Pow => {
                        let u = match (va.u, self.m.as_const(y)) {
                            (Some(0) | None, _) => va.u,
                            (Some(k), Some(c)) if c.fract() == 0.0 && c.abs() < 8.0 => {
                                Some(k * c as i8)
                            }
                            (Some(_), _) => {
                                self.dimensionless(&va, a.span, "the base of a non-integer power");
                                Some(0)
                            }
                        };
                        self.dimensionless(&vb, b.span, "an exponent");
                        (self.m.mk_bin(BinOp::Pow, x, y), u)
                    }
                    ast::BinOp::Cmp(c) => {
                        self.unit_eq(va.u, vb.u, e.span, "comparing");
                        let n = match c {
                            CmpOp::Lt => self.m.mk_bin(BinOp::Lt, x, y),
                            CmpOp::Le => self.m.mk_bin(BinOp::Le, x, y),
                            CmpOp::Gt => self.m.mk_bin(BinOp::Lt, y, x),
                            CmpOp::Ge => self.m.mk_bin(BinOp::Le, y, x),
                        };
                        (n, Some(0))
                    }
                };
                Some(Val { e: node, u, sp })
            }
            ExprKind::Call(c) => self.call(c, sc),
            ExprKind::Hole(name, args) => {
                let mut vals = Vec::new();
                let mut ok = true;
                for a in args {
                    match self.expr_in_hole(a, name, sc) {
                        Some(v) => vals.push(v),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                if let Some(&(n, first)) = sc.holes.get(&name.name) {
                    if n != args.len() {
                        self.push(
                            Diagnostic::error(e.span, format!("wrong arity: hole `?{}` has {n} argument{} where it is first used, {} here", name.name, if n == 1 { "" } else { "s" }, args.len()))
                                .with_secondary(first, "first used here"),
                        );
                        return None;
                    }
                } else {
                    sc.holes.insert(name.name.clone(), (args.len(), e.span));
                }
                let (ops, sp) = self.unify(&vals, e.span, proj)?;
                Some(Val {
                    e: self.m.add(Expr::Hole(name.name.clone(), ops)),
                    u: None,
                    sp,
                })
            }
        }
    }

    fn expr_in_hole(&mut self, a: &ast::Expr, hole: &Ident, sc: &mut Scope) -> Option<Val> {
        let before = self.diags.len();
        let v = self.expr(a, sc);
        for d in &mut self.diags[before..] {
            if d.message.starts_with("unknown name") {
                d.message = format!(
                    "unknown hole argument: {} (in `?{}`)",
                    d.message.trim_start_matches("unknown name "),
                    hole.name
                );
            }
        }
        v
    }

    fn path(&mut self, path: &[Ident], span: Span, sc: &mut Scope) -> Option<Val> {
        let first = &path[0];
        if path.len() == 1 {
            if let Some(slot) = sc.names.get(&first.name) {
                return match slot.val {
                    Some(v) => Some(v),
                    None => {
                        let d = Diagnostic::error(
                            span,
                            format!("the state `{}` is read before it is assigned, and has no initial value", first.name),
                        )
                        .with_secondary(slot.decl, "declared here without `= ...`")
                        .with_note("give it an initial value, or assign it before this statement");
                        self.push(d);
                        None
                    }
                };
            }
            match first.name.as_str() {
                "dt" => {
                    let dt = self.m.dt;
                    return Some(Val {
                        e: self.m.constant(dt),
                        u: Some(1),
                        sp: Sp::Global,
                    });
                }
                "pi" => {
                    return Some(Val {
                        e: self.m.constant(std::f64::consts::PI),
                        u: Some(0),
                        sp: Sp::Global,
                    })
                }
                _ => {}
            }
            if sc.net {
                if let Some(v) = self.net_name(&first.name, span) {
                    return v;
                }
            }
            if sc.phase == Phase::Init {
                if let Some(role) = self.lookup_role(&first.name) {
                    let msg = format!(
                        "an initial value can only use parameters, and `{}` is {role}",
                        first.name
                    );
                    self.err(span, msg);
                    return None;
                }
            }
            let mut known: Vec<String> = sc.names.keys().cloned().collect();
            known.extend(["dt".to_string(), "pi".to_string()]);
            if sc.net {
                known.extend(self.net_names.keys().cloned());
                known.extend(self.net_mods.keys().cloned());
            }
            let mut d = Diagnostic::error(span, format!("unknown name `{}`", first.name));
            if let Some(h) = did_you_mean(&first.name, known.iter().map(String::as_str)) {
                d = d.with_note(h);
            }
            self.push(d);
            return None;
        }
        if path.len() != 2 {
            self.err(span, "a path has at most two parts (`pre.v`, `rec.out`)");
            return None;
        }
        let field = &path[1];
        // pre./post. inside a rule
        if let Some(q) = sc.proj {
            if first.name == "pre" || first.name == "post" {
                if sc.phase == Phase::Init {
                    self.err(span, "an initial value can only use parameters");
                    return None;
                }
                let side = if first.name == "pre" {
                    Sp::Pre
                } else {
                    Sp::Post
                };
                let pop = if side == Sp::Pre {
                    self.m.projs[q].pre
                } else {
                    self.m.projs[q].post
                };
                let (e, u) = self.pop_field(pop, field, span, sc.phase)?;
                return Some(Val { e, u, sp: side });
            }
        }
        if sc.net {
            let found = self
                .m
                .pops
                .iter()
                .find(|(_, p)| p.name == first.name)
                .map(|(h, _)| h);
            if let Some(p) = found {
                let (e, u) = self.pop_field(p, field, span, Phase::After)?;
                return Some(Val {
                    e,
                    u,
                    sp: Sp::Pop(p),
                });
            }
            let names: Vec<String> = self.m.pops.iter().map(|(_, p)| p.name.clone()).collect();
            let mut d =
                Diagnostic::error(first.span, format!("unknown population `{}`", first.name));
            if let Some(h) = did_you_mean(&first.name, names.iter().map(String::as_str)) {
                d = d.with_note(h);
            }
            self.push(d);
            return None;
        }
        let msg = if sc.proj.is_some() {
            format!(
                "unknown name `{}`: a rule reads neuron variables as `pre.x` or `post.x`",
                first.name
            )
        } else {
            format!(
                "unknown name `{}`: a neuron model reads only its own names",
                first.name
            )
        };
        self.err(first.span, msg);
        None
    }

    fn lookup_role(&self, name: &str) -> Option<&'static str> {
        let inst_role = self
            .insts
            .iter()
            .chain(self.proj_insts.iter())
            .find_map(|i| i.decls.iter().find(|d| d.0 == name).map(|d| d.1));
        inst_role.map(|r| match r {
            Role::State => "a state",
            Role::Input => "an input",
            Role::Spike => "a spike",
            Role::Modulator => "a modulator",
            _ => "not a parameter",
        })
    }

    fn pop_field(
        &mut self,
        pop: PopId,
        field: &Ident,
        span: Span,
        phase: Phase,
    ) -> Option<(ExprId, U)> {
        let table = if phase == Phase::Start {
            &self.pop_start[pop.index()]
        } else {
            &self.pop_new[pop.index()]
        };
        if let Some(&v) = table.get(&field.name) {
            return Some(v);
        }
        if self.open.contains(&pop) {
            let pname = self.m.pops[pop].name.clone();
            let var = self.add_var(
                format!("{pname}.{}", field.name),
                ir::Space::Pop(pop),
                VarKind::Input,
                0,
            );
            let e = self.m.add(Expr::Read(var));
            self.pop_start[pop.index()].insert(field.name.clone(), (e, None));
            self.pop_new[pop.index()].insert(field.name.clone(), (e, None));
            return Some((e, None));
        }
        let p = &self.m.pops[pop];
        let (pname, model) = (
            p.name.clone(),
            p.model.clone().unwrap_or_else(|| "input".into()),
        );
        let other = if phase == Phase::Start {
            &self.pop_new[pop.index()]
        } else {
            &self.pop_start[pop.index()]
        };
        let mut names: Vec<String> = table.keys().chain(other.keys()).cloned().collect();
        names.sort();
        names.dedup();
        let mut d = Diagnostic::error(
            span,
            format!(
                "population `{pname}` ({model}) has no variable `{}`",
                field.name
            ),
        );
        if phase == Phase::Start && self.pop_new[pop.index()].contains_key(&field.name) {
            d = d.with_note(
                "a `weight` reads start-of-step values: only parameters, states and spikes",
            );
        } else if let Some(h) = did_you_mean(&field.name, names.iter().map(String::as_str)) {
            d = d.with_note(h);
        } else {
            d = d.with_note(format!("it has: {}", names.join(", ")));
        }
        self.push(d);
        None
    }

    fn call(&mut self, c: &ast::Call, sc: &mut Scope) -> Option<Val> {
        let name = c.func.name.as_str();
        if let Some(a) = c.args.iter().find_map(|a| a.name.as_ref()) {
            self.err(a.span, format!("`{name}` takes no named arguments"));
            return None;
        }
        let arity = match name {
            "min" | "max" | "pow" => 2,
            "clip" => 3,
            _ if UNARY.iter().any(|(n, _)| *n == name) => 1,
            "sum" | "mean" => 1,
            _ => {
                let mut d = Diagnostic::error(c.func.span, format!("unknown function `{name}`"));
                if let Some(h) = did_you_mean(name, FUNCS.iter().copied()) {
                    d = d.with_note(h);
                } else {
                    d = d.with_note(format!("functions: {}", FUNCS.join(", ")));
                }
                self.push(d);
                return None;
            }
        };
        if c.args.len() != arity {
            let s = if arity == 1 { "" } else { "s" };
            self.err(
                c.span,
                format!(
                    "wrong arity: `{name}` takes {arity} argument{s}, found {}",
                    c.args.len()
                ),
            );
            return None;
        }
        let mut vals = Vec::new();
        for a in &c.args {
            vals.push(self.expr(&a.value, sc));
        }
        let vals: Vec<Val> = vals.into_iter().collect::<Option<_>>()?;
        if name == "sum" || name == "mean" {
            let v = vals[0];
            let Sp::Pop(p) = v.sp else {
                let msg = if sc.net {
                    format!("`{name}` reduces a population variable such as `rec.out`; this value is {}", self.sp_name(v.sp))
                } else {
                    format!("`{name}` is only available in network modulators")
                };
                self.err(c.span, msg);
                return None;
            };
            let mut e = if self.m.space(v.e) == ir::Space::Global {
                // Folded to a constant: the sum is the constant times the size.
                let n = self.m.constant(self.m.pops[p].size as f64);
                self.m.mk_mul(v.e, n)
            } else {
                self.m.add(Expr::SumPop(p, v.e))
            };
            if name == "mean" {
                let n = self.m.constant(self.m.pops[p].size as f64);
                e = self.m.mk_div(e, n);
            }
            return Some(Val {
                e,
                u: v.u,
                sp: Sp::Global,
            });
        }
        let (ops, sp) = self.unify(&vals, c.span, sc.proj)?;
        if let Some(&(_, op)) = UNARY.iter().find(|(n, _)| *n == name) {
            let u = match op {
                UnOp::Abs | UnOp::Relu => vals[0].u,
                UnOp::Sqrt => match vals[0].u {
                    Some(k) if k % 2 == 0 => Some(k / 2),
                    Some(_) => {
                        self.dimensionless(
                            &vals[0],
                            c.span,
                            "the argument of `sqrt` (odd power of time)",
                        );
                        Some(0)
                    }
                    None => None,
                },
                _ => {
                    self.dimensionless(
                        &vals[0],
                        c.args[0].value.span,
                        &format!("the argument of `{name}`"),
                    );
                    Some(0)
                }
            };
            return Some(Val {
                e: self.m.mk_un(op, ops[0]),
                u,
                sp,
            });
        }
        match name {
            "min" | "max" => {
                let u = self.unit_eq(
                    vals[0].u,
                    vals[1].u,
                    c.span,
                    &format!("the arguments of `{name}` are"),
                );
                let op = if name == "min" {
                    BinOp::Min
                } else {
                    BinOp::Max
                };
                Some(Val {
                    e: self.m.mk_bin(op, ops[0], ops[1]),
                    u,
                    sp,
                })
            }
            "pow" => {
                self.dimensionless(&vals[1], c.args[1].value.span, "an exponent");
                let u = match (vals[0].u, self.m.as_const(ops[1])) {
                    (Some(0) | None, _) => vals[0].u,
                    (Some(k), Some(p)) if p.fract() == 0.0 && p.abs() < 8.0 => Some(k * p as i8),
                    _ => {
                        self.dimensionless(
                            &vals[0],
                            c.args[0].value.span,
                            "the base of a non-integer power",
                        );
                        Some(0)
                    }
                };
                Some(Val {
                    e: self.m.mk_bin(BinOp::Pow, ops[0], ops[1]),
                    u,
                    sp,
                })
            }
            _ => {
                let u = self.unit_eq(vals[0].u, vals[1].u, c.span, "the arguments of `clip` are");
                let u = self.unit_eq(u, vals[2].u, c.span, "the arguments of `clip` are");
                Some(Val {
                    e: self.clip(ops[0], ops[1], ops[2]),
                    u,
                    sp,
                })
            }
        }
    }

    fn clip(&mut self, x: ExprId, lo: ExprId, hi: ExprId) -> ExprId {
        if let (Some(a), Some(l), Some(h)) =
            (self.m.as_const(x), self.m.as_const(lo), self.m.as_const(hi))
        {
            return self
                .m
                .constant(crate::interp::fmin(crate::interp::fmax(a, l), h));
        }
        self.m.add(Expr::Clip(x, lo, hi))
    }

    // ------------------------------------------------------------ network scope

    /// Resolves a bare name in a network expression: signals, network parameters,
    /// modulators (lowered on first use, with cycle detection).
    fn net_name(&mut self, name: &str, span: Span) -> Option<Option<Val>> {
        if let Some(slot) = self.net_names.get(name) {
            return Some(slot.val);
        }
        if let Some(v) = self.mod_vals.get(name) {
            return Some(*v);
        }
        let (expr, decl) = self.net_mods.get(name).cloned()?;
        if let Some(pos) = self.visiting.iter().position(|n| n == name) {
            let mut chain: Vec<String> = self.visiting[pos..]
                .iter()
                .map(|n| format!("`{n}`"))
                .collect();
            chain.push(format!("`{name}`"));
            self.push(
                Diagnostic::error(
                    span,
                    format!(
                        "cyclic definition: modulator `{name}` depends on itself ({})",
                        chain.join(" -> ")
                    ),
                )
                .with_secondary(decl, "defined here"),
            );
            self.mod_vals.insert(name.to_string(), None);
            return Some(None);
        }
        self.visiting.push(name.to_string());
        let mut sc = Scope::new(Phase::After, None);
        sc.net = true;
        let v = self.expr(&expr, &mut sc);
        self.visiting.pop();
        self.mod_vals.insert(name.to_string(), v);
        Some(v)
    }

    // ------------------------------------------------------------ declarations

    /// Creates the variables of one model instance; returns its declarations.
    /// `pop` for neurons, `proj` for rules. `overrides` replace initial values.
    fn declare(
        &mut self,
        model: &ast::Model,
        prefix: &str,
        pop: Option<PopId>,
        proj: Option<ProjId>,
        overrides: &[NetArg],
    ) -> Inst {
        let mut inst = Inst::default();
        let is_rule = model.kind == ModelKind::Synapse;
        let mut seen: HashMap<String, Span> = HashMap::new();
        let mut check_dup = |lw: &mut Self, id: &Ident| {
            if matches!(id.name.as_str(), "dt" | "pi" | "pre" | "post" | "out") {
                lw.err(
                    id.span,
                    format!("`{}` is a built-in name and cannot be declared", id.name),
                );
            }
            if let Some(prev) = seen.insert(id.name.clone(), id.span) {
                lw.push(
                    Diagnostic::error(id.span, format!("`{}` is declared twice", id.name))
                        .with_secondary(prev, "first declared here"),
                );
            }
        };
        let mut spikes = 0;
        for mem in &model.members {
            match mem {
                Member::Param(p) => check_dup(self, &p.name),
                Member::State(s) => check_dup(self, &s.name),
                Member::Input(ids) => ids.iter().for_each(|i| check_dup(self, i)),
                Member::Modulator(ids) => ids.iter().for_each(|i| check_dup(self, i)),
                Member::Spike(s) => {
                    check_dup(self, &s.name);
                    spikes += 1;
                    if spikes > 1 {
                        self.err(s.span, "a neuron model has at most one `spike` declaration");
                    }
                }
                _ => {}
            }
            let misplaced = match (mem, is_rule) {
                (Member::Spike(s), true) => Some((s.span, "`spike`", "neuron models")),
                (Member::Reset(_, s), true) => Some((*s, "`reset`", "neuron models")),
                (Member::Refractory(e), true) => Some((e.span, "`refractory`", "neuron models")),
                (Member::Output(i), true) => Some((i.span, "`output`", "neuron models")),
                (Member::Input(i), true) => Some((i[0].span, "`input`", "neuron models")),
                (Member::Weight(e), false) => Some((e.span, "`weight`", "synapse rules")),
                (Member::Modulator(i), false) => Some((i[0].span, "`modulator`", "synapse rules")),
                _ => None,
            };
            if let Some((span, what, where_)) = misplaced {
                self.err(span, format!("{what} belongs in {where_}"));
            }
        }
        let space_of = |lw: &mut Self, s: &Option<Ident>, default_rule_state: bool| -> Sp {
            match s {
                None if default_rule_state && is_rule => Sp::Syn,
                None if default_rule_state => pop.map_or(Sp::Global, Sp::Pop),
                None => Sp::Global,
                Some(id) => match (id.name.as_str(), is_rule) {
                    ("synapse", true) => Sp::Syn,
                    ("pre", true) => Sp::Pre,
                    ("post", true) => Sp::Post,
                    ("neuron", false) => pop.map_or(Sp::Global, Sp::Pop),
                    _ => {
                        let allowed = if is_rule {
                            "`[synapse]`, `[pre]` or `[post]`"
                        } else {
                            "`[neuron]`"
                        };
                        lw.err(
                            id.span,
                            format!("unknown space `[{}]`: use {allowed}", id.name),
                        );
                        Sp::Global
                    }
                },
            }
        };
        // Overrides must name something declared.
        let declared: Vec<String> = model
            .members
            .iter()
            .flat_map(|m| match m {
                Member::Param(p) => vec![p.name.name.clone()],
                Member::State(s) => vec![s.name.name.clone()],
                Member::Modulator(ids) => ids.iter().map(|i| i.name.clone()).collect(),
                _ => vec![],
            })
            .collect();
        for o in overrides {
            if !declared.contains(&o.name.name) {
                let mut d = Diagnostic::error(
                    o.name.span,
                    format!(
                        "`{}` has no parameter, state or modulator `{}`",
                        model.name.name, o.name.name
                    ),
                );
                if let Some(h) = did_you_mean(&o.name.name, declared.iter().map(String::as_str)) {
                    d = d.with_note(h);
                }
                self.push(d);
            }
        }
        let init_of = |name: &str, own: Option<&ast::Init>| -> Option<ast::Init> {
            overrides
                .iter()
                .find(|o| o.name.name == name)
                .map(|o| o.init.clone())
                .or_else(|| own.cloned())
        };
        // Parameters: create all variables, then initial values in dependency order.
        let mut params: Vec<(&ast::ParamDecl, VarId, Sp, ast::Init)> = Vec::new();
        for mem in &model.members {
            if let Member::Param(p) = mem {
                let sp = space_of(self, &p.space, false);
                let space = self.ir_space(sp, proj);
                let z = self.zero();
                let kind = VarKind::Param {
                    learn: p.learn,
                    init: ir::Init::Expr(z),
                    bounds: None,
                };
                let var = self.add_var(format!("{prefix}.{}", p.name.name), space, kind, 0);
                let init = init_of(&p.name.name, Some(&p.init)).expect("a param has an init");
                params.push((p, var, sp, init));
            }
        }
        let order = self.param_order(
            &params
                .iter()
                .map(|(p, _, _, i)| (p.name.clone(), i.clone()))
                .collect::<Vec<_>>(),
        );
        let mut sc = Scope::new(Phase::Init, proj);
        for i in order {
            let (p, var, sp, init) = &params[i];
            let (iinit, u) = if self.cyclic.contains(&p.name.name) {
                (ir::Init::Expr(self.zero()), None)
            } else {
                let name = self.m.vars[*var].name.clone();
                self.lower_init(init, &name, &mut sc, *sp, proj)
            };
            let bounds = p.bounds.as_ref().and_then(|(lo, hi)| {
                let l = self.const_expr(lo, &mut sc, u)?;
                let h = self.const_expr(hi, &mut sc, u)?;
                if l > h {
                    self.err(lo.span.to(hi.span), "bounds must have `lo <= hi`");
                }
                Some((l, h))
            });
            let unit = u.unwrap_or(0);
            self.m.vars[*var].unit = unit;
            self.m.vars[*var].kind = VarKind::Param {
                learn: p.learn,
                init: iinit,
                bounds,
            };
            let e = self.m.add(Expr::Read(*var));
            sc.bind(
                &p.name.name,
                Some(Val {
                    e,
                    u: Some(unit),
                    sp: *sp,
                }),
                Role::Param,
                Some(*var),
                p.span,
            );
            inst.decls.push((
                p.name.name.clone(),
                Role::Param,
                Some(*var),
                Some(unit),
                *sp,
                p.span,
            ));
        }
        // States.
        for mem in &model.members {
            if let Member::State(s) = mem {
                let sp = space_of(self, &s.space, true);
                let space = self.ir_space(sp, proj);
                let init = init_of(&s.name.name, s.init.as_ref());
                let qualified = format!("{prefix}.{}", s.name.name);
                let (iinit, u) = match &init {
                    Some(i) => self.lower_init(i, &qualified, &mut sc, sp, proj),
                    None => (ir::Init::Expr(self.zero()), None),
                };
                let var = self.add_var(
                    format!("{prefix}.{}", s.name.name),
                    space,
                    VarKind::State { init: iinit },
                    u.unwrap_or(0),
                );
                inst.has_init.insert(s.name.name.clone(), init.is_some());
                if let Some(c) = &s.clip {
                    inst.clips.insert(s.name.name.clone(), c.clone());
                }
                inst.decls.push((
                    s.name.name.clone(),
                    Role::State,
                    Some(var),
                    Some(u.unwrap_or(0)),
                    sp,
                    s.span,
                ));
            }
        }
        for mem in &model.members {
            match mem {
                Member::Input(ids) if !is_rule => {
                    for id in ids {
                        inst.inputs.push(id.name.clone());
                        inst.decls.push((
                            id.name.clone(),
                            Role::Input,
                            None,
                            Some(0),
                            pop.map_or(Sp::Global, Sp::Pop),
                            id.span,
                        ));
                    }
                }
                Member::Modulator(ids) if is_rule => {
                    for id in ids {
                        inst.modulators.push((id.name.clone(), id.span));
                    }
                }
                Member::Spike(s) if !is_rule && inst.spike.is_none() => {
                    let z = self.zero();
                    let space = self.ir_space(pop.map_or(Sp::Global, Sp::Pop), None);
                    let var = self.add_var(
                        format!("{prefix}.{}", s.name.name),
                        space,
                        VarKind::State {
                            init: ir::Init::Expr(z),
                        },
                        0,
                    );
                    inst.spike = Some((s.name.name.clone(), var));
                    inst.decls.push((
                        s.name.name.clone(),
                        Role::Spike,
                        Some(var),
                        Some(0),
                        pop.map_or(Sp::Global, Sp::Pop),
                        s.span,
                    ));
                }
                Member::Output(id) if !is_rule => {
                    if inst.output.is_some() {
                        self.err(id.span, "a model has at most one `output`");
                    }
                    inst.output = Some(id.name.clone());
                }
                Member::Refractory(_) if !is_rule && inst.refr.is_none() => {
                    let z = self.zero();
                    let space = self.ir_space(pop.map_or(Sp::Global, Sp::Pop), None);
                    let var = self.add_var(
                        format!("{prefix}.refractory"),
                        space,
                        VarKind::State {
                            init: ir::Init::Expr(z),
                        },
                        1,
                    );
                    inst.refr = Some(var);
                }
                _ => {}
            }
        }
        if let Some(out) = &inst.output {
            let ok = inst.decls.iter().any(|d| &d.0 == out && d.1 == Role::State);
            if !ok {
                let span = model.members.iter().find_map(|m| {
                    if let Member::Output(i) = m {
                        Some(i.span)
                    } else {
                        None
                    }
                });
                self.err(
                    span.unwrap_or(model.span),
                    format!("`output {out}` must name a state of `{}`", model.name.name),
                );
            }
            if inst.spike.is_some() {
                self.err(
                    span_of_output(model),
                    "a spiking model's output is its spike: remove `output`",
                );
            }
        }
        inst
    }

    /// The initial value `init` of the variable named `name` (qualified) in `sp`.
    fn lower_init(
        &mut self,
        init: &ast::Init,
        name: &str,
        sc: &mut Scope,
        sp: Sp,
        proj: Option<ProjId>,
    ) -> (ir::Init, U) {
        let zero = self.zero();
        match init {
            ast::Init::File { path, span } => self.lower_file_init(path, *span, name, sp, proj),
            ast::Init::Expr(e) => match self.expr(e, sc) {
                Some(v) => {
                    if Self::join_sp(v.sp, sp) != Some(sp) {
                        let msg = format!(
                            "this initial value is {} but the variable is {}",
                            self.sp_name(v.sp),
                            self.sp_name(sp)
                        );
                        self.err(e.span, msg);
                        return (ir::Init::Expr(zero), v.u);
                    }
                    let v = self.coerce(v, sp, proj).unwrap_or(v);
                    (ir::Init::Expr(v.e), v.u)
                }
                None => (ir::Init::Expr(zero), None),
            },
            ast::Init::Dist(c) => {
                let kind = c.func.name.as_str();
                if kind != "normal" && kind != "uniform" {
                    let mut d = Diagnostic::error(c.func.span, format!("unknown initializer `{kind}`: use `normal(mean, sd)` or `uniform(lo, hi)`"));
                    if let Some(h) = did_you_mean(kind, ["normal", "uniform"]) {
                        d = d.with_note(h);
                    }
                    self.push(d);
                    return (ir::Init::Expr(zero), None);
                }
                if c.args.len() != 2 {
                    self.err(
                        c.span,
                        format!(
                            "wrong arity: `{kind}` takes 2 arguments, found {}",
                            c.args.len()
                        ),
                    );
                    return (ir::Init::Expr(zero), None);
                }
                let names: &[&str] = if kind == "normal" {
                    &["mean", "sd"]
                } else {
                    &["lo", "hi"]
                };
                let mut vals = [None, None];
                for (i, a) in c.args.iter().enumerate() {
                    let slot = match &a.name {
                        None => i,
                        Some(n) => match names.iter().position(|x| *x == n.name) {
                            Some(k) => k,
                            None => {
                                self.err(
                                    n.span,
                                    format!(
                                        "`{kind}` has no argument `{}`: use {}",
                                        n.name,
                                        names.join(", ")
                                    ),
                                );
                                return (ir::Init::Expr(zero), None);
                            }
                        },
                    };
                    vals[slot] = self.expr(&a.value, sc);
                }
                let (Some(a), Some(b)) = (vals[0], vals[1]) else {
                    return (ir::Init::Expr(zero), None);
                };
                let u = self.unit_eq(a.u, b.u, c.span, "the arguments of the initializer are");
                for v in [&a, &b] {
                    if v.sp != Sp::Global {
                        self.err(c.span, "initializer arguments must be shared values");
                        return (ir::Init::Expr(zero), u);
                    }
                }
                let init = if kind == "normal" {
                    ir::Init::Normal { mean: a.e, sd: b.e }
                } else {
                    ir::Init::Uniform { lo: a.e, hi: b.e }
                };
                (init, u)
            }
        }
    }

    /// `from "path"`: the entry `name` of the values file, if its size fits `sp`.
    fn lower_file_init(
        &mut self,
        path: &str,
        span: Span,
        name: &str,
        sp: Sp,
        proj: Option<ProjId>,
    ) -> (ir::Init, U) {
        let zero = self.zero();
        let Some(files) = &self.values else {
            return (ir::Init::Expr(zero), None);
        };
        let values = match files.get(&(span.file, path.to_string())) {
            Some(Some(v)) => v.clone(),
            Some(None) => return (ir::Init::Expr(zero), None), // reported by the checker
            None => {
                self.err(span, format!("the values file \"{path}\" was not loaded"));
                return (ir::Init::Expr(zero), None);
            }
        };
        let Some(entry) = values.params.get(name) else {
            let mut d = Diagnostic::error(span, format!("\"{path}\" has no values for `{name}`"));
            if let Some(h) = did_you_mean(name, values.params.keys().map(String::as_str)) {
                d = d.with_note(h);
            } else if values.params.is_empty() {
                d = d.with_note("the file's `params` object is empty");
            }
            self.push(d);
            return (ir::Init::Expr(zero), None);
        };
        let space = self.ir_space(sp, proj);
        let want = self.m.space_size(space);
        if entry.data.len() != want {
            let msg = format!(
                "\"{path}\" has {} values for `{name}` (shape {:?}), but it is {} with {want}",
                entry.data.len(),
                entry.shape,
                self.sp_name(sp),
            );
            self.err(span, msg);
            return (ir::Init::Expr(zero), None);
        }
        let k = self.m.add_data(entry.data.clone());
        (ir::Init::Data(k), Some(entry.unit))
    }

    /// A constant (parameters allowed only if constant after folding).
    fn const_expr(&mut self, e: &ast::Expr, sc: &mut Scope, want: U) -> Option<f64> {
        let v = self.expr(e, sc)?;
        self.unit_eq(want, v.u, e.span, "bounds and value are");
        match self.m.as_const(v.e) {
            Some(c) => Some(c),
            None => {
                self.err(e.span, "bounds must be numbers");
                None
            }
        }
    }

    /// Topological order of parameter initial values; reports cycles.
    fn param_order(&mut self, params: &[(Ident, ast::Init)]) -> Vec<usize> {
        let idx: HashMap<&str, usize> = params
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.name.as_str(), i))
            .collect();
        let deps: Vec<Vec<usize>> = params
            .iter()
            .map(|(_, init)| {
                let mut names = Vec::new();
                match init {
                    ast::Init::Expr(e) => collect_names(e, &mut names),
                    ast::Init::Dist(c) => c
                        .args
                        .iter()
                        .for_each(|a| collect_names(&a.value, &mut names)),
                    ast::Init::File { .. } => {}
                }
                names
                    .iter()
                    .filter_map(|n| idx.get(n.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut state = vec![0u8; params.len()];
        let mut order = Vec::new();
        let mut reported = false;
        fn visit(
            i: usize,
            deps: &[Vec<usize>],
            state: &mut [u8],
            order: &mut Vec<usize>,
            path: &mut Vec<usize>,
        ) -> Option<Vec<usize>> {
            if state[i] == 2 {
                return None;
            }
            if state[i] == 1 {
                let pos = path.iter().position(|&p| p == i).unwrap_or(0);
                let mut cyc = path[pos..].to_vec();
                cyc.push(i);
                return Some(cyc);
            }
            state[i] = 1;
            path.push(i);
            for &d in &deps[i] {
                if let Some(c) = visit(d, deps, state, order, path) {
                    return Some(c);
                }
            }
            path.pop();
            state[i] = 2;
            order.push(i);
            None
        }
        for i in 0..params.len() {
            let mut path = Vec::new();
            if let Some(cyc) = visit(i, &deps, &mut state, &mut order, &mut path) {
                if !reported {
                    reported = true;
                    let chain: Vec<String> = cyc
                        .iter()
                        .map(|&k| format!("`{}`", params[k].0.name))
                        .collect();
                    let first = &params[cyc[0]].0;
                    self.err(
                        first.span,
                        format!(
                            "cyclic definition: `{}` depends on itself ({})",
                            first.name,
                            chain.join(" -> ")
                        ),
                    );
                }
                // Break the cycle: its members get no initial value (one error is
                // enough), everything else goes on.
                for &k in &cyc {
                    if state[k] != 2 {
                        state[k] = 2;
                        self.cyclic.insert(params[k].0.name.clone());
                        order.push(k);
                    }
                }
            }
        }
        order
    }

    /// A scope with the declarations of an instance, as start-of-step values.
    fn scope_of(&mut self, inst: &Inst, phase: Phase, proj: Option<ProjId>) -> Scope {
        let mut sc = Scope::new(phase, proj);
        for (name, role, var, u, sp, span) in &inst.decls {
            let val = match (role, var) {
                (Role::State, Some(v)) if !inst.has_init.get(name).copied().unwrap_or(true) => {
                    sc.bind(name, None, Role::State, Some(*v), *span);
                    continue;
                }
                (_, Some(v)) => Some(Val {
                    e: self.m.add(Expr::Read(*v)),
                    u: *u,
                    sp: *sp,
                }),
                (_, None) => None,
            };
            sc.bind(name, val, *role, *var, *span);
        }
        sc
    }

    // ------------------------------------------------------------ statements

    fn stmts(&mut self, stmts: &[Stmt], sc: &mut Scope, gate: Option<Val>) {
        let mut i = 0;
        while i < stmts.len() {
            if let Stmt::Ode { .. } = &stmts[i] {
                let start = i;
                while i < stmts.len() && matches!(stmts[i], Stmt::Ode { .. }) {
                    i += 1;
                }
                self.odes(&stmts[start..i], sc, gate);
                continue;
            }
            self.stmt(&stmts[i], sc, gate);
            i += 1;
        }
    }

    fn target(&mut self, id: &Ident, sc: &Scope) -> Option<(Sp, U, Option<Val>)> {
        let Some(slot) = sc.names.get(&id.name) else {
            let known: Vec<&str> = sc
                .names
                .iter()
                .filter(|(_, s)| s.role == Role::State)
                .map(|(n, _)| n.as_str())
                .collect();
            let mut d = Diagnostic::error(id.span, format!("unknown name `{}`", id.name));
            if let Some(h) = did_you_mean(&id.name, known) {
                d = d.with_note(h);
            }
            self.push(d);
            return None;
        };
        let why = match slot.role {
            Role::State => None,
            Role::Param => Some(format!(
                "assignment to the parameter `{}`: parameters change only between episodes (declare it `state` to update it every step)",
                id.name
            )),
            Role::Input => Some(format!("assignment to the input `{}`: inputs are set by incoming projections", id.name)),
            Role::Let => Some(format!("assignment to `{}`, a `let` value: these cannot change", id.name)),
            Role::Spike => Some(format!("assignment to the spike `{}`: it is set by its `spike` declaration", id.name)),
            Role::Modulator => Some(format!("assignment to the modulator `{}`: the network sets modulators", id.name)),
        };
        if let Some(msg) = why {
            self.push(Diagnostic::error(id.span, msg).with_secondary(slot.decl, "declared here"));
            return None;
        }
        let var = slot.var?;
        let (u, sp) = self.decl_unit_sp(var);
        Some((sp, u, slot.val))
    }

    fn decl_unit_sp(&self, var: VarId) -> (U, Sp) {
        for inst in self.insts.iter().chain(self.proj_insts.iter()) {
            if let Some(d) = inst.decls.iter().find(|d| d.2 == Some(var)) {
                return (d.3, d.4);
            }
        }
        (Some(self.m.vars[var].unit), Sp::Global)
    }

    fn stmt(&mut self, s: &Stmt, sc: &mut Scope, gate: Option<Val>) {
        let proj = sc.proj;
        match s {
            Stmt::Let { name, value, span } => {
                if let Some(slot) = sc.names.get(&name.name) {
                    if slot.role != Role::Let {
                        let d = Diagnostic::error(
                            name.span,
                            format!("`let {}` would hide a declared name", name.name),
                        )
                        .with_secondary(slot.decl, "declared here");
                        self.push(d);
                        return;
                    }
                }
                let v = self.expr(value, sc);
                sc.bind(&name.name, v, Role::Let, None, *span);
                if v.is_none() {
                    // Avoid a second error for every later use.
                    let z = self.zero();
                    sc.bind(
                        &name.name,
                        Some(Val {
                            e: z,
                            u: None,
                            sp: Sp::Global,
                        }),
                        Role::Let,
                        None,
                        *span,
                    );
                }
            }
            Stmt::Assign {
                target,
                op,
                value,
                span,
            } => {
                let Some((sp, u, cur)) = self.target(target, sc) else {
                    let _ = self.expr(value, sc);
                    return;
                };
                let Some(v) = self.expr(value, sc) else {
                    return;
                };
                let old = if *op == AssignOp::Set && gate.is_none() {
                    None
                } else {
                    match cur {
                        Some(c) => Some(c),
                        None => {
                            self.path(std::slice::from_ref(target), target.span, sc);
                            return;
                        }
                    }
                };
                let want_u = if *op == AssignOp::Mul { Some(0) } else { u };
                self.unit_eq(want_u, v.u, value.span, &format!("`{}` is", target.name));
                let Some(new) = self.combine(*op, old, v, gate, *span, proj) else {
                    return;
                };
                self.assign(target, sp, u, new, sc, *span);
            }
            Stmt::Ode { .. } => self.odes(std::slice::from_ref(s), sc, gate),
            Stmt::On { who, body, span } => {
                let g = match (who.name.as_str(), proj) {
                    ("pre" | "post", Some(q)) => {
                        let pop = if who.name == "pre" {
                            self.m.projs[q].pre
                        } else {
                            self.m.projs[q].post
                        };
                        let out = Ident {
                            name: "out".into(),
                            span: who.span,
                        };
                        self.pop_field(pop, &out, who.span, sc.phase)
                            .map(|(e, u)| Val {
                                e,
                                u,
                                sp: if who.name == "pre" { Sp::Pre } else { Sp::Post },
                            })
                    }
                    _ => match sc.names.get(&who.name) {
                        Some(slot) if slot.role == Role::Spike => slot.val,
                        _ => {
                            let what = if proj.is_some() {
                                "`on pre` or `on post`"
                            } else {
                                "`on` followed by the model's spike name"
                            };
                            self.err(
                                who.span,
                                format!("`on {}` gates by a spike: use {what}", who.name),
                            );
                            None
                        }
                    },
                };
                let Some(g) = g else { return };
                let g = match gate {
                    Some(outer) => match self.unify(&[outer, g], *span, proj) {
                        Some((ops, sp)) => Val {
                            e: self.m.mk_mul(ops[0], ops[1]),
                            u: Some(0),
                            sp,
                        },
                        None => return,
                    },
                    None => g,
                };
                self.stmts(body, sc, Some(g));
            }
        }
    }

    /// The new value of `x op= v`, gated by a spike `g` if given.
    fn combine(
        &mut self,
        op: AssignOp,
        old: Option<Val>,
        v: Val,
        gate: Option<Val>,
        span: Span,
        proj: Option<ProjId>,
    ) -> Option<Val> {
        let mut vals = vec![v];
        vals.extend(old);
        vals.extend(gate);
        let (ops, sp) = self.unify(&vals, span, proj)?;
        let v = ops[0];
        let x = old.map(|_| ops[1]);
        let g = gate.map(|_| ops[ops.len() - 1]);
        let delta = match (op, x) {
            (AssignOp::Set, None) => return Some(Val { e: v, u: None, sp }),
            (AssignOp::Set, Some(x)) => self.m.mk_sub(v, x),
            (AssignOp::Add, _) => v,
            (AssignOp::Sub, _) => self.m.mk_neg(v),
            (AssignOp::Mul, Some(x)) => {
                let xv = self.m.mk_mul(x, v);
                self.m.mk_sub(xv, x)
            }
            (AssignOp::Mul, None) => return None,
        };
        let x = x?;
        let delta = match g {
            Some(g) => self.m.mk_mul(g, delta),
            None => delta,
        };
        // Ungated x = v stays v (handled above); x op= v becomes x + delta.
        let e = if op == AssignOp::Mul && g.is_none() {
            self.m.mk_mul(x, v)
        } else {
            self.m.mk_add(x, delta)
        };
        Some(Val { e, u: None, sp })
    }

    #[allow(clippy::too_many_arguments)]
    fn assign(&mut self, target: &Ident, sp: Sp, u: U, new: Val, sc: &mut Scope, span: Span) {
        let proj = sc.proj;
        let Some(v) = self.coerce(new, sp, proj) else {
            let msg = format!(
                "`{}` is {}, but this value is {}",
                target.name,
                self.sp_name(sp),
                self.sp_name(new.sp)
            );
            self.push(Diagnostic::error(span, msg).with_note(match sp {
                Sp::Pre => "a `[pre]` state may depend only on pre-synaptic and shared values",
                Sp::Post => "a `[post]` state may depend only on post-synaptic and shared values",
                _ => "a neuron state may depend only on its own neuron's values",
            }));
            return;
        };
        if let Some(slot) = sc.names.get_mut(&target.name) {
            slot.val = Some(Val { e: v.e, u, sp });
        }
    }

    fn odes(&mut self, odes: &[Stmt], sc: &mut Scope, gate: Option<Val>) {
        let proj = sc.proj;
        // All right-hand sides first (a system steps together).
        let mut pending = Vec::new();
        for s in odes {
            let Stmt::Ode {
                var,
                rhs,
                method,
                span,
            } = s
            else {
                continue;
            };
            let Some((sp, u, cur)) = self.target(var, sc) else {
                let _ = self.expr(rhs, sc);
                continue;
            };
            let Some(x) = (match cur {
                Some(c) => Some(c),
                None => self.path(std::slice::from_ref(var), var.span, sc),
            }) else {
                continue;
            };
            let Some(f) = self.expr(rhs, sc) else {
                continue;
            };
            let want = u.map(|k| k - 1);
            if let (Some(w), Some(got)) = (want, f.u) {
                if w != got {
                    let msg = format!(
                        "unit mismatch: `d{}/dt` must be {} (the unit of `{}` per time), but the right side is {}",
                        var.name,
                        unit_name(w),
                        var.name,
                        unit_name(got)
                    );
                    self.push(
                        Diagnostic::error(rhs.span, msg)
                            .with_note("divide by a time constant, e.g. `(-v + I) / tau`"),
                    );
                    continue;
                }
            }
            let Some(f) = self.coerce(f, sp, proj) else {
                let msg = format!(
                    "`{}` is {}, but its derivative is {}",
                    var.name,
                    self.sp_name(sp),
                    self.sp_name(f.sp)
                );
                self.err(rhs.span, msg);
                continue;
            };
            let Some(x) = self.coerce(x, sp, proj) else {
                continue;
            };
            pending.push((var.clone(), sp, u, x, f, method.clone(), *span));
        }
        let dt = self.m.constant(self.m.dt);
        for (var, sp, u, x, f, method, span) in pending {
            let new = self.integrate(&var, x.e, f.e, method.as_ref(), dt, span);
            let new = match gate {
                Some(g) => match self.unify(&[Val { e: new, u, sp }, x, g], span, proj) {
                    Some((ops, _)) => {
                        let d = self.m.mk_sub(ops[0], ops[1]);
                        let gd = self.m.mk_mul(ops[2], d);
                        self.m.mk_add(ops[1], gd)
                    }
                    None => continue,
                },
                None => new,
            };
            self.assign(&var, sp, u, Val { e: new, u, sp }, sc, span);
        }
    }

    fn integrate(
        &mut self,
        var: &Ident,
        x: ExprId,
        f: ExprId,
        method: Option<&Ident>,
        dt: ExprId,
        span: Span,
    ) -> ExprId {
        let euler = |m: &mut Module| {
            let step = m.mk_mul(dt, f);
            m.mk_add(x, step)
        };
        let a = self.m.deriv(f, x);
        let zero = self.m.constant(0.0);
        let (const_coef, cond_linear) = match a {
            Some(a) if a != zero => {
                let cond = !self.m.depends_on(a, x);
                let m = &self.m;
                let konst = cond
                    && !m.any_reachable(a, |_, e| match e {
                        Expr::Read(v) => !matches!(m.vars[*v].kind, VarKind::Param { .. }),
                        Expr::Hole(..) | Expr::Spike { .. } => true,
                        _ => false,
                    });
                (konst, cond)
            }
            _ => (false, false),
        };
        let requested = method.map(|m| m.name.as_str());
        let chosen = match requested {
            None => {
                if const_coef {
                    "exact"
                } else if cond_linear {
                    "exp_euler"
                } else {
                    "euler"
                }
            }
            Some("euler") => "euler",
            Some("exact") => {
                if a == Some(zero) {
                    "euler" // x' = b: Euler is exact
                } else if const_coef {
                    "exact"
                } else {
                    let msg = format!(
                        "`d{}/dt` cannot be integrated exactly: it is not linear in `{}` with a constant coefficient",
                        var.name, var.name
                    );
                    self.push(
                        Diagnostic::error(span, msg)
                            .with_note("use `using exp_euler` or `using euler`"),
                    );
                    "euler"
                }
            }
            Some("exp_euler") => {
                if a == Some(zero) {
                    "euler"
                } else if cond_linear {
                    "exp_euler"
                } else {
                    let msg = format!(
                        "`d{}/dt` is not linear in `{}`: exponential Euler does not apply",
                        var.name, var.name
                    );
                    self.push(Diagnostic::error(span, msg).with_note("use `using euler`"));
                    "euler"
                }
            }
            Some(other) => {
                let mut d = Diagnostic::error(
                    method.map_or(span, |m| m.span),
                    format!("unknown integrator `{other}`: use `exact`, `exp_euler` or `euler`"),
                );
                if let Some(h) = did_you_mean(other, ["exact", "exp_euler", "euler"]) {
                    d = d.with_note(h);
                }
                self.push(d);
                "euler"
            }
        };
        if chosen == "euler" {
            return euler(&mut self.m);
        }
        let a = a.expect("linear");
        // x' = a x + b  =>  x(t+dt) = x e^{a dt} + (b / a)(e^{a dt} - 1)
        let b = self.m.subst(f, x, zero);
        let adt = self.m.mk_mul(a, dt);
        let ex = self.m.mk_un(UnOp::Exp, adt);
        let decay = self.m.mk_mul(x, ex);
        if b == zero {
            return decay;
        }
        let one = self.m.constant(1.0);
        let em1 = self.m.mk_sub(ex, one);
        let ba = self.m.mk_div(b, a);
        let drive = self.m.mk_mul(ba, em1);
        self.m.mk_add(decay, drive)
    }

    // ------------------------------------------------------------ neuron step

    fn surrogate(&mut self, s: Option<&ast::Call>, sc: &mut Scope) -> Surrogate {
        let Some(c) = s else {
            let (a, b) = (self.m.constant(1.0), self.m.constant(10.0));
            return Surrogate {
                kind: SurrogateKind::FastSigmoid,
                a,
                b,
            };
        };
        let (kind, names, defaults): (SurrogateKind, [&str; 2], [f64; 2]) =
            match c.func.name.as_str() {
                "fast_sigmoid" => (SurrogateKind::FastSigmoid, ["scale", "height"], [10.0, 1.0]),
                "triangle" => (SurrogateKind::Triangle, ["height", "width"], [0.3, 1.0]),
                "arctan" => (SurrogateKind::Arctan, ["scale", "height"], [1.0, 1.0]),
                other => {
                    let mut d = Diagnostic::error(
                        c.func.span,
                        format!(
                        "unknown surrogate `{other}`: use `fast_sigmoid`, `triangle` or `arctan`"
                    ),
                    );
                    if let Some(h) = did_you_mean(other, ["fast_sigmoid", "triangle", "arctan"]) {
                        d = d.with_note(h);
                    }
                    self.push(d);
                    (SurrogateKind::FastSigmoid, ["scale", "height"], [10.0, 1.0])
                }
            };
        let mut vals = [self.m.constant(defaults[0]), self.m.constant(defaults[1])];
        if c.args.len() > 2 {
            self.err(
                c.span,
                format!("wrong arity: `{}` takes at most 2 arguments", c.func.name),
            );
        }
        for (i, a) in c.args.iter().enumerate().take(2) {
            let slot = match &a.name {
                None => i,
                Some(n) => match names.iter().position(|x| *x == n.name) {
                    Some(k) => k,
                    None => {
                        self.err(
                            n.span,
                            format!(
                                "`{}` has no argument `{}`: use {}",
                                c.func.name,
                                n.name,
                                names.join(", ")
                            ),
                        );
                        continue;
                    }
                },
            };
            if let Some(v) = self.expr(&a.value, sc) {
                if v.sp != Sp::Global {
                    self.err(a.value.span, "surrogate arguments must be shared values");
                    continue;
                }
                vals[slot] = v.e;
            }
        }
        // Internal order: a = height, b = scale/width.
        match kind {
            SurrogateKind::Triangle => Surrogate {
                kind,
                a: vals[0],
                b: vals[1],
            },
            _ => Surrogate {
                kind,
                a: vals[1],
                b: vals[0],
            },
        }
    }

    /// Lowers one population's update; `currents` are the summed inputs by name.
    fn neuron_step(
        &mut self,
        pop: PopId,
        model: &ast::Model,
        inst: &Inst,
        currents: &HashMap<String, Val>,
    ) {
        let mut sc = self.scope_of(inst, Phase::After, None);
        for name in &inst.inputs {
            let v = currents.get(name).copied().unwrap_or_else(|| Val {
                e: self.m.constant(0.0),
                u: None,
                sp: Sp::Global,
            });
            if let Some(slot) = sc.names.get_mut(name) {
                slot.val = Some(v);
            }
        }
        let before: HashMap<String, Option<Val>> =
            sc.names.iter().map(|(k, s)| (k.clone(), s.val)).collect();
        let stmts = update_statements(model);
        self.stmts(&stmts, &mut sc, None);
        // Refractoriness: hold states while the counter runs; no spike.
        // Active while more than half a step remains, so a period of k steps holds
        // exactly k steps whatever the rounding of the countdown.
        let refr_active = inst.refr.map(|r| {
            let rv = self.m.add(Expr::Read(r));
            let half = self.m.constant(0.5 * self.m.dt);
            self.m.mk_bin(BinOp::Lt, half, rv)
        });
        if let Some(active) = refr_active {
            for (name, role, ..) in &inst.decls {
                if *role != Role::State {
                    continue;
                }
                let (Some(Some(old)), Some(new)) =
                    (before.get(name), sc.names.get(name).and_then(|s| s.val))
                else {
                    continue;
                };
                if old.e == new.e {
                    continue;
                }
                let d = self.m.mk_sub(old.e, new.e);
                let held = self.m.mk_mul(active, d);
                let e = self.m.mk_add(new.e, held);
                if let Some(slot) = sc.names.get_mut(name) {
                    slot.val = Some(Val { e, ..new });
                }
            }
        }
        // Spike.
        let spike_decl = model.members.iter().find_map(|m| {
            if let Member::Spike(s) = m {
                Some(s)
            } else {
                None
            }
        });
        let mut z_new = None;
        if let (Some(s), Some((zname, zvar))) = (spike_decl, inst.spike.clone()) {
            let l = self.expr(&s.lhs, &mut sc);
            let r = self.expr(&s.rhs, &mut sc);
            let surrogate = self.surrogate(s.surrogate.as_ref(), &mut sc);
            if let (Some(l), Some(r)) = (l, r) {
                self.unit_eq(l.u, r.u, s.span, "comparing");
                if let Some((ops, _)) = self.unify(&[l, r], s.span, None) {
                    let (u, inclusive) = match s.op {
                        CmpOp::Gt => (self.m.mk_sub(ops[0], ops[1]), false),
                        CmpOp::Ge => (self.m.mk_sub(ops[0], ops[1]), true),
                        CmpOp::Lt => (self.m.mk_sub(ops[1], ops[0]), false),
                        CmpOp::Le => (self.m.mk_sub(ops[1], ops[0]), true),
                    };
                    let u = self
                        .coerce(
                            Val {
                                e: u,
                                u: None,
                                sp: Sp::Global,
                            },
                            Sp::Pop(pop),
                            None,
                        )
                        .map_or(u, |v| v.e);
                    let mut z = self.m.add(Expr::Spike {
                        arg: u,
                        inclusive,
                        surrogate,
                    });
                    if let Some(active) = refr_active {
                        let one = self.m.constant(1.0);
                        let free = self.m.mk_sub(one, active);
                        z = self.m.mk_mul(free, z);
                    }
                    z_new = Some(z);
                    if let Some(slot) = sc.names.get_mut(&zname) {
                        slot.val = Some(Val {
                            e: z,
                            u: Some(0),
                            sp: Sp::Pop(pop),
                        });
                    }
                    self.finals.insert(zvar, z);
                }
            }
        }
        // Reset and refractory counter.
        for m in &model.members {
            if let Member::Reset(body, span) = m {
                match z_new {
                    Some(z) => {
                        let g = Val {
                            e: z,
                            u: Some(0),
                            sp: Sp::Pop(pop),
                        };
                        self.stmts(body, &mut sc, Some(g));
                    }
                    None if inst.spike.is_none() => {
                        self.err(*span, "`reset` needs a `spike` declaration")
                    }
                    None => {}
                }
            }
            if let Member::Refractory(e) = m {
                let Some(rvar) = inst.refr else { continue };
                let t = self.expr(e, &mut sc);
                if let Some(t) = t {
                    self.unit_eq(Some(1), t.u, e.span, "a refractory period must be a time;");
                    let Some(z) = z_new else {
                        if inst.spike.is_none() {
                            self.err(e.span, "`refractory` needs a `spike` declaration");
                        }
                        continue;
                    };
                    let rv = self.m.add(Expr::Read(rvar));
                    let dt = self.m.constant(self.m.dt);
                    let dec = self.m.mk_sub(rv, dt);
                    let zero = self.zero();
                    let left = self.m.mk_bin(BinOp::Max, dec, zero);
                    let t = self.coerce(t, Sp::Pop(pop), None).map_or(t.e, |v| v.e);
                    let d = self.m.mk_sub(t, left);
                    let jump = self.m.mk_mul(z, d);
                    let e = self.m.mk_add(left, jump);
                    self.finals.insert(rvar, e);
                }
            }
        }
        self.finish_states(inst, &mut sc, None);
        // Exports.
        let mut table = HashMap::new();
        for (name, slot) in &sc.names {
            if matches!(slot.role, Role::Let) {
                continue;
            }
            if let Some(v) = slot.val {
                let v = self.coerce(v, Sp::Pop(pop), None).unwrap_or(v);
                table.insert(name.clone(), (v.e, v.u));
            }
        }
        let out = inst
            .spike
            .as_ref()
            .map(|(n, _)| n.clone())
            .or_else(|| inst.output.clone());
        if let Some(o) = out {
            if let Some(&v) = table.get(&o) {
                table.insert("out".into(), v);
            }
        }
        self.pop_new[pop.index()] = table;
    }

    /// Applies clips and records the final value of every state of an instance.
    fn finish_states(&mut self, inst: &Inst, sc: &mut Scope, proj: Option<ProjId>) {
        for (name, role, var, u, sp, _) in &inst.decls {
            let (Role::State, Some(var)) = (role, var) else {
                continue;
            };
            let Some(mut v) = sc.names.get(name).and_then(|s| s.val) else {
                let z = self.zero();
                self.finals.insert(*var, z);
                continue;
            };
            if let Some((lo, hi)) = inst.clips.get(name) {
                let mut isc = Scope::new(Phase::Init, proj);
                for (n, s) in &sc.names {
                    if s.role == Role::Param {
                        isc.names.insert(n.clone(), s.clone());
                    }
                }
                if let (Some(l), Some(h)) = (self.expr(lo, &mut isc), self.expr(hi, &mut isc)) {
                    self.unit_eq(*u, l.u, lo.span, "clip bounds and state are");
                    self.unit_eq(*u, h.u, hi.span, "clip bounds and state are");
                    if let Some((ops, _)) = self.unify(&[v, l, h], lo.span.to(hi.span), proj) {
                        let e = self.clip(ops[0], ops[1], ops[2]);
                        v = Val { e, ..v };
                        if let Some(slot) = sc.names.get_mut(name) {
                            slot.val = Some(v);
                        }
                    }
                }
            }
            let v = self.coerce(v, *sp, proj).unwrap_or(v);
            self.finals.insert(*var, v.e);
        }
    }

    // ------------------------------------------------------------ rule step

    fn rule_weight(&mut self, proj: ProjId, model: &ast::Model, inst: &Inst) -> Option<Val> {
        let w = model.members.iter().find_map(|m| {
            if let Member::Weight(e) = m {
                Some(e)
            } else {
                None
            }
        })?;
        let mut sc = self.scope_of(inst, Phase::Start, Some(proj));
        // Modulators are not known at the start of a step: they are not in scope.
        let v = self.expr(w, &mut sc)?;
        let v = self.coerce(v, Sp::Syn, Some(proj))?;
        Some(v)
    }

    fn rule_step(
        &mut self,
        proj: ProjId,
        model: &ast::Model,
        inst: &Inst,
        mods: &HashMap<String, Val>,
    ) {
        let mut sc = self.scope_of(inst, Phase::After, Some(proj));
        for (name, span) in &inst.modulators {
            sc.bind(name, mods.get(name).copied(), Role::Modulator, None, *span);
            if !mods.contains_key(name) {
                let z = self.zero();
                sc.bind(
                    name,
                    Some(Val {
                        e: z,
                        u: None,
                        sp: Sp::Global,
                    }),
                    Role::Modulator,
                    None,
                    *span,
                );
            }
        }
        let stmts = update_statements(model);
        self.stmts(&stmts, &mut sc, None);
        self.finish_states(inst, &mut sc, Some(proj));
    }

    fn finish(mut self) -> Result<(Module, Vec<Diagnostic>), Vec<Diagnostic>> {
        let states: Vec<VarId> = self
            .m
            .vars
            .iter()
            .filter(|(_, v)| matches!(v.kind, VarKind::State { .. }))
            .map(|(h, _)| h)
            .collect();
        for v in states {
            let e = match self.finals.get(&v) {
                Some(&e) => e,
                None => self.m.add(Expr::Read(v)),
            };
            self.m.updates.push((v, e));
        }
        let (errors, warnings): (Vec<_>, Vec<_>) =
            self.diags.into_iter().partition(|d| d.is_error());
        if errors.is_empty() {
            Ok((self.m, warnings))
        } else {
            Err(errors)
        }
    }
}

/// A model's update statements, in order.
fn update_statements(model: &ast::Model) -> Vec<Stmt> {
    model
        .members
        .iter()
        .filter_map(|m| {
            if let Member::Stmt(s) = m {
                Some(s.clone())
            } else {
                None
            }
        })
        .collect()
}

fn span_of_output(model: &ast::Model) -> Span {
    model
        .members
        .iter()
        .find_map(|m| {
            if let Member::Output(i) = m {
                Some(i.span)
            } else {
                None
            }
        })
        .unwrap_or(model.span)
}

fn collect_names(e: &ast::Expr, out: &mut Vec<String>) {
    match &e.kind {
        ExprKind::Num(..) => {}
        ExprKind::Path(p) => {
            if p.len() == 1 {
                out.push(p[0].name.clone());
            }
        }
        ExprKind::Unary(_, a) => collect_names(a, out),
        ExprKind::Binary(_, a, b) => {
            collect_names(a, out);
            collect_names(b, out);
        }
        ExprKind::Call(c) => c.args.iter().for_each(|a| collect_names(&a.value, out)),
        ExprKind::Hole(_, args) => args.iter().for_each(|a| collect_names(a, out)),
    }
}

/// Checks a model on its own: a neuron as a population of one, a rule between two
/// stand-in populations whose every variable is an input. Returns warnings.
pub(crate) fn lower_model_alone(model: &ast::Model) -> Result<Vec<Diagnostic>, Vec<Diagnostic>> {
    lower_model_module(model).map(|(_, w)| w)
}

/// Lowers one model on its own (see [`crate::check`]): a neuron model as a population
/// `self` of one neuron whose inputs are external; a synapse rule as a projection
/// `self` between two stand-in populations `pre` and `post` whose every variable, like
/// each modulator, is an external input. This is the IR `ruleopt compile` prints for
/// a file without a network.
pub fn lower_model(prog: &Program, name: &str) -> Result<Module, Vec<Diagnostic>> {
    match prog.model(name) {
        Some(m) => lower_model_module(m).map(|(m, _)| m),
        None => Err(vec![Diagnostic::plain(format!("no model named `{name}`"))]),
    }
}

fn lower_model_module(model: &ast::Model) -> Result<(Module, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut lw = Lowerer::new(&model.name.name, 1.0);
    match model.kind {
        ModelKind::Neuron => {
            let pop = lw.add_pop("self", 1, Some(model.name.name.clone()));
            let inst = lw.declare(model, "self", Some(pop), None, &[]);
            lw.insts[pop.index()] = inst.clone();
            let mut currents = HashMap::new();
            for name in &inst.inputs {
                let var = lw.add_var(
                    format!("self.{name}"),
                    ir::Space::Pop(pop),
                    VarKind::Input,
                    0,
                );
                let e = lw.m.add(Expr::Read(var));
                currents.insert(
                    name.clone(),
                    Val {
                        e,
                        u: None,
                        sp: Sp::Pop(pop),
                    },
                );
            }
            lw.neuron_step(pop, model, &inst, &currents);
        }
        ModelKind::Synapse => {
            let pre = lw.add_pop("pre", 1, None);
            let post = lw.add_pop("post", 1, None);
            lw.open.insert(pre);
            lw.open.insert(post);
            let q = lw.m.projs.push(Proj {
                name: "self".into(),
                pre,
                post,
                rule: model.name.name.clone(),
                conn: Connectivity::Dense,
            });
            let inst = lw.declare(model, "self", None, Some(q), &[]);
            lw.proj_insts.push(inst.clone());
            lw.rule_weight(q, model, &inst);
            let mut mods = HashMap::new();
            for (name, _) in &inst.modulators {
                let var = lw.add_var(format!("self.{name}"), ir::Space::Global, VarKind::Input, 0);
                let e = lw.m.add(Expr::Read(var));
                mods.insert(
                    name.clone(),
                    Val {
                        e,
                        u: None,
                        sp: Sp::Global,
                    },
                );
            }
            lw.rule_step(q, model, &inst, &mods);
        }
    }
    lw.finish()
}

/// Lowers one network of a program (the checker calls this for every network).
pub(crate) fn lower_network(prog: &Program, net: &ast::Network) -> Result<Module, Vec<Diagnostic>> {
    let mut dt = 1.0;
    let mut lw0 = Lowerer::new(&net.name.name, dt);
    for m in &net.members {
        if let NetMember::Dt(e) = m {
            let mut sc = Scope::new(Phase::Init, None);
            if let Some(v) = lw0.expr(e, &mut sc) {
                lw0.unit_eq(Some(1), v.u, e.span, "`dt` must be a time;");
                match lw0.m.as_const(v.e) {
                    Some(x) if x > 0.0 && x.is_finite() => dt = x,
                    _ => lw0.err(e.span, "`dt` must be a positive number of ms or s"),
                }
            }
        }
    }
    if !lw0.diags.is_empty() {
        return Err(lw0.diags);
    }
    let mut lw = Lowerer::new(&net.name.name, dt);
    lw.values = Some(prog.values.clone());
    let mut names: HashMap<String, Span> = HashMap::new();
    let mut dup = |lw: &mut Lowerer, id: &Ident| {
        if let Some(prev) = names.insert(id.name.clone(), id.span) {
            lw.push(
                Diagnostic::error(id.span, format!("`{}` is declared twice", id.name))
                    .with_secondary(prev, "first declared here"),
            );
        }
    };
    // Populations (and inputs), in order.
    let mut pop_models: Vec<Option<(&ast::Model, Vec<NetArg>)>> = Vec::new();
    for m in &net.members {
        match m {
            NetMember::Input { name, size, .. } => {
                dup(&mut lw, name);
                let p = lw.add_pop(&name.name, *size, None);
                let var = lw.add_var(
                    format!("{}.out", name.name),
                    ir::Space::Pop(p),
                    VarKind::Input,
                    0,
                );
                lw.m.pops[p].out = Some(var);
                let e = lw.m.add(Expr::Read(var));
                lw.pop_start[p.index()].insert("out".into(), (e, Some(0)));
                lw.pop_new[p.index()].insert("out".into(), (e, Some(0)));
                pop_models.push(None);
            }
            NetMember::Population {
                name,
                model,
                size,
                args,
                ..
            } => {
                dup(&mut lw, name);
                let found = prog.model(&model.name);
                lw.add_pop(&name.name, *size, Some(model.name.clone()));
                match found {
                    Some(md) if md.kind == ModelKind::Neuron => {
                        pop_models.push(Some((md, args.clone())))
                    }
                    Some(_) => {
                        lw.err(
                            model.span,
                            format!(
                                "`{}` is a synapse rule, but a population needs a neuron model",
                                model.name
                            ),
                        );
                        pop_models.push(None);
                    }
                    None => {
                        let neurons: Vec<&str> = prog
                            .model_order
                            .iter()
                            .filter(|n| prog.models[*n].kind == ModelKind::Neuron)
                            .map(String::as_str)
                            .collect();
                        let mut d = Diagnostic::error(
                            model.span,
                            format!("unknown neuron model `{}`", model.name),
                        );
                        if let Some(h) = did_you_mean(&model.name, neurons.iter().copied()) {
                            d = d.with_note(h);
                        } else if neurons.is_empty() {
                            d = d.with_note(
                                "no neuron model is defined: `import` the file that defines it",
                            );
                        }
                        lw.push(d);
                        pop_models.push(None);
                    }
                }
            }
            _ => {}
        }
    }
    // Neuron variables.
    for (i, pm) in pop_models.iter().enumerate() {
        let Some((md, args)) = pm else { continue };
        let p = PopId::new(i);
        let prefix = lw.m.pops[p].name.clone();
        let inst = lw.declare(md, &prefix, Some(p), None, args);
        let mut start = HashMap::new();
        for (name, role, var, u, _, _) in &inst.decls {
            if let (Role::Param | Role::State | Role::Spike, Some(v)) = (role, var) {
                start.insert(name.clone(), (lw.m.add(Expr::Read(*v)), *u));
            }
        }
        let out = inst
            .spike
            .as_ref()
            .map(|(n, _)| n.clone())
            .or_else(|| inst.output.clone());
        if let Some(o) = &out {
            if let Some(&v) = start.get(o) {
                start.insert("out".into(), v);
            }
            lw.m.pops[p].out = inst.decls.iter().find(|d| &d.0 == o).and_then(|d| d.2);
        }
        lw.pop_start[i] = start;
        lw.insts[i] = inst;
    }
    let pop_by_name = |lw: &mut Lowerer, id: &Ident| -> Option<PopId> {
        let found =
            lw.m.pops
                .iter()
                .find(|(_, p)| p.name == id.name)
                .map(|(h, _)| h);
        if found.is_none() {
            let names: Vec<String> = lw.m.pops.iter().map(|(_, p)| p.name.clone()).collect();
            let mut d = Diagnostic::error(id.span, format!("unknown population `{}`", id.name));
            if let Some(h) = did_you_mean(&id.name, names.iter().map(String::as_str)) {
                d = d.with_note(h);
            }
            lw.push(d);
        }
        found
    };
    // Signals and network parameters.
    for m in &net.members {
        if let NetMember::Signal { name, pop, span } = m {
            dup(&mut lw, name);
            let (space, sp) = match pop {
                None => (ir::Space::Global, Sp::Global),
                Some(id) => match pop_by_name(&mut lw, id) {
                    Some(p) => (ir::Space::Pop(p), Sp::Pop(p)),
                    None => continue,
                },
            };
            let var = lw.add_var(name.name.clone(), space, VarKind::Input, 0);
            let e = lw.m.add(Expr::Read(var));
            lw.net_names.insert(
                name.name.clone(),
                Slot {
                    val: Some(Val { e, u: None, sp }),
                    role: Role::Input,
                    var: Some(var),
                    decl: *span,
                },
            );
        }
    }
    let net_params: Vec<&ast::ParamDecl> = net
        .members
        .iter()
        .filter_map(|m| {
            if let NetMember::Param(p) = m {
                Some(p)
            } else {
                None
            }
        })
        .collect();
    {
        let order = lw.param_order(
            &net_params
                .iter()
                .map(|p| (p.name.clone(), p.init.clone()))
                .collect::<Vec<_>>(),
        );
        let mut sc = Scope::new(Phase::Init, None);
        for i in order {
            let p = net_params[i];
            dup(&mut lw, &p.name);
            let sp = match &p.space {
                None => Sp::Global,
                Some(id) => match pop_by_name(&mut lw, id) {
                    Some(pp) => Sp::Pop(pp),
                    None => continue,
                },
            };
            let (init, u) = if lw.cyclic.contains(&p.name.name) {
                (ir::Init::Expr(lw.zero()), None)
            } else {
                lw.lower_init(&p.init, &p.name.name, &mut sc, sp, None)
            };
            let bounds = p.bounds.as_ref().and_then(|(lo, hi)| {
                let l = lw.const_expr(lo, &mut sc, u)?;
                let h = lw.const_expr(hi, &mut sc, u)?;
                Some((l, h))
            });
            let space = lw.ir_space(sp, None);
            let var = lw.add_var(
                p.name.name.clone(),
                space,
                VarKind::Param {
                    learn: p.learn,
                    init,
                    bounds,
                },
                u.unwrap_or(0),
            );
            let e = lw.m.add(Expr::Read(var));
            let slot = Slot {
                val: Some(Val {
                    e,
                    u: Some(u.unwrap_or(0)),
                    sp,
                }),
                role: Role::Param,
                var: Some(var),
                decl: p.span,
            };
            sc.names.insert(p.name.name.clone(), slot.clone());
            lw.net_names.insert(p.name.name.clone(), slot);
        }
    }
    for m in &net.members {
        if let NetMember::Modulator { name, value, span } = m {
            dup(&mut lw, name);
            lw.net_mods
                .insert(name.name.clone(), (value.clone(), *span));
        }
    }
    // Projections: variables and weights.
    let mut projs: Vec<(ProjId, &ast::Projection, &ast::Model)> = Vec::new();
    for m in &net.members {
        let NetMember::Projection(pj) = m else {
            continue;
        };
        dup(&mut lw, &pj.name);
        let (pre, post) = (
            pop_by_name(&mut lw, &pj.pre),
            pop_by_name(&mut lw, &pj.post),
        );
        let rule = match prog.model(&pj.rule.name) {
            Some(r) if r.kind == ModelKind::Synapse => Some(r),
            Some(_) => {
                lw.err(
                    pj.rule.span,
                    format!(
                        "`{}` is a neuron model, but a projection needs a synapse rule",
                        pj.rule.name
                    ),
                );
                None
            }
            None => {
                let rules: Vec<&str> = prog
                    .model_order
                    .iter()
                    .filter(|n| prog.models[*n].kind == ModelKind::Synapse)
                    .map(String::as_str)
                    .collect();
                let mut d = Diagnostic::error(
                    pj.rule.span,
                    format!("unknown synapse rule `{}`", pj.rule.name),
                );
                if let Some(h) = did_you_mean(&pj.rule.name, rules.iter().copied()) {
                    d = d.with_note(h);
                }
                lw.push(d);
                None
            }
        };
        let (Some(pre), Some(post), Some(rule)) = (pre, post, rule) else {
            continue;
        };
        if lw.m.pops[post].model.is_none() {
            lw.err(
                pj.post.span,
                format!(
                    "`{}` is an input: it cannot receive a projection",
                    pj.post.name
                ),
            );
            continue;
        }
        let conn = match &pj.connect {
            None => Connectivity::Dense,
            Some(c) => match (c.func.name.as_str(), c.args.len()) {
                ("dense", 0) => Connectivity::Dense,
                ("dense_no_self", 0) => {
                    if pre != post {
                        lw.err(
                            c.span,
                            "`dense_no_self` needs the same population at both ends",
                        );
                    }
                    Connectivity::DenseNoSelf
                }
                ("one_to_one", 0) => {
                    let (a, b) = (lw.m.pops[pre].size, lw.m.pops[post].size);
                    if a != b {
                        lw.err(
                            c.span,
                            format!(
                                "`one_to_one` needs populations of the same size: `{}` has {a} neurons, `{}` {b}",
                                pj.pre.name, pj.post.name
                            ),
                        );
                    }
                    Connectivity::OneToOne
                }
                ("random", 1) => {
                    let mut sc = Scope::new(Phase::Init, None);
                    let p = lw
                        .expr(&c.args[0].value, &mut sc)
                        .and_then(|v| lw.m.as_const(v.e));
                    if let Some(n) = &c.args[0].name {
                        if n.name != "p" {
                            lw.err(n.span, "`random` has one argument, `p`");
                        }
                    }
                    match p {
                        Some(p) if (0.0..=1.0).contains(&p) => Connectivity::Random { p },
                        _ => {
                            lw.err(
                                c.args[0].value.span,
                                "`random(p)` needs a probability between 0 and 1",
                            );
                            Connectivity::Dense
                        }
                    }
                }
                (name, n) => {
                    let mut d = Diagnostic::error(
                        c.span,
                        format!("unknown connectivity `{name}` with {n} argument(s): use `dense()`, `dense_no_self()`, `one_to_one()` or `random(p = ...)`"),
                    );
                    if let Some(h) =
                        did_you_mean(name, ["dense", "dense_no_self", "one_to_one", "random"])
                    {
                        d = d.with_note(h);
                    }
                    lw.push(d);
                    Connectivity::Dense
                }
            },
        };
        let q = lw.m.projs.push(Proj {
            name: pj.name.name.clone(),
            pre,
            post,
            rule: rule.name.name.clone(),
            conn,
        });
        let overrides: Vec<NetArg> = pj
            .args
            .iter()
            .filter(|a| !rule.members.iter().any(|m| matches!(m, Member::Modulator(ids) if ids.iter().any(|i| i.name == a.name.name))))
            .cloned()
            .collect();
        let inst = lw.declare(rule, &pj.name.name, None, Some(q), &overrides);
        lw.proj_insts.push(inst);
        projs.push((q, pj, rule));
    }
    let mut weights: HashMap<ProjId, Val> = HashMap::new();
    for (k, &(q, pj, rule)) in projs.iter().enumerate() {
        let inst = lw.proj_insts[k].clone();
        if let Some(w) = lw.rule_weight(q, rule, &inst) {
            weights.insert(q, w);
        } else if !rule.members.iter().any(|m| matches!(m, Member::Weight(_))) {
            lw.diags.push(Diagnostic::warning(
                pj.span,
                format!(
                    "rule `{}` has no `weight`: this projection transmits nothing",
                    rule.name.name
                ),
            ));
        }
    }
    // Populations update in order.
    for (i, pm) in pop_models.iter().enumerate() {
        let Some((md, _)) = pm else { continue };
        let p = PopId::new(i);
        let inst = lw.insts[i].clone();
        let mut currents: HashMap<String, Val> = HashMap::new();
        for &(q, pj, _) in &projs {
            if lw.m.projs[q].post != p {
                continue;
            }
            let Some(w) = weights.get(&q).copied() else {
                continue;
            };
            let target = match &pj.target {
                Some(t) => {
                    if !inst.inputs.contains(&t.name) {
                        let mut d = Diagnostic::error(
                            t.span,
                            format!("`{}` has no input `{}`", md.name.name, t.name),
                        );
                        if let Some(h) =
                            did_you_mean(&t.name, inst.inputs.iter().map(String::as_str))
                        {
                            d = d.with_note(h);
                        } else {
                            d = d.with_note(format!("its inputs: {}", inst.inputs.join(", ")));
                        }
                        lw.push(d);
                        continue;
                    }
                    t.name.clone()
                }
                None => match inst.inputs.first() {
                    Some(n) => n.clone(),
                    None => {
                        lw.err(
                            pj.post.span,
                            format!(
                                "`{}` has no `input`: it cannot receive a projection",
                                md.name.name
                            ),
                        );
                        continue;
                    }
                },
            };
            let pre = lw.m.projs[q].pre;
            let table = if lw.m.pops[pre].model.is_none() || pre.index() < i {
                &lw.pop_new
            } else {
                &lw.pop_start
            };
            let Some(&(out, _)) = table[pre.index()].get("out") else {
                lw.err(
                    pj.pre.span,
                    format!(
                        "population `{}` has no output to transmit (no `spike` and no `output`)",
                        pj.pre.name
                    ),
                );
                continue;
            };
            let b = lw.m.add(Expr::Bcast(q, Side::Pre, out));
            let mut prod = lw.m.mk_mul(w.e, b);
            if lw.m.space(prod) == ir::Space::Global {
                // Folded to a constant (`weight = 0`): still one term per synapse.
                prod = lw.m.add(Expr::Bcast(q, Side::Pre, prod));
            }
            let sum = lw.m.add(Expr::SumPre(q, prod));
            let entry = currents.entry(target).or_insert(Val {
                e: lw.m.constant(0.0),
                u: None,
                sp: Sp::Pop(p),
            });
            entry.e = lw.m.mk_add(entry.e, sum);
        }
        lw.neuron_step(p, md, &inst, &currents);
    }
    // Modulators (all of them, so every error is reported), then rules.
    let mod_names: Vec<String> = net
        .members
        .iter()
        .filter_map(|m| {
            if let NetMember::Modulator { name, .. } = m {
                Some(name.name.clone())
            } else {
                None
            }
        })
        .collect();
    for n in &mod_names {
        let span = lw.net_mods[n].1;
        lw.net_name(n, span);
    }
    for (k, &(q, pj, rule)) in projs.iter().enumerate() {
        let inst = lw.proj_insts[k].clone();
        let mut mods = HashMap::new();
        for (mname, mspan) in &inst.modulators {
            let Some(arg) = pj.args.iter().find(|a| &a.name.name == mname) else {
                lw.push(
                    Diagnostic::error(
                        pj.span,
                        format!(
                            "rule `{}` needs the modulator `{mname}`: bind it with `{mname} = ...`",
                            rule.name.name
                        ),
                    )
                    .with_secondary(*mspan, "declared here"),
                );
                continue;
            };
            let ast::Init::Expr(e) = &arg.init else {
                lw.err(
                    arg.name.span,
                    format!("bind the modulator `{mname}` with `=` to a network expression"),
                );
                continue;
            };
            let mut sc = Scope::new(Phase::After, None);
            sc.net = true;
            let Some(v) = lw.expr(e, &mut sc) else {
                continue;
            };
            let (pre, post) = (lw.m.projs[q].pre, lw.m.projs[q].post);
            let sp = match v.sp {
                Sp::Global => Sp::Global,
                Sp::Pop(p) if p == post => Sp::Post,
                Sp::Pop(p) if p == pre => Sp::Pre,
                other => {
                    let msg = format!(
                        "the modulator `{mname}` of `{}` is {}, which is neither its pre nor its post population",
                        pj.name.name,
                        lw.sp_name(other)
                    );
                    lw.err(e.span, msg);
                    continue;
                }
            };
            mods.insert(mname.clone(), Val { sp, ..v });
        }
        lw.rule_step(q, rule, &inst, &mods);
    }
    // Readouts.
    for m in &net.members {
        let NetMember::Readout(paths, _) = m else {
            continue;
        };
        for path in paths {
            let full: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
            let span = path[0].span.to(path[path.len() - 1].span);
            let qual = full.join(".");
            let var = if path.len() == 2 && path[1].name == "out" {
                lw.m.pops
                    .iter()
                    .find(|(_, p)| p.name == path[0].name)
                    .and_then(|(_, p)| p.out)
            } else {
                lw.m.var_by_name(&qual)
            };
            match var {
                Some(v) if !matches!(lw.m.vars[v].kind, VarKind::Param { .. }) => {
                    lw.m.readouts.push((qual, v))
                }
                _ => {
                    let names: Vec<String> =
                        lw.m.vars
                            .iter()
                            .filter(|(_, v)| matches!(v.kind, VarKind::State { .. }))
                            .map(|(_, v)| v.name.clone())
                            .collect();
                    let mut d = Diagnostic::error(
                        span,
                        format!(
                            "unknown readout `{qual}`: a readout names a state such as `out.y`"
                        ),
                    );
                    if let Some(h) = did_you_mean(&qual, names.iter().map(String::as_str)) {
                        d = d.with_note(h);
                    }
                    lw.push(d);
                }
            }
        }
    }
    lw.finish().map(|(m, _)| m)
}
