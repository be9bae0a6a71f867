//! The IR: one network's step function as a hash-consed dataflow graph.
//!
//! This module doc is the specification. Every later stage — the reference interpreter
//! ([`crate::interp`]), symbolic differentiation, the Cranelift back end — reads this and
//! nothing else of the language.
//!
//! # What a module is
//!
//! A [`Module`] describes one network run in discrete time with step `dt` (milliseconds),
//! over a batch of `B` independent episodes run in lock-step. It holds:
//!
//! - **Populations** ([`Pop`]): groups of `size` neurons, or input channels whose output
//!   the task sets each step.
//! - **Projections** ([`Proj`]): all synapses from one population (`pre`) to another
//!   (`post`), with a connectivity mask.
//! - **Variables** ([`Var`]): named storage, each living in one [`Space`]:
//!   - [`VarKind::Param`]: a parameter. Fixed (`learn == false`) or a meta-parameter
//!     the outer loop tunes (`learn == true`). Parameters are shared by all episodes of
//!     a batch: their storage has no batch index.
//!   - [`VarKind::State`]: carried from step to step, one value per episode and index.
//!   - [`VarKind::Input`]: set from outside before every step (input channels, task
//!     signals), one value per episode and index.
//! - **Expressions** ([`Expr`]) in one arena, hash-consed: an `Expr` is stored once and
//!   every use refers to it by [`ExprId`], so identical subterms are shared (free CSE,
//!   and the repeated terms differentiation creates collapse). Children are always
//!   added before parents, so arena order is a topological order.
//! - **The step**: `updates`, the value of every state variable at the end of the step,
//!   as an expression of the values at its start. The step is a pure function
//!   `(params, state(t), inputs(t)) -> state(t+1)`: there is no mutation inside it, so
//!   differentiating it is differentiating a DAG, and the adjoint step is another DAG of
//!   the same kind.
//!
//! # Index spaces
//!
//! Every expression has a [`Space`], derived from its operands (see [`Module::space`]):
//!
//! | space | one value per | storage of a state/input, row-major |
//! |---|---|---|
//! | `Global` | episode (params: one) | `[B]` |
//! | `Pop(p)` | neuron of `p` | `[B][size(p)]` |
//! | `Syn(q)` | synapse of `q` | `[B][size(post)][size(pre)]` (post-major, like a weight matrix `W[i][j]`) |
//!
//! The batch index is always outermost; parameters omit it. Mixing spaces is explicit:
//!
//! - Global values broadcast implicitly into any space (a scalar operand).
//! - [`Expr::Bcast`] reads a `Pop(pre)` or `Pop(post)` value at each synapse of a
//!   projection (`pre.x`, `post.v` in a rule).
//! - [`Expr::SumPre`] reduces a `Syn(q)` value over the pre index to `Pop(post)` (the
//!   input current of a post neuron); [`Expr::SumPost`] reduces over the post index to
//!   `Pop(pre)` (the adjoint of a pre broadcast); [`Expr::SumPop`] reduces a `Pop(p)`
//!   value to `Global` (a learned readout such as a neuromodulator). Reductions over a
//!   projection visit only connected synapses; values at unconnected synapses are
//!   computed but never read.
//!
//! Binary operands must be in the same space or one of them `Global`.
//!
//! # Evaluation order
//!
//! Within a step everything is a value; order is only data dependence. The lowering of
//! the language fixes what each value means (see `grammar/LANGUAGE.md`): populations
//! update in declaration order, a projection delivers its pre population's output of
//! this step when the pre population is declared earlier (or is an input), of the
//! previous step otherwise; modulators and plasticity read the new neuron values;
//! synaptic weights in the currents read the synapse state at the start of the step.
//!
//! # Non-differentiable pieces and their conventions
//!
//! - [`Expr::Spike`]`(u)` is `1` if `u > 0` (or `u >= 0` when `inclusive`), else `0`; its
//!   derivative is the [`Surrogate`] evaluated at `u`.
//! - Comparisons ([`BinOp::Lt`], [`BinOp::Le`]) give 0/1 with zero derivative.
//! - [`Expr::Clip`]`(x, lo, hi)`: derivative 1 strictly inside `(lo, hi)`, 0 at or beyond.
//! - [`Expr::Hole`]: an expression not yet known (filled by `ruleopt search`); a module
//!   with holes validates but cannot run.
//!
//! # Text form
//!
//! `Display` prints a canonical, deterministic text (used by snapshots and
//! `ruleopt compile --emit ir`); see [`crate::print`].

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

