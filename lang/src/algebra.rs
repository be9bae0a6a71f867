//! Smart constructors (local simplification while building), forward symbolic
//! derivatives, substitution and dependence queries over [`Module`] expressions.
//!
//! Lowering uses these to integrate linear ODEs exactly (`a = df/dx`, `b = f|x=0`);
//! the gradient pass of the next issue builds its adjoints with the same constructors,
//! so folding `0 * x`, `1 * x`, `x + 0` and constant arithmetic happens in one place.

#![allow(clippy::redundant_guards)] // float guards read better than float patterns

use crate::ir::{BinOp, Expr, ExprId, Module, UnOp};
use std::collections::HashMap;

impl Module {
    /// `a + b`, simplified.
    pub fn mk_add(&mut self, a: ExprId, b: ExprId) -> ExprId {
        self.mk_bin(BinOp::Add, a, b)
    }
    /// `a - b`, simplified.
    pub fn mk_sub(&mut self, a: ExprId, b: ExprId) -> ExprId {
        self.mk_bin(BinOp::Sub, a, b)
    }
    /// `a * b`, simplified.
    pub fn mk_mul(&mut self, a: ExprId, b: ExprId) -> ExprId {
        self.mk_bin(BinOp::Mul, a, b)
    }
    /// `a / b`, simplified.
    pub fn mk_div(&mut self, a: ExprId, b: ExprId) -> ExprId {
        self.mk_bin(BinOp::Div, a, b)
    }
    /// `-a`, simplified.
    pub fn mk_neg(&mut self, a: ExprId) -> ExprId {
        self.mk_un(UnOp::Neg, a)
    }

    /// A unary node with constant folding and `--x = x`.
    pub fn mk_un(&mut self, op: UnOp, a: ExprId) -> ExprId {
        if let Some(x) = self.as_const(a) {
            return self.constant(eval_un(op, x));
        }
        if let (UnOp::Neg, Expr::Unary(UnOp::Neg, inner)) = (op, self.expr(a)) {
            return *inner;
        }
        self.add(Expr::Unary(op, a))
    }

    /// A binary node with constant folding and identities (`x+0`, `x*1`, `0*x`, `x/1`,
    /// `x^1`, `x-x` is not folded: NaN/Inf semantics are kept).
    pub fn mk_bin(&mut self, op: BinOp, a: ExprId, b: ExprId) -> ExprId {
        let (ca, cb) = (self.as_const(a), self.as_const(b));
        if let (Some(x), Some(y)) = (ca, cb) {
            return self.constant(eval_bin(op, x, y));
        }
        match (op, ca, cb) {
            (BinOp::Add, Some(z), _) if z == 0.0 => return b,
            (BinOp::Add | BinOp::Sub, _, Some(z)) if z == 0.0 => return a,
            (BinOp::Sub, Some(z), _) if z == 0.0 => return self.mk_neg(b),
            (BinOp::Mul, Some(o), _) if o == 1.0 => return b,
            (BinOp::Mul | BinOp::Div | BinOp::Pow, _, Some(o)) if o == 1.0 => return a,
            (BinOp::Mul, Some(z), _) | (BinOp::Mul, _, Some(z)) if z == 0.0 => {
                return self.constant(0.0)
            }
            (BinOp::Div, Some(z), _) if z == 0.0 => return self.constant(0.0),
            (BinOp::Mul, Some(m), _) if m == -1.0 => return self.mk_neg(b),
            (BinOp::Mul, _, Some(m)) if m == -1.0 => return self.mk_neg(a),
            _ => {}
        }
        self.add(Expr::Binary(op, a, b))
    }

    /// `d e / d x`: forward symbolic derivative of `e` with respect to node `x` (every
    /// other leaf is constant). Spikes differentiate through their surrogate; clips are
    /// 1 strictly inside; comparisons 0. Returns `None` if `e` contains a hole that
    /// depends on `x`.
    pub fn deriv(&mut self, e: ExprId, x: ExprId) -> Option<ExprId> {
        let mut memo = HashMap::new();
        self.deriv_rec(e, x, &mut memo)
    }

