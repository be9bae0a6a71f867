//! Closed-loop environments: what a network sees next may depend on what it did.
//!
//! An [`Env`] is one episode. Before each step it writes the input channels (spikes,
//! 0 or 1) and the value of the `reward` signal; after the step it reads the network's
//! readout, takes decisions at the end of response windows (not differentiated: the
//! decision only changes what comes next, such as the reward fed back), and returns
//! the gradient of its loss with respect to the readout of the steps whose loss became
//! known. The loss compares the readout with the right answer, which the outer loop
//! knows and the network must find out online, from rewards inside the episode.
//!
//! Decisions are the argmax of the readout's mean over the response window; the loss of
//! a decision is the cross-entropy of that mean against the right answer, and an
//! episode's loss is the mean over its decisions. Metrics are the tasks' own (reward
//! in the second half of the episode, fraction correct, ...).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One episode of a closed-loop task.
pub trait Env: Send {
    /// Steps in the episode.
    fn steps(&self) -> usize;
    /// Before step `t`: sets the input channels `x` (given all zero) and returns the
    /// value of the `reward` signal for this step.
    fn input(&mut self, t: usize, x: &mut [f64]) -> f64;
    /// After step `t`, with the readout `y(t)`: the `(step, dL/dy(step))` pairs that
    /// became known (the episode's loss, not yet averaged over the batch).
    fn output(&mut self, t: usize, y: &[f64]) -> Vec<(usize, Vec<f64>)>;
    /// The episode's loss so far (mean over its decisions).
    fn loss(&self) -> f64;
    /// The task's metric for the episode (after its last step).
    fn metric(&self) -> f64;
    /// Reward of each trial so far: the within-episode learning curve.
    fn trial_rewards(&self) -> Vec<f64>;
}

/// A response window's decision and loss: the argmax of the window's mean readout, and
/// the cross-entropy of that mean against `answer` with its gradient, spread evenly
/// over the window's steps and divided by `decisions` (the episode's count, so that
/// the episode's loss is a mean).
#[derive(Clone, Debug, Default)]
pub struct Window {
    sum: Vec<f64>,
    steps: Vec<usize>,
}

impl Window {
    /// Adds the readout of step `t`.
    pub fn add(&mut self, t: usize, y: &[f64]) {
        if self.sum.len() < y.len() {
            self.sum.resize(y.len(), 0.0);
        }
        for (s, v) in self.sum.iter_mut().zip(y) {
            *s += v;
        }
        self.steps.push(t);
    }

    /// Closes the window: (decision, loss, seeds), and empties it.
    pub fn close(&mut self, answer: usize, decisions: usize) -> (usize, f64, Vec<(usize, Vec<f64>)>) {
        let n = self.steps.len().max(1) as f64;
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let mx = mean.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = mean.iter().map(|v| (v - mx).exp()).sum();
        let loss = mx + z.ln() - mean.get(answer).copied().unwrap_or(0.0);
        let decision = (0..mean.len()).fold(0, |b, k| if mean[k] > mean[b] { k } else { b });
        let scale = 1.0 / (n * decisions.max(1) as f64);
        let grad: Vec<f64> = mean
            .iter()
            .enumerate()
            .map(|(k, v)| ((v - mx).exp() / z - f64::from(u8::from(k == answer))) * scale)
            .collect();
        let seeds = self.steps.iter().map(|&t| (t, grad.clone())).collect();
        *self = Window::default();
        (decision, loss / decisions.max(1) as f64, seeds)
    }
}

/// 1 with probability `p`, else 0.
pub fn spike(rng: &mut ChaCha8Rng, p: f64) -> f64 {
    if rng.gen::<f64>() < p {
        1.0
    } else {
        0.0
    }
}

/// Something that answers in place of a network: sees the inputs and the reward
/// signal of each step, gives a readout.
pub trait Policy {
    /// The readout after step `t`, having seen `x` and `reward` before it.
    fn act(&mut self, t: usize, x: &[f64], reward: f64) -> Vec<f64>;
}

/// Runs `env` to its end with `policy` in place of a network; its metric.
pub fn run_policy(env: &mut dyn Env, channels: usize, policy: &mut dyn Policy) -> f64 {
    let mut x = vec![0.0; channels];
    for t in 0..env.steps() {
        x.iter_mut().for_each(|v| *v = 0.0);
        let r = env.input(t, &mut x);
        let y = policy.act(t, &x, r);
        env.output(t, &y);
    }
    env.metric()
}

/// Answers at random: a fresh uniform readout every step.
pub struct RandomPolicy {
    /// Its randomness.
    pub rng: ChaCha8Rng,
    /// Readout size.
    pub classes: usize,
}

impl Policy for RandomPolicy {
    fn act(&mut self, _: usize, _: &[f64], _: f64) -> Vec<f64> {
        (0..self.classes).map(|_| self.rng.gen::<f64>()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_decides_by_the_mean_and_its_gradient_matches_finite_differences() {
        let ys = [[0.2, 0.5], [0.4, -0.1], [1.0, 0.3]];
        let mut w = Window::default();
        for (t, y) in ys.iter().enumerate() {
            w.add(t + 10, y);
        }
        let (d, loss, seeds) = w.close(1, 2);
        assert_eq!(d, 0); // mean (0.533, 0.233)
        assert_eq!(seeds.len(), 3);
        assert_eq!(seeds[0].0, 10);
        let f = |ys: &[[f64; 2]]| {
            let mut w = Window::default();
            for (t, y) in ys.iter().enumerate() {
                w.add(t, y);
            }
            w.close(1, 2).1
        };
        for (s, (_, g)) in seeds.iter().enumerate() {
            for k in 0..2 {
                let h = 1e-6;
                let mut a = ys;
                let mut b = ys;
                a[s][k] += h;
                b[s][k] -= h;
                let fd = (f(&a) - f(&b)) / (2.0 * h);
                assert!((fd - g[k]).abs() < 1e-8, "{fd} vs {}", g[k]);
            }
        }
        assert!((loss - f(&ys)).abs() < 1e-15);
    }
}
