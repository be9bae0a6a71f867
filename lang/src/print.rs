//! The canonical text form of a [`Module`] (its `Display`), and [`expr_to_string`], an
//! infix formula of one expression.
//!
//! The text form lists, one per line and in this order: the header, populations,
//! projections, variables, live nodes, updates and readouts:
//!
//! ```text
//! module W1 (dt = 1 ms)
//! pop x[4] input -> x.out
//! pop rec[3] LIF -> rec.z
//! proj inp: x -> rec Static random(p = 0.25)
//! var x.out : input Pop(x)
//! var rec.tau_m : param Global ms = %0
//! var rec.v : state Pop(rec) = %1
//! var rec.z : state Pop(rec) = %1
//! var inp.w : learn Syn(inp) ~ normal(%1, %2) in [-1, 1]
//! %0 = const 20
//! %1 = const 0
//! %2 = const 0.951229424500714
//! %3 = read rec.v                  ; Pop(rec)
//! %4 = read x.out                  ; Pop(x)
//! %5 = bcast.pre inp %4            ; Syn(inp)
//! %6 = read inp.w                  ; Syn(inp)
//! %7 = mul %6 %5                   ; Syn(inp)
//! %8 = sum.pre inp %7              ; Pop(rec)
//! ...
//! %15 = spike %13 > 0 fast_sigmoid(%12, %14) ; Pop(rec)
//! update rec.v = %16
//! update rec.z = %15
//! readout rec.z
//! readout volt = rec.v
//! ```
//!
//! Only live nodes ([`Module::live`]) are printed, numbered densely in arena order, so
//! dead nodes leave no gaps. Non-`Global` nodes carry their space as a comment. Units
//! print as `ms^k` (`ms` for 1) when nonzero. Numbers print with [`fmt_num`].

use std::fmt;

use crate::ir::{
    BinOp, Connectivity, Expr, ExprId, Init, Module, PopId, ProjId, Side, Space, SurrogateKind,
    UnOp, VarId, VarKind,
};

/// A number in a form that parses back to the same f64: Rust's shortest round-trip
/// `{}` form for magnitudes in `[1e-5, 1e16)` (and 0), exponent form (`1e-7`,
/// `2.5e20`) otherwise; `-0`, `inf`, `-inf`, `NaN` as such.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() || a == 0.0 || (1e-5..1e16).contains(&a) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

fn pop_name(m: &Module, p: PopId) -> String {
    if p.index() < m.pops.len() {
        m.pops[p].name.clone()
    } else {
        format!("{p:?}")
    }
}

fn proj_name(m: &Module, q: ProjId) -> String {
    if q.index() < m.projs.len() {
        m.projs[q].name.clone()
    } else {
        format!("{q:?}")
    }
}

fn var_name(m: &Module, v: VarId) -> String {
    if v.index() < m.vars.len() {
        m.vars[v].name.clone()
    } else {
        format!("{v:?}")
    }
}

/// A space with names: `Global`, `Pop(rec)`, `Syn(recur)`.
pub(crate) fn space_name(m: &Module, s: Space) -> String {
    match s {
        Space::Global => "Global".into(),
        Space::Pop(p) => format!("Pop({})", pop_name(m, p)),
        Space::Syn(q) => format!("Syn({})", proj_name(m, q)),
    }
}

fn unop_name(op: UnOp) -> &'static str {
    match op {
        UnOp::Neg => "neg",
        UnOp::Exp => "exp",
        UnOp::Log => "log",
        UnOp::Tanh => "tanh",
        UnOp::Sigmoid => "sigmoid",
        UnOp::Sqrt => "sqrt",
        UnOp::Abs => "abs",
        UnOp::Relu => "relu",
        UnOp::Sin => "sin",
        UnOp::Cos => "cos",
    }
}

fn binop_name(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "add",
        BinOp::Sub => "sub",
        BinOp::Mul => "mul",
        BinOp::Div => "div",
        BinOp::Pow => "pow",
        BinOp::Min => "min",
        BinOp::Max => "max",
        BinOp::Lt => "lt",
        BinOp::Le => "le",
    }
}

fn surrogate_name(k: SurrogateKind) -> &'static str {
    match k {
        SurrogateKind::FastSigmoid => "fast_sigmoid",
        SurrogateKind::Triangle => "triangle",
        SurrogateKind::Arctan => "arctan",
    }
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Pre => "pre",
        Side::Post => "post",
    }
}