    fn deriv_rec(
        &mut self,
        e: ExprId,
        x: ExprId,
        memo: &mut HashMap<ExprId, Option<ExprId>>,
    ) -> Option<ExprId> {
        if e == x {
            return Some(self.constant(1.0));
        }
        if let Some(&d) = memo.get(&e) {
            return d;
        }
        let zero = self.constant(0.0);
        let d = match self.expr(e).clone() {
            Expr::Const(_) | Expr::Read(_) => Some(zero),
            Expr::Unary(op, a) => {
                let da = self.deriv_rec(a, x, memo)?;
                if da == zero {
                    Some(zero)
                } else {
                    let f = self.unary_derivative(op, a, e);
                    Some(self.mk_mul(f, da))
                }
            }
            Expr::Binary(op, a, b) => {
                let da = self.deriv_rec(a, x, memo)?;
                let db = self.deriv_rec(b, x, memo)?;
                Some(self.binary_derivative(op, a, b, e, da, db))
            }
            Expr::Clip(v, lo, hi) => {
                let dv = self.deriv_rec(v, x, memo)?;
                if dv == zero {
                    Some(zero)
                } else {
                    let above = self.mk_bin(BinOp::Lt, lo, v);
                    let below = self.mk_bin(BinOp::Lt, v, hi);
                    let inside = self.mk_mul(above, below);
                    Some(self.mk_mul(inside, dv))
                }
            }
            Expr::Spike { arg, surrogate, .. } => {
                let du = self.deriv_rec(arg, x, memo)?;
                if du == zero {
                    Some(zero)
                } else {
                    let s = self.surrogate_value(arg, surrogate);
                    Some(self.mk_mul(s, du))
                }
            }
            Expr::Bcast(q, side, a) => {
                let da = self.deriv_rec(a, x, memo)?;
                Some(if da == zero {
                    zero
                } else {
                    self.add(Expr::Bcast(q, side, da))
                })
            }
            Expr::SumPre(q, a) => {
                let da = self.deriv_rec(a, x, memo)?;
                Some(if da == zero {
                    zero
                } else {
                    self.add(Expr::SumPre(q, da))
                })
            }
            Expr::SumPost(q, a) => {
                let da = self.deriv_rec(a, x, memo)?;
                Some(if da == zero {
                    zero
                } else {
                    self.add(Expr::SumPost(q, da))
                })
            }
            Expr::SumPop(p, a) => {
                let da = self.deriv_rec(a, x, memo)?;
                Some(if da == zero {
                    zero
                } else {
                    self.add(Expr::SumPop(p, da))
                })
            }
            Expr::Hole(..) => {
                if self.depends_on(e, x) {
                    None
                } else {
                    Some(zero)
                }
            }
        };
        memo.insert(e, d);
        d
    }

    /// `f'(a)` for `e = f(a)` (used by [`crate::diff`]).
    pub(crate) fn unary_partial(&mut self, op: UnOp, a: ExprId, e: ExprId) -> ExprId {
        self.unary_derivative(op, a, e)
    }

    /// `da * d(a op b)/da + db * d(a op b)/db` at `e = a op b` (used by [`crate::diff`]
    /// with `(da, db)` = `(1, 0)` and `(0, 1)`).
    pub(crate) fn binary_partials(
        &mut self,
        op: BinOp,
        a: ExprId,
        b: ExprId,
        e: ExprId,
        da: ExprId,
        db: ExprId,
    ) -> ExprId {
        self.binary_derivative(op, a, b, e, da, db)
    }

    /// `f'(a)` for `e = f(a)`.
    fn unary_derivative(&mut self, op: UnOp, a: ExprId, e: ExprId) -> ExprId {
        let one = self.constant(1.0);
        match op {
            UnOp::Neg => self.constant(-1.0),
            UnOp::Exp => e,
            UnOp::Log => self.mk_div(one, a),
            UnOp::Tanh => {
                let sq = self.mk_mul(e, e);
                self.mk_sub(one, sq)
            }
            UnOp::Sigmoid => {
                let c = self.mk_sub(one, e);
                self.mk_mul(e, c)
            }
            UnOp::Sqrt => {
                let two = self.constant(2.0);
                let d = self.mk_mul(two, e);
                self.mk_div(one, d)
            }
            UnOp::Abs => {
                let zero = self.constant(0.0);
                let pos = self.mk_bin(BinOp::Lt, zero, a);
                let neg = self.mk_bin(BinOp::Lt, a, zero);
                self.mk_sub(pos, neg)
            }
            UnOp::Relu => {
                let zero = self.constant(0.0);
                self.mk_bin(BinOp::Lt, zero, a)
            }
            UnOp::Sin => self.mk_un(UnOp::Cos, a),
            UnOp::Cos => {
                let s = self.mk_un(UnOp::Sin, a);
                self.mk_neg(s)
            }
        }
    }

