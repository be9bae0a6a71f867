"""The idealised readout of benchmarks/cue_ceiling.py on what a network recorded in
cue-reward episodes: which stage of a network loses the cues (numpy).

Input: the JSON of `ruleopt simulate NETWORK --task cue-reward -B N --record out.y
--record reward --record VAR... --out FILE.json` (default task options: trials of 4
windows of 20 steps: cue A, cue B, go, feedback). Each trial's label (+1 when responding
is right) is the network's choice (the larger mean `out.y` over the go window) times the
sign of the reward it got. For each memory below, the readout of the ceiling analysis
(w += label * f, f centred on the running mean of the memories so far, answer
respond iff w.f > 0) and the delta rule (`readout`) are run per episode; printed: their
mean reward over trials 11-20, and the network's own.

Memories:
  VAR at the end of the go window      for every other recorded VAR (a memory)
  with `--record proto.y`, the prototype shares (proto.y normalised per step):
    shares at the ends of the cue windows, summed
    their means over the second halves of the two cue windows
    their means over the two cue windows
    a 40 ms leaky sum of the shares over every step

Run: python3 benchmarks/cue_recorded.py FILE.json
"""
import json
import sys
import numpy as np

WINDOW = 20
TRIAL = 4 * WINDOW


def readout(F, labels, rule='hebb', lr=0.1, k=3.0):
    """Mean reward over trials 11-20 of the idealised readout of the centred memories:
    'hebb' (w += label * f, answer respond iff w.f > 0: the ceiling analysis' reward-
    modulated Hebbian readout) or 'delta' (w.f + b with w, b += lr (label - tanh(k (w.f +
    b))) (f, 1): the delta rule of synapses/reward_delta.rule)."""
    w, b, seen, rewards = np.zeros(F.shape[1]), 0.0, [], []
    for f, label in zip(F, labels):
        seen.append(f)
        fc = f - np.mean(seen, 0)
        d = w @ fc + b
        choice = 1 if d > 0 else -1
        rewards.append(1 if choice == label else -1)
        if rule == 'hebb':
            w += label * fc
        else:
            g = lr * (label - np.tanh(k * d))
            w += g * fc
            b += g
    return np.mean(rewards[10:])


def main(path):
    d = json.load(open(path))
    B, T = d['batch'], d['steps']
    trials = T // TRIAL
    R = {k: np.array(v).reshape(T, B, -1) for k, v in d['records'].items()}
    out, reward = R['out.y'], R['reward'][:, :, 0]
    memories = {}
    for k in R:
        if k not in ('out.y', 'reward', 'proto.y'):
            memories[f'{k} at the end of the go window'] = lambda b, t, k=k: R[k][t + 3 * WINDOW - 1, b]
    if 'proto.y' in R:
        sh = R['proto.y'] / R['proto.y'].sum(2, keepdims=True)
        memories['prototype shares at the ends of the cue windows, summed'] = \
            lambda b, t: sh[t + WINDOW - 1, b] + sh[t + 2 * WINDOW - 1, b]
        memories['their means over the second halves of the cue windows'] = \
            lambda b, t: sh[t + WINDOW // 2:t + WINDOW, b].mean(0) + sh[t + 3 * WINDOW // 2:t + 2 * WINDOW, b].mean(0)
        memories['their means over the two cue windows'] = \
            lambda b, t: sh[t:t + WINDOW, b].mean(0) + sh[t + WINDOW:t + 2 * WINDOW, b].mean(0)
        k = np.exp(-1 / 40)
        leaky = np.zeros_like(sh)
        for t in range(T):
            leaky[t] = (k * leaky[t - 1] if t else 0) + sh[t]
        memories['a 40 ms leaky sum of the shares over every step'] = \
            lambda b, t: leaky[t + 3 * WINDOW - 1, b]
    scores = {name: ([], []) for name in memories}
    reward_per_trial = np.zeros((B, trials))
    for b in range(B):
        labels = []
        for i in range(trials):
            t = i * TRIAL
            go = out[t + 2 * WINDOW:t + 3 * WINDOW, b]
            choice = 1 if go[:, 1].mean() > go[:, 0].mean() else -1
            fb = reward[t + 3 * WINDOW:t + TRIAL, b]
            labels.append(np.sign(fb[np.abs(fb).argmax()]) * choice)
            reward_per_trial[b, i] = np.sign(fb[np.abs(fb).argmax()])
        for name, f in memories.items():
            F = np.array([f(b, i * TRIAL) for i in range(trials)])
            scores[name][0].append(readout(F, labels))
            scores[name][1].append(readout(F, labels, 'delta'))
    print('| memory given to the idealised readout | reward-modulated Hebb | delta rule |')
    print('|---|---|---|')
    for name, (h, d) in scores.items():
        print(f'| {name} | {np.mean(h):.3f} | {np.mean(d):.3f} |')
    # The network's own reward, for comparison.
    print(f'\nthe network: {np.mean(reward_per_trial[:, trials // 2:]):.3f}')


if __name__ == '__main__':
    main(sys.argv[1])
