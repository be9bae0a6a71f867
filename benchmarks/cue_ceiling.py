"""Ceilings of a reward-modulated Hebbian readout on cue-reward (numpy, no network).

Episodes are drawn as benchmarks/src/tasks/cue_reward.rs draws them (4 random 20-bit
cues at least 6 bits apart, one target; each trial shows two different cues, the target
with probability 1/2; 20 trials; metric = mean reward over trials 10-19, chance 0).
Each learner keeps the idealised readout of a plastic network: a weight vector w over a
memory vector f (what the network holds of the trial's two cues at the go window) and
a plastic bias b, answers respond iff w.f + b > 0, and after the feedback applies

    w += g f,    b -= g k        with g = m * choice,

where choice = +1 (respond) / -1 (don't) and m is the neuromodulator: m = r (the reward,
+1/-1: reward-modulated Hebbian, i.e. g = label) or, with `post='lin'`, g = r (w.f + b)
(the post factor of Backpropamine on a linear readout: the change scales with the
readout value). k is the plastic bias' gain, in units of the mean overlap f.f' of
the episode's memories (k = 0: no bias); `k='oracle'` centres the
memory on the mean over the episode's 4 cues instead (an oracle: the network cannot
know the 4 cues in advance); `k='running'` centres it on the running mean of the
trial memories so far, this trial's included (causal: what a slow per-channel
adaptation of the memory can hold).

Memories f:
  onehot  - the identities of the two cues (a perfect, noiseless memory)
  bits    - the sum of the two cues' bit vectors (noiseless)
  counts  - the sum of the spike counts of the 20 cue channels in the two 20 ms cue
            windows (the task's input noise: 0.2 / 0.005 per step)
  binary  - per channel and window, 1 if it spiked at all (the cleanest per-window read)
  decayed - counts weighted as a leaky memory with tau 50 ms holds them at the go window
            (cue A x 0.51, cue B x 0.72, plus 0.26 x the previous trial's memory)
  presence - per channel and window 1 - exp(-count) (a saturating trace: near 1 once
            the channel fires), the two windows summed: neurons/presence_memory.rule
  presence-union - 1 - exp(-(count A + count B)): saturated after summing, the union
            of the two cues rather than their sum
  proto-distance, proto-cosine - the counts recoded as identities learned within the
            episode by soft competitive learning (`prototypes`), with the distance or
            the cosine as the competition's score

A second table compares two learning rules on the running-centred memories, with a
plastic bias: reward-modulated Hebb (g = label, as above) and the delta rule g = label -
tanh(k d) (label = reward x choice: what synapses/reward_delta.rule computes), lr the
step size.

Run: `python3 benchmarks/cue_ceiling.py` (numpy; ~1 min): prints the table and per-trial curves
of cue-results.md.
"""
import numpy as np