    fn binary_derivative(
        &mut self,
        op: BinOp,
        a: ExprId,
        b: ExprId,
        e: ExprId,
        da: ExprId,
        db: ExprId,
    ) -> ExprId {
        let zero = self.constant(0.0);
        match op {
            BinOp::Add => self.mk_add(da, db),
            BinOp::Sub => self.mk_sub(da, db),
            BinOp::Mul => {
                let l = self.mk_mul(da, b);
                let r = self.mk_mul(a, db);
                self.mk_add(l, r)
            }
            BinOp::Div => {
                let l = self.mk_div(da, b);
                if db == zero {
                    return l;
                }
                // d(a/b) = da/b - e*db/b
                let eb = self.mk_div(e, b);
                let r = self.mk_mul(eb, db);
                self.mk_sub(l, r)
            }
            BinOp::Pow => {
                // d(a^b) = b a^(b-1) da + e ln(a) db
                let mut out = zero;
                if da != zero {
                    let one = self.constant(1.0);
                    let bm1 = self.mk_sub(b, one);
                    let p = self.mk_bin(BinOp::Pow, a, bm1);
                    let t = self.mk_mul(b, p);
                    out = self.mk_mul(t, da);
                }
                if db != zero {
                    let ln = self.mk_un(UnOp::Log, a);
                    let t = self.mk_mul(e, ln);
                    let t = self.mk_mul(t, db);
                    out = self.mk_add(out, t);
                }
                out
            }
            BinOp::Min | BinOp::Max => {
                if da == zero && db == zero {
                    return zero;
                }
                // The derivative follows the operand that is selected (ties: `a`).
                let pick_a = if op == BinOp::Min {
                    self.mk_bin(BinOp::Le, a, b)
                } else {
                    self.mk_bin(BinOp::Le, b, a)
                };
                let one = self.constant(1.0);
                let pick_b = self.mk_sub(one, pick_a);
                let l = self.mk_mul(pick_a, da);
                let r = self.mk_mul(pick_b, db);
                self.mk_add(l, r)
            }
            BinOp::Lt | BinOp::Le => zero,
        }
    }

    /// The surrogate derivative of a spike at `u`, as an expression.
    pub fn surrogate_value(&mut self, u: ExprId, s: crate::ir::Surrogate) -> ExprId {
        use crate::ir::SurrogateKind as K;
        let one = self.constant(1.0);
        let abs = self.mk_un(UnOp::Abs, u);
        match s.kind {
            K::FastSigmoid => {
                let t = self.mk_mul(s.b, abs);
                let d = self.mk_add(one, t);
                let d2 = self.mk_mul(d, d);
                self.mk_div(s.a, d2)
            }
            K::Triangle => {
                let r = self.mk_div(abs, s.b);
                let t = self.mk_sub(one, r);
                let t = self.mk_un(UnOp::Relu, t);
                self.mk_mul(s.a, t)
            }
            K::Arctan => {
                let pi = self.constant(std::f64::consts::PI);
                let t = self.mk_mul(pi, s.b);
                let t = self.mk_mul(t, u);
                let t2 = self.mk_mul(t, t);
                let d = self.mk_add(one, t2);
                self.mk_div(s.a, d)
            }
        }
    }

    /// `e` with node `x` replaced by `by`, rebuilt with the smart constructors.
    pub fn subst(&mut self, e: ExprId, x: ExprId, by: ExprId) -> ExprId {
        let mut memo = HashMap::from([(x, by)]);
        self.subst_rec(e, &mut memo)
    }

    /// `e` with every node that is a key of `memo` replaced by its value (and the nodes
    /// above them rebuilt with the smart constructors); `memo` keeps the rebuilt nodes,
    /// so that several roots share them.
    pub fn subst_all(&mut self, e: ExprId, memo: &mut HashMap<ExprId, ExprId>) -> ExprId {
        self.subst_rec(e, memo)
    }