/// A typed index into an [`Arena`].
pub struct Handle<T> {
    index: u32,
    marker: PhantomData<fn() -> T>,
}

impl<T> Handle<T> {
    /// The handle for index `i`.
    pub fn new(i: usize) -> Self {
        Handle {
            index: i as u32,
            marker: PhantomData,
        }
    }
    /// The index.
    pub fn index(self) -> usize {
        self.index as usize
    }
}
impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Handle<T> {}
impl<T> PartialEq for Handle<T> {
    fn eq(&self, o: &Self) -> bool {
        self.index == o.index
    }
}
impl<T> Eq for Handle<T> {}
impl<T> PartialOrd for Handle<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Handle<T> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.index.cmp(&o.index)
    }
}
impl<T> Hash for Handle<T> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.index.hash(h)
    }
}
impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.index)
    }
}

/// A growable vector addressed by typed handles.
#[derive(Clone, Debug)]
pub struct Arena<T> {
    items: Vec<T>,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Arena { items: Vec::new() }
    }
}

impl<T> Arena<T> {
    /// Appends and returns the handle.
    pub fn push(&mut self, item: T) -> Handle<T> {
        self.items.push(item);
        Handle::new(self.items.len() - 1)
    }
    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Handles and items in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (Handle<T>, &T)> + ExactSizeIterator {
        self.items
            .iter()
            .enumerate()
            .map(|(i, t)| (Handle::new(i), t))
    }
    /// Handles in order.
    pub fn handles(&self) -> impl DoubleEndedIterator<Item = Handle<T>> + ExactSizeIterator {
        (0..self.items.len()).map(Handle::new)
    }
}

impl<T> std::ops::Index<Handle<T>> for Arena<T> {
    type Output = T;
    fn index(&self, h: Handle<T>) -> &T {
        &self.items[h.index()]
    }
}
impl<T> std::ops::IndexMut<Handle<T>> for Arena<T> {
    fn index_mut(&mut self, h: Handle<T>) -> &mut T {
        &mut self.items[h.index()]
    }
}

/// Handle of a population.
pub type PopId = Handle<Pop>;
/// Handle of a projection.
pub type ProjId = Handle<Proj>;
/// Handle of a variable.
pub type VarId = Handle<Var>;
/// Handle of an expression.
pub type ExprId = Handle<Expr>;

/// Where a value lives; see the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Space {
    /// One value per episode (parameters: one value).
    Global,
    /// One value per neuron of a population.
    Pop(PopId),
    /// One value per synapse of a projection.
    Syn(ProjId),
}

/// A population of neurons, or of input channels.
#[derive(Clone, Debug, PartialEq)]
pub struct Pop {
    /// Name in the network.
    pub name: String,
    /// Number of neurons or channels.
    pub size: usize,
    /// Neuron model name; `None` for input channels.
    pub model: Option<String>,
    /// The variable other populations receive from this one (`pre.out`): the spike
    /// indicator of a spiking model, the declared `output` of a rate model, or the
    /// input variable of an input population. `None` for a model without output.
    pub out: Option<VarId>,
}

/// Which synapses of a projection exist.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Connectivity {
    /// All `post x pre` pairs.
    Dense,
    /// All pairs but `i == j` (pre and post are the same population).
    DenseNoSelf,
    /// Only the pairs `i == j` (pre and post have the same size): neuron `i` of `post`
    /// receives from neuron `i` of `pre` alone.
    OneToOne,
    /// Each pair independently with probability `p`, drawn once per instance from the
    /// instance seed (see `crate::init`).
    Random {
        /// Connection probability.
        p: f64,
    },
}

/// All synapses from `pre` to `post`, governed by one synapse rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Proj {
    /// Name in the network.
    pub name: String,
    /// Pre-synaptic population.
    pub pre: PopId,
    /// Post-synaptic population.
    pub post: PopId,
    /// Synapse rule name.
    pub rule: String,
    /// Which synapses exist.
    pub conn: Connectivity,
}

