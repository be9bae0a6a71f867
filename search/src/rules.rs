//! The search's problem for rules with holes: a genome is written into the rule's text
//! ([`lang::fill`]), the text goes through the whole front end, its network is compiled,
//! its constants (and the network's other `learn` parameters) are tuned by a few
//! gradient steps through whole episodes (memetic search, [`crate::train::Trainer`]),
//! and its fitness is the task's metric on held-out episodes.
//!
//! Every candidate gets its own kernels, compiled on the thread that evaluates it.
//! Nothing a candidate does can stop the search: front-end errors, kernels that
//! diverge (non-finite loss, gradient or metric) and even a panic in our own code give
//! the worst fitness and a recorded reason.

use crate::evolve::{Evaluation, Evaluator, Genome, HoleSpec, Stage};
use crate::expr::Tree;
use crate::train::{fnv1a, Task, TrainConfig, Trainer};
use lang::ast::File;
use lang::fill::{Filling, Hole, Site};
use lang::ir::{Module, VarKind};
use lang::{FileId, Sources};
use serde_json::{json, Value};

/// How a candidate is evaluated.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalConfig {
    /// Gradient steps on each candidate before its fitness is taken (0: off).
    pub tune_iterations: usize,
    /// The optimiser of those steps (its `seed` draws the network's instance and the
    /// tuning batches; `iterations` is ignored).
    pub train: TrainConfig,
    /// Held-out episodes of the full evaluation.
    pub episodes: usize,
    /// Episodes of the cheap evaluation (no tuning).
    pub hurdle_episodes: usize,
    /// Seed of the held-out episodes (the same for every candidate).
    pub eval_seed: u64,
    /// Whether partial operators are written in their protected forms.
    pub protected: bool,
}

/// A rule with holes and a task: an [`Evaluator`].
pub struct RuleProblem<'a, K: Task> {
    sources: Sources,
    files: Vec<(FileId, File)>,
    network: Option<String>,
    holes: Vec<Hole>,
    task: &'a K,
    cfg: EvalConfig,
}

/// A candidate's rule: its text and network.
pub struct Candidate {
    /// The filled sources (file ids as in the template).
    pub sources: Sources,
    /// The filled files, parsed.
    pub files: Vec<(FileId, File)>,
    /// The network, lowered.
    pub module: Module,
}

impl<'a, K: Task> RuleProblem<'a, K> {
    /// The problem of the holes of `files` (as loaded into `sources`), network
    /// `network` (`None`: the only one), on `task`. Errors when the rule has no holes,
    /// or cannot run on the task even with every hole set to 0 (sizes or names that do
    /// not fit the task would fail every candidate: better said once, up front).
    pub fn new(
        sources: Sources,
        files: Vec<(FileId, File)>,
        network: Option<String>,
        task: &'a K,
        cfg: EvalConfig,
    ) -> Result<Self, String> {
        let holes = lang::fill::holes(&sources, &files);
        if holes.is_empty() {
            return Err("the rule has no holes `?f(...)`: nothing to search".into());
        }
        if cfg.episodes == 0 || cfg.hurdle_episodes == 0 {
            return Err("config: `episodes` must be at least 1".into());
        }
        let p = RuleProblem {
            sources,
            files,
            network,
            holes,
            task,
            cfg,
        };
        let zero = Genome {
            trees: vec![Tree::constant(0.0); p.holes.len()],
        };
        if let Some(e) = p.evaluate(&zero, Stage::Hurdle).error {
            return Err(format!(
                "the rule cannot run on task {} even with its holes set to 0: {e}",
                p.task.name()
            ));
        }
        Ok(p)
    }

    /// The holes as the search sees them.
    pub fn hole_specs(&self) -> Vec<HoleSpec> {
        self.holes
            .iter()
            .map(|h| HoleSpec {
                name: h.name.clone(),
                args: h.args.clone(),
            })
            .collect()
    }

    /// The name of constant `k` of hole `hole`'s tree when it is a `learn` parameter.
    pub fn const_name(hole: &str, k: usize) -> String {
        format!("c_{hole}_{k}")
    }