def episode(rng, trials=20, bits=20):
    while True:
        C = rng.integers(0, 2, (4, bits)).astype(bool)
        if C.any(1).all() and all((C[i] != C[j]).sum() >= bits // 3 for i in range(4) for j in range(i)):
            break
    target = rng.integers(4)
    shown = []
    for _ in range(trials):
        others = [c for c in range(4) if c != target]
        rng.shuffle(others)
        pair = [target, others[0]] if rng.random() < 0.5 else others[:2]
        rng.shuffle(pair)
        shown.append(pair)
    return C, target, shown

def prototypes(rng, C, shown, score, beta, eta=0.6, K=4):
    """Soft competitive learning over the episode (online soft k-means, a local
    instar rule): K prototypes W start equal up to noise (2 + N(0, 0.3^2) spikes per
    channel); each cue window's spike counts c give a = softmax(beta * score(W, c)) and
    move W_k += eta a_k (c - W_k). The memory of a trial is a(A) + a(B): the cues
    as learned identities."""
    W = 2.0 + 0.3 * rng.standard_normal((K, C.shape[1]))
    out = []
    def code(c):
        d = score(W, c)
        e = np.exp(beta * (d - d.max()))
        a = e / e.sum()
        W[:] += eta * a[:, None] * (c - W)
        return a
    for a, b in shown:
        ca = rng.binomial(20, np.where(C[a], 0.2, 0.005)).astype(float)
        cb = rng.binomial(20, np.where(C[b], 0.2, 0.005)).astype(float)
        out.append(code(ca) + code(cb))
    return np.array(out)

# Prototype scores: the negative squared distance (needs each prototype's norm, a
# per-unit bias) and the cosine / 20 (what a normalised dot product gives).
PROTOTYPES = {
    'proto-distance': (lambda W, c: -((W - c) ** 2).sum(1), 1.0),
    'proto-cosine': (lambda W, c: W @ c / np.linalg.norm(W, axis=1) / 20, 20.0),
}

def memories(rng, C, shown, kind):
    if kind in PROTOTYPES:
        score, beta = PROTOTYPES[kind]
        return prototypes(rng, C, shown, score, beta)
    out, prev = [], 0.0
    for a, b in shown:
        if kind == 'onehot':
            f = np.eye(4)[a] + np.eye(4)[b]
        elif kind == 'bits':
            f = (C[a] + 0.0) + C[b]
        else:
            ca = rng.binomial(20, np.where(C[a], 0.2, 0.005)).astype(float)
            cb = rng.binomial(20, np.where(C[b], 0.2, 0.005)).astype(float)
            if kind == 'binary':
                ca, cb = (ca > 0) + 0.0, (cb > 0) + 0.0
            if kind == 'presence':
                ca, cb = 1 - np.exp(-ca), 1 - np.exp(-cb)
            if kind == 'presence-union':
                out.append(1 - np.exp(-(ca + cb)))
                continue
            if kind == 'decayed':
                cur = 0.51 * ca + 0.72 * cb
                f, prev = cur + 0.26 * prev, cur
                out.append(f)
                continue
            f = ca + cb
        out.append(f)
    return np.array(out)

def episode_rewards(rng, kind, k, post='unit'):
    """One episode of the learner with bias gain k (or 'oracle'): the reward per trial."""
    C, target, shown = episode(rng)
    F = memories(rng, C, shown, kind)
    if k == 'running':
        # centred on the running mean of the memories so far (this trial's included):
        # causal, what a slow per-channel adaptation can hold
        F, kk = F - np.cumsum(F, 0) / np.arange(1, len(F) + 1)[:, None], 0.0
    elif k == 'oracle':
        # the memory of every cue pair, averaged: the episode's mean memory
        mean = np.mean([memories(rng, C, [(a, b)], kind)[0] for a in range(4) for b in range(4) if a != b], 0)
        F, kk = F - mean, 0.0
    else:
        kk = k * np.mean(F @ F.T)   # gain relative to the memories' typical overlap
    w, b, R = np.zeros(F.shape[1]), 0.0, []
    for t, f in enumerate(F):
        d = w @ f + b + 1e-9 * rng.standard_normal()
        choice = 1 if d > 0 else -1
        label = 1 if target in shown[t] else -1
        r = 1 if choice == label else -1
        R.append(r)
        g = label if post == 'unit' else r * d + (1e-3 * label if t == 0 else 0)
        w += g * f
        b -= g * kk
    return R

def delta_learner(kind, rule, lr, k=3.0, episodes=300, seed=0):
    """Mean reward over trials 11-20 of a readout w.f + b of the running-centred memory
    learning by `rule`: 'hebb' (g = label) or 'delta' (g = label - tanh(k (w.f + b)))."""
    rng, total = np.random.default_rng(seed), []
    for _ in range(episodes):
        C, target, shown = episode(rng)
        F = memories(rng, C, shown, kind)
        F = F - np.cumsum(F, 0) / np.arange(1, len(F) + 1)[:, None]
        w, b, R = np.zeros(F.shape[1]), 0.0, []
        for t, f in enumerate(F):
            d = w @ f + b + 1e-3 * rng.standard_normal()
            label = 1 if target in shown[t] else -1
            R.append(1 if (d > 0) == (label > 0) else -1)
            g = label if rule == 'hebb' else label - np.tanh(k * d)
            w += lr * g * f
            b += lr * g
        total.append(np.mean(R[10:]))
    return np.mean(total)

def learner(kind, k, post='unit', episodes=500, seed=0):
    """Mean reward over trials 11-20."""
    rng = np.random.default_rng(seed)
    return np.mean([np.mean(episode_rewards(rng, kind, k, post)[10:]) for _ in range(episodes)])

def curve(kind, k, episodes=400, seed=0):
    """Mean reward per trial (1..20) of the learner with bias gain k (or 'oracle')."""
    rng = np.random.default_rng(seed)
    return np.mean([episode_rewards(rng, kind, k) for _ in range(episodes)], 0)

if __name__ == '__main__':
    print('| memory | no bias | best constant bias (k) | running-mean centring | oracle centring | oracle centring, post factor = readout value |')
    print('|---|---|---|---|---|---|')
    for kind in ['onehot', 'bits', 'counts', 'binary', 'presence', 'presence-union', 'decayed'] + list(PROTOTYPES):
        nob = learner(kind, 0.0)
        best = max((learner(kind, k), k) for k in (0.25, 0.5, 0.75, 1.0, 1.25))
        run = learner(kind, 'running')
        if kind in PROTOTYPES:
            # the oracle's mean memory would need the prototypes' state: not defined
            print(f'| {kind} | {nob:.3f} | {best[0]:.3f} ({best[1]}) | {run:.3f} | - | - |', flush=True)
            continue
        orc = learner(kind, 'oracle')
        lin = learner(kind, 'oracle', post='lin')
        print(f'| {kind} | {nob:.3f} | {best[0]:.3f} ({best[1]}) | {run:.3f} | {orc:.3f} | {lin:.3f} |', flush=True)
    print()
    print('| memory (running-centred) | reward-modulated Hebb, lr 0.1 | delta rule, lr 0.03 | lr 0.1 | lr 0.3 |')
    print('|---|---|---|---|---|')
    for kind in ['onehot', 'counts', 'binary', 'presence', 'presence-union']:
        cells = [delta_learner(kind, 'hebb', 0.1)] + [delta_learner(kind, 'delta', lr) for lr in (0.03, 0.1, 0.3)]
        print(f'| {kind} | ' + ' | '.join(f'{c:.3f}' for c in cells) + ' |', flush=True)
    print()
    print('reward per trial (1..20):')
    for kind, k in [('counts', 1.0), ('counts', 'running'), ('counts', 'oracle'), ('onehot', 0.75)]:
        print(f'{kind}, k={k}:', ' '.join(f'{r:.2f}' for r in curve(kind, k)))