/// How a parameter or state starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// The value of an expression over parameters (no state, no input), evaluated in
    /// the variable's space.
    Expr(ExprId),
    /// Independent normal draws, `mean` and standard deviation `sd`.
    Normal {
        /// Mean.
        mean: ExprId,
        /// Standard deviation.
        sd: ExprId,
    },
    /// Independent uniform draws in `[lo, hi)`.
    Uniform {
        /// Lower end.
        lo: ExprId,
        /// Upper end.
        hi: ExprId,
    },
    /// Given values (`from "file.json"`): `Module::data[k]`, one per element.
    Data(u32),
}

/// What a variable is.
#[derive(Clone, Debug, PartialEq)]
pub enum VarKind {
    /// A parameter, shared by the batch.
    Param {
        /// Tuned by the outer loop.
        learn: bool,
        /// Initial value.
        init: Init,
        /// Bounds the optimiser keeps it in.
        bounds: Option<(f64, f64)>,
    },
    /// A state variable, one per episode.
    State {
        /// Initial value at the start of every episode.
        init: Init,
    },
    /// Set from outside before each step (input channels, task signals), one per episode.
    Input,
}

/// A named storage location.
#[derive(Clone, Debug, PartialEq)]
pub struct Var {
    /// Qualified name: `pop.v`, `proj.e`, or a network-level name.
    pub name: String,
    /// Where it lives.
    pub space: Space,
    /// Parameter, state or input.
    pub kind: VarKind,
    /// Time exponent of its unit (values are in ms^unit): 0 for dimensionless.
    pub unit: i8,
}

/// Surrogate derivative shapes of a spike `H(u)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SurrogateKind {
    /// `a / (1 + b |u|)^2` (SuperSpike; `a` = height, `b` = scale).
    FastSigmoid,
    /// `a * max(0, 1 - |u| / b)` (Bellec et al. 2018; `a` = height, `b` = width).
    Triangle,
    /// `a / (1 + (pi b u)^2)` (`a` = height, `b` = scale).
    Arctan,
}

/// A spike's surrogate derivative: a shape and two global parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Surrogate {
    /// Shape.
    pub kind: SurrogateKind,
    /// Height (Global expression).
    pub a: ExprId,
    /// Scale or width (Global expression).
    pub b: ExprId,
}

/// Unary operators. All are elementwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    /// `-x`
    Neg,
    /// `e^x`
    Exp,
    /// natural log
    Log,
    /// hyperbolic tangent
    Tanh,
    /// logistic `1 / (1 + e^-x)`
    Sigmoid,
    /// square root
    Sqrt,
    /// absolute value (derivative `sign(x)`, 0 at 0)
    Abs,
    /// `max(x, 0)`
    Relu,
    /// sine
    Sin,
    /// cosine
    Cos,
}

/// Binary operators. All are elementwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `a ^ b`
    Pow,
    /// `min(a, b)`
    Min,
    /// `max(a, b)`
    Max,
    /// `a < b` as 0/1, zero derivative
    Lt,
    /// `a <= b` as 0/1, zero derivative
    Le,
}

/// Which end of a projection a broadcast reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The pre-synaptic neuron (index `j`).
    Pre,
    /// The post-synaptic neuron (index `i`).
    Post,
}

/// An f64 that hashes and compares by bits, so constants can be hash-consed.
#[derive(Clone, Copy, Debug)]
pub struct Num(pub f64);
impl PartialEq for Num {
    fn eq(&self, o: &Num) -> bool {
        self.0.to_bits() == o.0.to_bits()
    }
}
impl Eq for Num {}
impl Hash for Num {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.to_bits().hash(h)
    }
}

/// An expression node. Operands are handles to earlier nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expr {
    /// A constant (Global).
    Const(Num),
    /// The value of a variable at the start of the step (in the variable's space).
    Read(VarId),
    /// `op x`
    Unary(UnOp, ExprId),
    /// `a op b`
    Binary(BinOp, ExprId, ExprId),
    /// `min(max(x, lo), hi)`; derivative w.r.t. x is 1 strictly inside, else 0.
    Clip(ExprId, ExprId, ExprId),
    /// Heaviside of `arg` with a surrogate derivative.
    Spike {
        /// The argument `u` (spike when `u > 0`).
        arg: ExprId,
        /// Whether `u == 0` spikes too.
        inclusive: bool,
        /// The derivative used in place of the Dirac delta.
        surrogate: Surrogate,
    },
    /// A `Pop(pre)`/`Pop(post)` value read at each synapse of a projection.
    Bcast(ProjId, Side, ExprId),
    /// Sum of a `Syn(q)` value over pre neurons (connected ones): `Pop(post)`.
    SumPre(ProjId, ExprId),
    /// Sum of a `Syn(q)` value over post neurons (connected ones): `Pop(pre)`.
    SumPost(ProjId, ExprId),
    /// Sum of a `Pop(p)` value over the population: `Global`.
    SumPop(PopId, ExprId),
    /// An expression to be discovered, of the listed arguments.
    Hole(String, Vec<ExprId>),
}