    /// `genome` written into the rule: constants as literals, or (with `learn`) as
    /// `learn` parameters of the model holding the hole. Errors are the front end's
    /// messages.
    pub fn candidate(&self, genome: &Genome, learn: bool) -> Result<Candidate, String> {
        let protected = self.cfg.protected;
        let mut filling = |site: &Site| -> Filling {
            let h = self
                .holes
                .iter()
                .position(|h| h.name == site.name)
                .unwrap_or(0);
            let tree = &genome.trees[h];
            let args: Vec<&str> = site.args.iter().map(String::as_str).collect();
            let mut decl = Vec::new();
            let expr = tree.to_rule_text(&args, protected, &mut |k, v| {
                if learn {
                    let name = Self::const_name(&site.name, k);
                    decl.push((name.clone(), v));
                    name
                } else {
                    crate::expr::literal(v)
                }
            });
            Filling { expr, learn: decl }
        };
        let sources = lang::fill::fill(&self.sources, &self.files, &mut filling);
        let ids: Vec<FileId> = self.files.iter().map(|(id, _)| *id).collect();
        let first = |d: Vec<lang::Diagnostic>| {
            d.into_iter()
                .next()
                .map_or_else(|| "error".to_string(), |d| d.message)
        };
        let files = lang::fill::reparse(&sources, &ids).map_err(first)?;
        let prog = lang::check::check(&sources, &files).map_err(first)?;
        let module = lang::lower::lower(&prog, self.network.as_deref()).map_err(first)?;
        Ok(Candidate {
            sources,
            files,
            module,
        })
    }

    /// A trainer of `m`: compiled for gradients when it is to be tuned, else forward
    /// only.
    fn trainer<'m>(&'m self, m: &'m Module, tune: bool) -> Result<Trainer<'m, K>, String> {
        let cfg = self.cfg.train.clone();
        if tune {
            Trainer::new(m, self.task, cfg)
        } else {
            Trainer::evaluator(m, self.task, cfg)
        }
        .map_err(|e| e.to_string())
    }

    /// `genome` compiled (for gradients when `tune`) and, when `tune` and it has
    /// `learn` parameters, tuned; `then` gets the candidate, its trainer and the trees
    /// with the tuned constants (`None` when not tuned). The one path of evaluation
    /// and [`RuleProblem::realise`], so a realised rule is tuned exactly as evaluated.
    fn with_trainer<R>(
        &self,
        genome: &Genome,
        tune: bool,
        then: impl FnOnce(&Candidate, &mut Trainer<'_, K>, Option<Vec<Tree>>) -> Result<R, String>,
    ) -> Result<R, String> {
        let c = self.candidate(genome, tune)?;
        let mut trainer = self.trainer(&c.module, tune)?;
        let mut tuned = None;
        if tune && has_learn(&c.module) {
            trainer
                .tune(self.cfg.tune_iterations)
                .map_err(|e| e.to_string())?;
            tuned = Some(self.tuned_trees(&c.module, &trainer, genome));
        }
        then(&c, &mut trainer, tuned)
    }

    fn evaluate_inner(&self, genome: &Genome, stage: Stage) -> Result<Evaluation, String> {
        let tune = stage == Stage::Full && self.cfg.tune_iterations > 0;
        let episodes = match stage {
            Stage::Hurdle => self.cfg.hurdle_episodes,
            Stage::Full => self.cfg.episodes,
        };
        self.with_trainer(genome, tune, |_, trainer, tuned| {
            let score = trainer
                .evaluate(episodes, self.cfg.eval_seed)
                .map_err(|e| e.to_string())?;
            let fitness = if self.task.higher_is_better() {
                score.metric
            } else {
                -score.metric
            };
            if !fitness.is_finite() {
                return Err(format!("the metric is not finite ({})", score.metric));
            }
            Ok(Evaluation {
                fitness,
                metric: score.metric,
                tuned,
                error: None,
            })
        })
    }
}

/// A found rule made concrete: its text and its score on test episodes.
pub struct Realised {
    /// The self-contained rule text: the formula with its (tuned) constants as
    /// literals, the network's other tuned `learn` parameters as overrides.
    pub text: String,
    /// Values of those parameters that are not scalars (to be written at the
    /// `values_path` given to [`RuleProblem::realise`]); empty if none.
    pub values: lang::values::Values,
    /// Its trees with tuned constants.
    pub trees: Vec<Tree>,
    /// Loss and metric on the test episodes.
    pub test: crate::train::Score,
}

impl<K: Task> RuleProblem<'_, K> {
    /// The rule `genome` (as evaluated, before tuning) becomes: tuned exactly as in its
    /// evaluation, scored on `episodes` episodes from `test_seed`, and written as text
    /// with `header` comment lines; non-scalar values go to `values_path`.
    pub fn realise(
        &self,
        genome: &Genome,
        episodes: usize,
        test_seed: u64,
        values_path: &str,
        header: &[String],
    ) -> Result<Realised, String> {
        self.with_trainer(genome, self.cfg.tune_iterations > 0, |c, trainer, tuned| {
            let mut values = lang::values::Values::default();
            let trees = match tuned {
                Some(trees) => {
                    let consts: Vec<String> = (0..self.holes.len())
                        .flat_map(|h| {
                            let name = &self.holes[h].name;
                            (0..genome.trees[h].consts().len())
                                .map(move |k| Self::const_name(name, k))
                        })
                        .collect();
                    values = trainer.learned().to_values(&c.module);
                    values.params.retain(|q, _| {
                        !consts
                            .iter()
                            .any(|c| q == c || q.ends_with(&format!(".{c}")))
                    });
                    trees
                }
                None => genome.trees.clone(),
            };
            let test = trainer
                .evaluate(episodes, test_seed)
                .map_err(|e| e.to_string())?;
            let plain = self.candidate(
                &Genome {
                    trees: trees.clone(),
                },
                false,
            )?;
            let text = lang::learned::rule_with_values(
                &plain.files,
                &plain.module.name,
                &values,
                values_path,
                header,
            )?;
            values.params.retain(|_, e| {
                !(e.data.len() == 1 && e.shape.is_empty() && matches!(e.unit, 0 | 1))
            });
            Ok(Realised {
                text,
                values,
                trees,
                test,
            })
        })
    }