    fn subst_rec(&mut self, e: ExprId, memo: &mut HashMap<ExprId, ExprId>) -> ExprId {
        if let Some(&r) = memo.get(&e) {
            return r;
        }
        let node = self.expr(e).clone();
        let ops = node.operands();
        let new: Vec<ExprId> = ops.iter().map(|&o| self.subst_rec(o, memo)).collect();
        let r = if new == ops {
            e
        } else {
            match node {
                Expr::Unary(op, _) => self.mk_un(op, new[0]),
                Expr::Binary(op, _, _) => self.mk_bin(op, new[0], new[1]),
                Expr::Clip(..) => self.add(Expr::Clip(new[0], new[1], new[2])),
                Expr::Spike {
                    inclusive,
                    surrogate,
                    ..
                } => {
                    let surrogate = crate::ir::Surrogate {
                        a: new[1],
                        b: new[2],
                        ..surrogate
                    };
                    self.add(Expr::Spike {
                        arg: new[0],
                        inclusive,
                        surrogate,
                    })
                }
                Expr::Bcast(q, s, _) => self.add(Expr::Bcast(q, s, new[0])),
                Expr::SumPre(q, _) => self.add(Expr::SumPre(q, new[0])),
                Expr::SumPost(q, _) => self.add(Expr::SumPost(q, new[0])),
                Expr::SumPop(p, _) => self.add(Expr::SumPop(p, new[0])),
                Expr::Hole(name, _) => self.add(Expr::Hole(name, new)),
                Expr::Const(_) | Expr::Read(_) => e,
            }
        };
        memo.insert(e, r);
        r
    }

    /// True if `x` is reachable from `e`.
    pub fn depends_on(&self, e: ExprId, x: ExprId) -> bool {
        self.any_reachable(e, |id, _| id == x)
    }

    /// True if some node reachable from `e` (including `e`) satisfies `pred`.
    pub fn any_reachable(&self, e: ExprId, mut pred: impl FnMut(ExprId, &Expr) -> bool) -> bool {
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![e];
        while let Some(n) = stack.pop() {
            if !seen.insert(n) {
                continue;
            }
            if pred(n, self.expr(n)) {
                return true;
            }
            // Nodes are added children-first, so nothing below `x` can reach it.
            stack.extend(self.expr(n).operands());
        }
        false
    }
}

/// The integral of a surrogate derivative from minus infinity: the smooth stand-in for
/// a spike in smooth mode, whose exact derivative is the surrogate.
pub fn surrogate_integral(kind: crate::ir::SurrogateKind, a: f64, b: f64, u: f64) -> f64 {
    use crate::ir::SurrogateKind as K;
    match kind {
        K::FastSigmoid => a * u / (1.0 + b * u.abs()) + a / b,
        K::Triangle => {
            if u <= -b {
                0.0
            } else if u <= 0.0 {
                a * (u + b) * (u + b) / (2.0 * b)
            } else if u < b {
                a * b / 2.0 + a * (u - u * u / (2.0 * b))
            } else {
                a * b
            }
        }
        K::Arctan => {
            let pb = std::f64::consts::PI * b;
            a * (pb * u).atan() / pb + a / (2.0 * b)
        }
    }
}

/// Evaluates a unary operator on a number: the one definition shared by constant
/// folding and the interpreter (so folding never changes a result).
pub fn eval_un(op: UnOp, x: f64) -> f64 {
    match op {
        UnOp::Neg => -x,
        UnOp::Exp => x.exp(),
        UnOp::Log => x.ln(),
        UnOp::Tanh => x.tanh(),
        UnOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnOp::Sqrt => x.sqrt(),
        UnOp::Abs => x.abs(),
        UnOp::Relu => crate::interp::fmax(x, 0.0),
        UnOp::Sin => x.sin(),
        UnOp::Cos => x.cos(),
    }
}

/// Evaluates a binary operator on numbers (shared by folding and the interpreter).
pub fn eval_bin(op: BinOp, a: f64, b: f64) -> f64 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Pow => a.powf(b),
        BinOp::Min => crate::interp::fmin(a, b),
        BinOp::Max => crate::interp::fmax(a, b),
        BinOp::Lt => f64::from(u8::from(a < b)),
        BinOp::Le => f64::from(u8::from(a <= b)),
    }
}