impl Expr {
    /// The operands, in order.
    pub fn operands(&self) -> Vec<ExprId> {
        match self {
            Expr::Const(_) | Expr::Read(_) => vec![],
            Expr::Unary(_, a) | Expr::Bcast(_, _, a) | Expr::SumPre(_, a) => vec![*a],
            Expr::SumPost(_, a) | Expr::SumPop(_, a) => vec![*a],
            Expr::Binary(_, a, b) => vec![*a, *b],
            Expr::Clip(a, b, c) => vec![*a, *b, *c],
            Expr::Spike { arg, surrogate, .. } => vec![*arg, surrogate.a, surrogate.b],
            Expr::Hole(_, args) => args.clone(),
        }
    }
}

/// A network's step function and everything needed to run it; see the module doc.
#[derive(Clone, Debug, Default)]
pub struct Module {
    /// Network name.
    pub name: String,
    /// Time step in ms.
    pub dt: f64,
    /// Populations, in declaration order (the order they update).
    pub pops: Arena<Pop>,
    /// Projections.
    pub projs: Arena<Proj>,
    /// Variables.
    pub vars: Arena<Var>,
    /// Hash-consed expressions.
    exprs: Arena<Expr>,
    spaces: Vec<Space>,
    dedup: HashMap<Expr, ExprId>,
    /// The value of each state variable at the end of the step, one entry per state
    /// variable, in variable order.
    pub updates: Vec<(VarId, ExprId)>,
    /// What the task reads after each step: (name, variable).
    pub readouts: Vec<(String, VarId)>,
    /// The values of [`Init::Data`] initial values.
    pub data: Vec<Vec<f64>>,
}

impl Module {
    /// An empty module.
    pub fn new(name: impl Into<String>, dt: f64) -> Module {
        Module {
            name: name.into(),
            dt,
            ..Module::default()
        }
    }

    /// Stores the values of an [`Init::Data`] and returns its index.
    pub fn add_data(&mut self, values: Vec<f64>) -> u32 {
        self.data.push(values);
        self.data.len() as u32 - 1
    }

    /// Adds (or finds) an expression. Panics if operands are in incompatible spaces:
    /// callers build well-typed IR (the checker has rejected bad input before).
    pub fn add(&mut self, e: Expr) -> ExprId {
        if let Some(&id) = self.dedup.get(&e) {
            return id;
        }
        let space = self
            .derive_space(&e)
            .unwrap_or_else(|msg| panic!("ill-typed IR node {e:?}: {msg}"));
        let id = self.exprs.push(e.clone());
        self.spaces.push(space);
        self.dedup.insert(e, id);
        id
    }

    /// Adds a constant.
    pub fn constant(&mut self, v: f64) -> ExprId {
        self.add(Expr::Const(Num(v)))
    }

    /// The node behind a handle.
    pub fn expr(&self, id: ExprId) -> &Expr {
        &self.exprs[id]
    }

    /// All nodes, children before parents.
    pub fn exprs(&self) -> &Arena<Expr> {
        &self.exprs
    }

    /// The space of an expression.
    pub fn space(&self, id: ExprId) -> Space {
        self.spaces[id.index()]
    }

    /// The number of values in a space (per episode).
    pub fn space_size(&self, s: Space) -> usize {
        match s {
            Space::Global => 1,
            Space::Pop(p) => self.pops[p].size,
            Space::Syn(q) => self.pops[self.projs[q].post].size * self.pops[self.projs[q].pre].size,
        }
    }

    /// The constant value of a node, if it is a constant.
    pub fn as_const(&self, id: ExprId) -> Option<f64> {
        match self.exprs[id] {
            Expr::Const(Num(v)) => Some(v),
            _ => None,
        }
    }

    /// Finds a variable by qualified name.
    pub fn var_by_name(&self, name: &str) -> Option<VarId> {
        self.vars
            .iter()
            .find(|(_, v)| v.name == name)
            .map(|(h, _)| h)
    }