    fn tuned_trees(&self, m: &Module, trainer: &Trainer<'_, K>, genome: &Genome) -> Vec<Tree> {
        self.holes
            .iter()
            .zip(&genome.trees)
            .map(|(h, t)| {
                let start = t.consts();
                let consts: Vec<f64> = (0..start.len())
                    .map(|k| {
                        find_param(m, &Self::const_name(&h.name, k))
                            .and_then(|q| trainer.param(&q))
                            .and_then(|v| v.first().copied())
                            .unwrap_or(start[k])
                    })
                    .collect();
                t.with_consts(&consts)
            })
            .collect()
    }
}

impl<K: Task> Evaluator for RuleProblem<'_, K> {
    fn evaluate(&self, genome: &Genome, stage: Stage) -> Evaluation {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.evaluate_inner(genome, stage)
        }));
        match run {
            Ok(Ok(e)) => e,
            Ok(Err(msg)) => Evaluation::failed(msg),
            Err(p) => Evaluation::failed(format!(
                "internal error (please report): {}",
                p.downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| p.downcast_ref::<&str>().copied())
                    .unwrap_or("panic")
            )),
        }
    }

    fn fingerprint(&self) -> Value {
        let text: String = self
            .files
            .iter()
            .map(|(id, _)| self.sources.get(*id).text.as_str())
            .collect::<Vec<_>>()
            .join("\n\u{1}\n");
        json!({
            "rule_hash": format!("{:016x}", fnv1a(text.as_bytes())),
            "network": self.network,
            "task": self.task.name(),
            "task_options": self.task.options(),
            "eval": {
                "tune_iterations": self.cfg.tune_iterations, "batch": self.cfg.train.batch,
                "lr": self.cfg.train.lr, "clip": self.cfg.train.clip, "seed": self.cfg.train.seed,
                "precision": format!("{:?}", self.cfg.train.precision),
                "episodes": self.cfg.episodes, "hurdle_episodes": self.cfg.hurdle_episodes,
                "eval_seed": self.cfg.eval_seed, "protected": self.cfg.protected,
            },
        })
    }
}

fn has_learn(m: &Module) -> bool {
    m.vars
        .iter()
        .any(|(_, v)| matches!(v.kind, VarKind::Param { learn: true, .. }))
}

/// The qualified name of the first `learn` parameter named `name` in some model
/// instance (`proj.name`, `pop.name`) or the network (`name`).
fn find_param(m: &Module, name: &str) -> Option<String> {
    let suffix = format!(".{name}");
    m.vars
        .iter()
        .find(|(_, v)| {
            matches!(v.kind, VarKind::Param { learn: true, .. })
                && (v.name == name || v.name.ends_with(&suffix))
        })
        .map(|(_, v)| v.name.clone())
}