/// Dense numbers of live nodes.
struct Numbering(Vec<Option<usize>>);

impl Numbering {
    fn new(m: &Module) -> Numbering {
        let mut n = 0;
        Numbering(
            m.live()
                .into_iter()
                .map(|l| {
                    l.then(|| {
                        n += 1;
                        n - 1
                    })
                })
                .collect(),
        )
    }

    /// `%k`, or `%?#i` for a node that is not live (cannot happen for references
    /// from live nodes, updates or initializers).
    fn name(&self, e: ExprId) -> String {
        match self.0.get(e.index()).copied().flatten() {
            Some(k) => format!("%{k}"),
            None => format!("%?{e:?}"),
        }
    }
}

fn node_text(m: &Module, n: &Numbering, e: &Expr) -> String {
    let r = |e: ExprId| n.name(e);
    match e {
        Expr::Const(c) => format!("const {}", fmt_num(c.0)),
        Expr::Read(v) => format!("read {}", var_name(m, *v)),
        Expr::Unary(op, a) => format!("{} {}", unop_name(*op), r(*a)),
        Expr::Binary(op, a, b) => format!("{} {} {}", binop_name(*op), r(*a), r(*b)),
        Expr::Clip(x, lo, hi) => format!("clip {} {} {}", r(*x), r(*lo), r(*hi)),
        Expr::Spike {
            arg,
            inclusive,
            surrogate,
        } => format!(
            "spike {} {} 0 {}({}, {})",
            r(*arg),
            if *inclusive { ">=" } else { ">" },
            surrogate_name(surrogate.kind),
            r(surrogate.a),
            r(surrogate.b)
        ),
        Expr::Bcast(q, side, a) => {
            format!("bcast.{} {} {}", side_name(*side), proj_name(m, *q), r(*a))
        }
        Expr::SumPre(q, a) => format!("sum.pre {} {}", proj_name(m, *q), r(*a)),
        Expr::SumPost(q, a) => format!("sum.post {} {}", proj_name(m, *q), r(*a)),
        Expr::SumPop(p, a) => format!("sum.pop {} {}", pop_name(m, *p), r(*a)),
        Expr::Hole(name, args) => {
            format!(
                "hole ?{name}({})",
                args.iter().map(|&a| r(a)).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

fn init_text(n: &Numbering, init: &Init) -> String {
    match *init {
        Init::Expr(e) => format!(" = {}", n.name(e)),
        Init::Normal { mean, sd } => format!(" ~ normal({}, {})", n.name(mean), n.name(sd)),
        Init::Uniform { lo, hi } => format!(" ~ uniform({}, {})", n.name(lo), n.name(hi)),
        Init::Data(k) => format!(" from data#{k}"),
    }
}

/// Width the instruction of a node line is padded to before its space comment.
const COMMENT_COLUMN: usize = 32;

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self;
        let n = Numbering::new(m);
        writeln!(f, "module {} (dt = {} ms)", m.name, fmt_num(m.dt))?;
        for (_, pop) in m.pops.iter() {
            write!(
                f,
                "pop {}[{}] {}",
                pop.name,
                pop.size,
                pop.model.as_deref().unwrap_or("input")
            )?;
            if let Some(out) = pop.out {
                write!(f, " -> {}", var_name(m, out))?;
            }
            writeln!(f)?;
        }
        for (_, proj) in m.projs.iter() {
            let conn = match proj.conn {
                Connectivity::Dense => "dense".to_string(),
                Connectivity::DenseNoSelf => "dense_no_self".to_string(),
                Connectivity::OneToOne => "one_to_one".to_string(),
                Connectivity::Random { p } => format!("random(p = {})", fmt_num(p)),
            };
            writeln!(
                f,
                "proj {}: {} -> {} {} {conn}",
                proj.name,
                pop_name(m, proj.pre),
                pop_name(m, proj.post),
                proj.rule
            )?;
        }
        for (_, var) in m.vars.iter() {
            let kind = match &var.kind {
                VarKind::Param { learn: false, .. } => "param",
                VarKind::Param { learn: true, .. } => "learn",
                VarKind::State { .. } => "state",
                VarKind::Input => "input",
            };
            write!(f, "var {} : {kind} {}", var.name, space_name(m, var.space))?;
            match var.unit {
                0 => {}
                1 => write!(f, " ms")?,
                k => write!(f, " ms^{k}")?,
            }
            match &var.kind {
                VarKind::Param { init, bounds, .. } => {
                    write!(f, "{}", init_text(&n, init))?;
                    if let Some((lo, hi)) = bounds {
                        write!(f, " in [{}, {}]", fmt_num(*lo), fmt_num(*hi))?;
                    }
                }
                VarKind::State { init } => write!(f, "{}", init_text(&n, init))?,
                VarKind::Input => {}
            }
            writeln!(f)?;
        }
        for (id, e) in m.exprs().iter() {
            if n.0[id.index()].is_none() {
                continue;
            }
            let line = format!("{} = {}", n.name(id), node_text(m, &n, e));
            match m.space(id) {
                Space::Global => writeln!(f, "{line}")?,
                s => writeln!(f, "{line:<COMMENT_COLUMN$} ; {}", space_name(m, s))?,
            }
        }
        for &(v, e) in &m.updates {
            writeln!(f, "update {} = {}", var_name(m, v), n.name(e))?;
        }
        for (name, v) in &m.readouts {
            let var = var_name(m, *v);
            if *name == var {
                writeln!(f, "readout {name}")?;
            } else {
                writeln!(f, "readout {name} = {var}")?;
            }
        }
        Ok(())
    }
}

// Precedence levels of the infix form.
const P_CMP: u8 = 1;
const P_ADD: u8 = 2;
const P_MUL: u8 = 3;
const P_NEG: u8 = 4;
const P_POW: u8 = 5;
const P_ATOM: u8 = 6;

/// An infix rendering: text, precedence, and whether it starts with a minus sign.
struct Infix {
    text: String,
    prec: u8,
    neg: bool,
}

impl Infix {
    fn atom(text: String) -> Infix {
        Infix {
            text,
            prec: P_ATOM,
            neg: false,
        }
    }
    /// The text, parenthesised if its precedence is below `min` or it starts with a
    /// minus sign and `no_minus` is set.
    fn wrap(&self, min: u8, no_minus: bool) -> String {
        if self.prec < min || (no_minus && self.neg) {
            format!("({})", self.text)
        } else {
            self.text.clone()
        }
    }
}

/// Where an expression is printed: inside a broadcast from a population, reads of
/// that population's variables print as `pre.x` / `post.x`.
#[derive(Clone, Copy)]
struct Ctx {
    side: Option<(Side, PopId)>,
}

/// The context outside any broadcast.
const TOP: Ctx = Ctx { side: None };

fn infix(m: &Module, e: ExprId, ctx: Ctx) -> Infix {
    let sub = |a: ExprId| infix(m, a, ctx);
    let call = |f: &str, args: &[ExprId]| {
        Infix::atom(format!(
            "{f}({})",
            args.iter()
                .map(|&a| sub(a).text)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    };
    match m.expr(e) {
        Expr::Const(c) => {
            let text = fmt_num(c.0);
            if text.starts_with('-') {
                Infix {
                    text,
                    prec: P_NEG,
                    neg: true,
                }
            } else {
                Infix::atom(text)
            }
        }
        Expr::Read(v) => Infix::atom(read_name(m, *v, ctx)),
        Expr::Unary(UnOp::Neg, a) => {
            let a = sub(*a);
            Infix {
                text: format!("-{}", a.wrap(P_NEG, true)),
                prec: P_NEG,
                neg: true,
            }
        }
        Expr::Unary(op, a) => call(unop_name(*op), &[*a]),
        Expr::Binary(op, a, b) => {
            let (sym, prec) = match op {
                BinOp::Min => return call("min", &[*a, *b]),
                BinOp::Max => return call("max", &[*a, *b]),
                BinOp::Add => ("+", P_ADD),
                BinOp::Sub => ("-", P_ADD),
                BinOp::Mul => ("*", P_MUL),
                BinOp::Div => ("/", P_MUL),
                BinOp::Pow => ("^", P_POW),
                BinOp::Lt => ("<", P_CMP),
                BinOp::Le => ("<=", P_CMP),
            };
            let (a, b) = (sub(*a), sub(*b));
            let (lmin, rmin) = match op {
                BinOp::Pow => (P_ATOM, P_POW),
                BinOp::Lt | BinOp::Le => (P_CMP + 1, P_CMP + 1),
                _ => (prec, prec + 1),
            };
            Infix {
                text: format!("{} {sym} {}", a.wrap(lmin, false), b.wrap(rmin, true)),
                prec,
                neg: a.neg && a.prec >= lmin,
            }
        }
        Expr::Clip(x, lo, hi) => call("clip", &[*x, *lo, *hi]),
        Expr::Spike { arg, inclusive, .. } => {
            let u = sub(*arg);
            Infix::atom(format!(
                "spike({} {} 0)",
                u.wrap(P_CMP + 1, false),
                if *inclusive { ">=" } else { ">" }
            ))
        }
        Expr::Bcast(q, side, a) => {
            let proj = &m.projs[*q];
            let pop = if *side == Side::Pre {
                proj.pre
            } else {
                proj.post
            };
            infix(
                m,
                *a,
                Ctx {
                    side: Some((*side, pop)),
                },
            )
        }
        // A sum leaves the context of an enclosing broadcast.
        Expr::SumPre(q, a) => Infix::atom(format!(
            "sum_pre[{}]({})",
            proj_name(m, *q),
            infix(m, *a, TOP).text
        )),
        Expr::SumPost(q, a) => Infix::atom(format!(
            "sum_post[{}]({})",
            proj_name(m, *q),
            infix(m, *a, TOP).text
        )),
        Expr::SumPop(p, a) => Infix::atom(format!(
            "sum[{}]({})",
            pop_name(m, *p),
            infix(m, *a, TOP).text
        )),
        Expr::Hole(name, args) => call(&format!("?{name}"), args),
    }
}

/// A variable's name as seen from `ctx`: `pre.out`, `post.v` for variables of the
/// population a broadcast reads, the qualified name otherwise.
fn read_name(m: &Module, v: VarId, ctx: Ctx) -> String {
    let name = var_name(m, v);
    if let Some((side, p)) = ctx.side {
        let pop = &m.pops[p];
        if v.index() < m.vars.len() && m.vars[v].space == Space::Pop(p) {
            if pop.out == Some(v) {
                return format!("{}.out", side_name(side));
            }
            if let Some(rest) = name.strip_prefix(&format!("{}.", pop.name)) {
                return format!("{}.{rest}", side_name(side));
            }
        }
    }
    name
}

/// An infix, human-readable formula of expression `e`, everything inlined (no
/// sharing): operators `+ - * / ^ < <=` with the usual precedence (`^` binds tightest
/// and groups to the right; `-x ^ 2` is `-(x ^ 2)`), functions `exp(x)`, `min(a, b)`,
/// `clip(x, lo, hi)`, `spike(u > 0)`, sums `sum_pre[proj](x)`, `sum_post[proj](x)`,
/// `sum[pop](x)`, holes `?f(a, b)`. Variables print by qualified name, except inside
/// a broadcast, where the broadcast population's variables print as `pre.x`/`post.x`
/// (its output as `pre.out`/`post.out`); the broadcast itself is implicit, as in the
/// language. Inside a sum, `pre`/`post` refer to the summed projection's ends.
pub fn expr_to_string(m: &Module, e: ExprId) -> String {
    infix(m, e, TOP).text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::tests::{bin, param, pop, proj, read, state, var};
    use crate::ir::Surrogate;

    /// A small network with a dead node in the middle of the arena.
    fn small() -> Module {
        let mut m = Module::new("W1", 1.0);
        let x = pop(&mut m, "x", 4, None);
        let rec = pop(&mut m, "rec", 3, Some("LIF"));
        let inp = proj(&mut m, "inp", x, rec, Connectivity::Random { p: 0.25 });
        let xo = var(&mut m, "x.out", Space::Pop(x), VarKind::Input);
        m.pops[x].out = Some(xo);
        let tau = param(&mut m, "rec.tau_m", Space::Global, 20.0);
        m.vars[tau].unit = 1;
        let v = state(&mut m, "rec.v", Space::Pop(rec), 0.0);
        let z = state(&mut m, "rec.z", Space::Pop(rec), -0.0);
        m.pops[rec].out = Some(z);
        let (mean, sd) = (m.constant(0.0), m.constant(0.951229424500714));
        let w = var(
            &mut m,
            "inp.w",
            Space::Syn(inp),
            VarKind::Param {
                learn: true,
                init: Init::Normal { mean, sd },
                bounds: Some((-1.0, 1e20)),
            },
        );
        let dead = m.constant(123.0);
        let rv = read(&mut m, v);
        let _dead2 = bin(&mut m, BinOp::Mul, dead, rv);
        let (rx, rw, rt) = (read(&mut m, xo), read(&mut m, w), read(&mut m, tau));
        let xb = m.add(Expr::Bcast(inp, Side::Pre, rx));
        let wx = bin(&mut m, BinOp::Mul, rw, xb);
        let cur = m.add(Expr::SumPre(inp, wx));
        let dv = bin(&mut m, BinOp::Div, cur, rt);
        let v1 = bin(&mut m, BinOp::Add, rv, dv);
        let one = m.constant(1.0);
        let u = bin(&mut m, BinOp::Sub, v1, one);
        let ten = m.constant(10.0);
        let s = m.add(Expr::Spike {
            arg: u,
            inclusive: false,
            surrogate: Surrogate {
                kind: SurrogateKind::FastSigmoid,
                a: one,
                b: ten,
            },
        });
        let vn = bin(&mut m, BinOp::Sub, v1, s);
        m.updates.extend([(v, vn), (z, s)]);
        m.readouts.push(("rec.z".into(), z));
        m.readouts.push(("volt".into(), v));
        m
    }

    #[test]
    fn prints_live_nodes_densely() {
        let m = small();
        let text = m.to_string();
        let expected = "\
module W1 (dt = 1 ms)
pop x[4] input -> x.out
pop rec[3] LIF -> rec.z
proj inp: x -> rec R random(p = 0.25)
var x.out : input Pop(x)
var rec.tau_m : param Global ms = %0
var rec.v : state Pop(rec) = %1
var rec.z : state Pop(rec) = %2
var inp.w : learn Syn(inp) ~ normal(%1, %3) in [-1, 1e20]
%0 = const 20
%1 = const 0
%2 = const -0
%3 = const 0.951229424500714
%4 = read rec.v                  ; Pop(rec)
%5 = read x.out                  ; Pop(x)
%6 = read inp.w                  ; Syn(inp)
%7 = read rec.tau_m
%8 = bcast.pre inp %5            ; Syn(inp)
%9 = mul %6 %8                   ; Syn(inp)
%10 = sum.pre inp %9             ; Pop(rec)
%11 = div %10 %7                 ; Pop(rec)
%12 = add %4 %11                 ; Pop(rec)
%13 = const 1
%14 = sub %12 %13                ; Pop(rec)
%15 = const 10
%16 = spike %14 > 0 fast_sigmoid(%13, %15) ; Pop(rec)
%17 = sub %12 %16                ; Pop(rec)
update rec.v = %17
update rec.z = %16
readout rec.z
readout volt = rec.v
";
        assert_eq!(text, expected, "got:\n{text}");
        // Deterministic: a clone prints the same.
        assert_eq!(m.clone().to_string(), text);
    }

    #[test]
    fn numbers_round_trip() {
        for v in [
            0.951229424500714,
            1.0,
            -0.0,
            0.0,
            20.0,
            1e-7,
            2.5e20,
            -3.25,
            1e15,
            123456.789,
            f64::MIN_POSITIVE,
            f64::MAX,
        ] {
            let s = fmt_num(v);
            let back: f64 = s.parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v} printed as {s}");
        }
        assert_eq!(fmt_num(1.0), "1");
        assert_eq!(fmt_num(-0.0), "-0");
        assert_eq!(fmt_num(1e-7), "1e-7");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(f64::NAN), "NaN");
    }

    #[test]
    fn infix_formulas() {
        let mut m = Module::new("f", 1.0);
        let a = pop(&mut m, "a", 2, Some("LIF"));
        let b = pop(&mut m, "b", 2, Some("LIF"));
        let q = proj(&mut m, "q", a, b, Connectivity::Dense);
        let z = state(&mut m, "a.z", Space::Pop(a), 0.0);
        m.pops[a].out = Some(z);
        let bx = state(&mut m, "b.x", Space::Pop(b), 0.0);
        let e = state(&mut m, "q.e", Space::Syn(q), 0.0);
        let tau = param(&mut m, "q.tau", Space::Global, 20.0);
        let (rz, rx, re, rt) = (
            read(&mut m, z),
            read(&mut m, bx),
            read(&mut m, e),
            read(&mut m, tau),
        );
        // exp(-1 / q.tau) * q.e + pre.out * post.x
        let one = m.constant(1.0);
        let m1 = m.add(Expr::Unary(UnOp::Neg, one));
        let d = bin(&mut m, BinOp::Div, m1, rt);
        let ex = m.add(Expr::Unary(UnOp::Exp, d));
        let decay = bin(&mut m, BinOp::Mul, ex, re);
        let pre = m.add(Expr::Bcast(q, Side::Pre, rz));
        let post = m.add(Expr::Bcast(q, Side::Post, rx));
        let hebb = bin(&mut m, BinOp::Mul, pre, post);
        let sum = bin(&mut m, BinOp::Add, decay, hebb);
        assert_eq!(
            expr_to_string(&m, sum),
            "exp(-1 / q.tau) * q.e + pre.out * post.x"
        );
        // Parentheses by precedence and associativity.
        let s1 = bin(&mut m, BinOp::Sub, re, hebb);
        let s2 = bin(&mut m, BinOp::Sub, re, s1);
        assert_eq!(expr_to_string(&m, s2), "q.e - (q.e - pre.out * post.x)");
        let s3 = bin(&mut m, BinOp::Sub, s1, re);
        assert_eq!(expr_to_string(&m, s3), "q.e - pre.out * post.x - q.e");
        let p1 = bin(&mut m, BinOp::Mul, sum, re);
        assert_eq!(
            expr_to_string(&m, p1),
            "(exp(-1 / q.tau) * q.e + pre.out * post.x) * q.e"
        );
        let neg = m.add(Expr::Unary(UnOp::Neg, re));
        let two = m.constant(2.0);
        let pw = bin(&mut m, BinOp::Pow, neg, two);
        assert_eq!(expr_to_string(&m, pw), "(-q.e) ^ 2");
        let pw2 = bin(&mut m, BinOp::Pow, re, pw);
        assert_eq!(expr_to_string(&m, pw2), "q.e ^ (-q.e) ^ 2");
        let pw3 = bin(&mut m, BinOp::Pow, pw2, two);
        assert_eq!(expr_to_string(&m, pw3), "(q.e ^ (-q.e) ^ 2) ^ 2");
        let negsum = m.add(Expr::Unary(UnOp::Neg, sum));
        let minus_neg = bin(&mut m, BinOp::Sub, re, neg);
        assert_eq!(expr_to_string(&m, minus_neg), "q.e - (-q.e)");
        let neg2 = m.add(Expr::Unary(UnOp::Neg, neg));
        assert_eq!(expr_to_string(&m, neg2), "-(-q.e)");
        assert_eq!(
            expr_to_string(&m, negsum),
            "-(exp(-1 / q.tau) * q.e + pre.out * post.x)"
        );
        let mc = m.constant(-0.5);
        let t = bin(&mut m, BinOp::Mul, re, mc);
        assert_eq!(expr_to_string(&m, t), "q.e * (-0.5)");
        let t2 = bin(&mut m, BinOp::Mul, mc, re);
        assert_eq!(expr_to_string(&m, t2), "-0.5 * q.e");
        let lt = bin(&mut m, BinOp::Lt, t2, s3);
        assert_eq!(
            expr_to_string(&m, lt),
            "-0.5 * q.e < q.e - pre.out * post.x - q.e"
        );
        let mx = bin(&mut m, BinOp::Max, re, two);
        let cl = m.add(Expr::Clip(mx, mc, one));
        assert_eq!(expr_to_string(&m, cl), "clip(max(q.e, 2), -0.5, 1)");
        let sp = m.add(Expr::SumPre(q, hebb));
        let h = m.add(Expr::Hole("f".into(), vec![sp, rx]));
        let all = m.add(Expr::SumPop(b, h));
        assert_eq!(
            expr_to_string(&m, all),
            "sum[b](?f(sum_pre[q](pre.out * post.x), b.x))"
        );
        let spk = m.add(Expr::Spike {
            arg: s3,
            inclusive: true,
            surrogate: Surrogate {
                kind: SurrogateKind::Triangle,
                a: one,
                b: two,
            },
        });
        assert_eq!(
            expr_to_string(&m, spk),
            "spike(q.e - pre.out * post.x - q.e >= 0)"
        );
        // A population sum inside a broadcast is not a per-neuron read.
        let sz = m.add(Expr::SumPop(a, rz));
        let bz = m.add(Expr::Bcast(q, Side::Pre, sz));
        let zz = bin(&mut m, BinOp::Mul, bz, pre);
        assert_eq!(expr_to_string(&m, zz), "sum[a](a.z) * pre.out");
    }
}