    /// The space an expression has, derived from its operands, or why it has none.
    pub fn derive_space(&self, e: &Expr) -> Result<Space, String> {
        let sp = |id: ExprId| -> Result<Space, String> {
            self.spaces
                .get(id.index())
                .copied()
                .ok_or_else(|| format!("operand {id:?} does not exist yet"))
        };
        let join = |a: Space, b: Space| -> Result<Space, String> {
            match (a, b) {
                (Space::Global, s) | (s, Space::Global) => Ok(s),
                (a, b) if a == b => Ok(a),
                (a, b) => Err(format!("operands in different spaces {a:?} and {b:?}")),
            }
        };
        let global = |id: ExprId| -> Result<(), String> {
            match sp(id)? {
                Space::Global => Ok(()),
                s => Err(format!("operand {id:?} must be Global, is {s:?}")),
            }
        };
        let proj = |q: ProjId| -> Result<&Proj, String> {
            (q.index() < self.projs.len())
                .then(|| &self.projs[q])
                .ok_or_else(|| format!("no projection {q:?}"))
        };
        match e {
            Expr::Const(_) => Ok(Space::Global),
            Expr::Read(v) => {
                if v.index() < self.vars.len() {
                    Ok(self.vars[*v].space)
                } else {
                    Err(format!("no variable {v:?}"))
                }
            }
            Expr::Unary(_, a) => sp(*a),
            Expr::Binary(_, a, b) => join(sp(*a)?, sp(*b)?),
            Expr::Clip(x, lo, hi) => join(join(sp(*x)?, sp(*lo)?)?, sp(*hi)?),
            Expr::Spike { arg, surrogate, .. } => {
                global(surrogate.a)?;
                global(surrogate.b)?;
                sp(*arg)
            }
            Expr::Bcast(q, side, a) => {
                let p = proj(*q)?;
                let want = Space::Pop(if *side == Side::Pre { p.pre } else { p.post });
                match sp(*a)? {
                    s if s == want || s == Space::Global => Ok(Space::Syn(*q)),
                    s => Err(format!("broadcast of a {s:?} value, expected {want:?}")),
                }
            }
            Expr::SumPre(q, a) | Expr::SumPost(q, a) => {
                let p = proj(*q)?;
                if sp(*a)? != Space::Syn(*q) {
                    return Err(format!(
                        "sum over projection {q:?} of a {:?} value",
                        sp(*a)?
                    ));
                }
                Ok(Space::Pop(if matches!(e, Expr::SumPre(..)) {
                    p.post
                } else {
                    p.pre
                }))
            }
            Expr::SumPop(p, a) => match sp(*a)? {
                Space::Pop(q) if q == *p => Ok(Space::Global),
                s => Err(format!("sum over population {p:?} of a {s:?} value")),
            },
            Expr::Hole(_, args) => args
                .iter()
                .try_fold(Space::Global, |acc, a| join(acc, sp(*a)?)),
        }
    }

    /// Nodes reachable from the step's updates only (what one step evaluates), as a
    /// mask over the arena.
    pub fn live_step(&self) -> Vec<bool> {
        let mut live = vec![false; self.exprs.len()];
        let mut stack: Vec<ExprId> = self.updates.iter().map(|&(_, e)| e).collect();
        while let Some(e) = stack.pop() {
            if !std::mem::replace(&mut live[e.index()], true) {
                stack.extend(self.exprs[e].operands());
            }
        }
        live
    }

    /// Nodes reachable from the step's updates and the initializers, as a mask over
    /// the arena.
    pub fn live(&self) -> Vec<bool> {
        let mut live = vec![false; self.exprs.len()];
        let mut stack: Vec<ExprId> = self.updates.iter().map(|&(_, e)| e).collect();
        for (_, v) in self.vars.iter() {
            let init = match &v.kind {
                VarKind::Param { init, .. } | VarKind::State { init } => init,
                VarKind::Input => continue,
            };
            match *init {
                Init::Data(_) => {}
                Init::Expr(e) => stack.push(e),
                Init::Normal { mean: a, sd: b } | Init::Uniform { lo: a, hi: b } => {
                    stack.extend([a, b])
                }
            }
        }
        while let Some(e) = stack.pop() {
            if !std::mem::replace(&mut live[e.index()], true) {
                stack.extend(self.exprs[e].operands());
            }
        }
        live
    }
}
