#!/usr/bin/env bash
# W1 forward (or forward + backward: W1_MODE=grad), side by side: ruleopt's JIT against
# the JAX and PyTorch references, in one
# run on one machine, with the same parameters and inputs (the references' seed-0 draws
# from w1_common.py, converted to the shared JSON format and given to ruleopt with
# --params), so the losses must agree too. Prints a Markdown table: median and minimum
# seconds per forward pass, peak resident memory, compile time, loss, the references'
# time and memory over ruleopt's, and for ruleopt the synapse updates per second and the
# fraction of the roofline bound of ANCHORS.md it reaches.
#
# Not part of CI (it needs the references' Python environment and takes minutes).
#
# Usage: benchmarks/w1_compare.sh [N ...]            (default: 64 128 256 512)
# Environment:
#   W1_PYTHON    python with jax/torch/numpy (default /work/venv-w1/bin/python); a
#                reference whose package is missing is skipped, and the table says so.
#                Set up with: python3 -m venv /work/venv-w1 &&
#                /work/venv-w1/bin/pip install jax jaxlib numpy torch
#   W1_BENCH     the shared bench folder holding w1_jax.py, w1_torch.py, w1_common.py
#                (default: ../shared/bench next to the repository)
#   W1_REPS      timed repetitions of each implementation (default 5)
#   W1_THREADS   threads for ruleopt and torch (default 2; JAX uses every core)
#   W1_MODE      fwd (default): forward passes; grad: loss and all gradients
#   W1_IMPLS     which to run (default for fwd: "ruleopt jax-scan torch-compile torch-eager";
#                for grad: "ruleopt jax-remat2 torch-compile torch-compile-ckpt", where
#                jax-remat2 and torch-compile-ckpt keep 25-step segment checkpoints; the
#                un-checkpointed references are skipped at N >= 512, where they need
#                33-57 GiB)
#   W1_OUT       where the JSON results go (default: a fresh temporary directory)
#   W1_NO_BUILD  set to skip `cargo build --release -p ruleopt`
#   W1_QUIET     before each run, wait (up to this many seconds) until the machine's CPU use
#                over 3 s is under 10%, so that other work does not distort the times
#                (default 0: do not wait). The table's last column shows the other
#                processes' share of the CPU during the timed passes either way.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${W1_PYTHON:-/work/venv-w1/bin/python}"
BENCH="${W1_BENCH:-$ROOT/../shared/bench}"
REPS="${W1_REPS:-5}"
THREADS="${W1_THREADS:-2}"
MODE="${W1_MODE:-fwd}"
case $MODE in
  fwd) IMPLS="${W1_IMPLS:-ruleopt jax-scan torch-compile torch-eager}"; REF_MODE=fwd ;;
  grad) IMPLS="${W1_IMPLS:-ruleopt jax-remat2 torch-compile torch-compile-ckpt}"; REF_MODE=fwdbwd ;;
  *) echo "W1_MODE must be fwd or grad" >&2; exit 2 ;;
esac
OUT="${W1_OUT:-$(mktemp -d -t w1_compare.XXXXXX)}"
NS=("$@")
[ ${#NS[@]} -gt 0 ] || NS=(64 128 256 512)
RULEOPT="$ROOT/target/release/ruleopt"
mkdir -p "$OUT/data"
export W1_DATA_DIR="$OUT/data" W1_THREADS="$THREADS"

if [ -z "${W1_NO_BUILD:-}" ]; then
  (cd "$ROOT" && cargo build --release -q -p ruleopt)
fi

has() { [ -x "$PY" ] && "$PY" -c "import $1" >/dev/null 2>&1; }
NOTES="$OUT/notes.txt"
: >"$NOTES"
note() { echo "$*" | tee -a "$NOTES" >&2; }
has numpy || note "no numpy in $PY: ruleopt uses the shared params files where they exist, else its own seed-0 draws"
has jax || note "skipped JAX: \`import jax\` fails in $PY"
has torch || note "skipped PyTorch: \`import torch\` fails in $PY"

# Parameters and inputs of size N in the shared JSON format, from w1_common.load (the
# exact arrays the references run on).
params_json() {
  local n=$1 file="$OUT/params_N$1.json"
  if has numpy; then
    "$PY" - "$BENCH" "$n" "$file" <<'EOF'
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import w1_common as C
n, path = int(sys.argv[2]), sys.argv[3]
d = C.load(n)
x = d["x"]
out = {"workload": "W1", "N": n, "T": int(x.shape[0]), "B": int(x.shape[1]), "N_in": int(x.shape[2]),
       "x_spikes": {"shape": list(x.shape), "ones": np.argwhere(x != 0).tolist()},
       "c": [int(c) for c in d["c"]],
       "params": {k: {"shape": list(np.shape(d[k])), "data": [float(v) for v in np.ravel(d[k])]}
                  for k in C.PARAM_NAMES}}
with open(path, "w") as f:
    json.dump(out, f)
EOF
    echo "$file"
  elif [ -f "$BENCH/w1/params_N$n.json" ]; then
    echo "$BENCH/w1/params_N$n.json"
  fi
}

busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
wait_quiet() {
  local limit=${W1_QUIET:-0} waited=0 b0 t0 b1 t1
  while [ "$waited" -lt "$limit" ]; do
    read -r b0 t0 < <(busy); sleep 3; read -r b1 t1 < <(busy)
    [ $(((b1 - b0) * 100)) -lt $(((t1 - t0) * 10)) ] && return 0
    waited=$((waited + 3))
  done
  [ "$limit" -eq 0 ] || note "the machine was busy for ${limit}s before a run; ran anyway"
}

run() { # impl n -> writes $OUT/<impl>_N<n>.json, or notes why not
  local impl=$1 n=$2 out="$OUT/$1_N$2.json" log="$OUT/$1_N$2.log"
  case $impl in
    ruleopt)
      local p
      p=$(params_json "$n")
      "$RULEOPT" bench w1 --mode "$MODE" --n "$n" --repeats "$REPS" --threads "$THREADS" --json \
        ${p:+--params "$p"} >"$out" 2>"$log" || { note "ruleopt failed at N=$n (see $log)"; rm -f "$out"; } ;;
    jax-scan | jax-remat | jax-remat2)
      has jax || return 0
      if [ "$MODE" = grad ] && [ "$impl" = jax-scan ] && [ "$n" -ge 512 ]; then
        note "skipped $impl at N=$n: without checkpoints it needs ~57 GiB"; return 0
      fi
      "$PY" "$BENCH/w1_jax.py" --N "$n" --mode "$REF_MODE" --variant "${impl#jax-}" --reps "$REPS" \
        --json "$out" >"$log" 2>&1 || { note "$impl failed at N=$n (see $log)"; rm -f "$out"; } ;;
    torch-compile | torch-eager | torch-ckpt | torch-compile-ckpt)
      has torch || return 0
      if [ "$MODE" = grad ] && [ "${impl%-ckpt}" = "$impl" ] && [ "$n" -ge 512 ]; then
        note "skipped $impl at N=$n: without checkpoints it needs ~50 GiB"; return 0
      fi
      "$PY" "$BENCH/w1_torch.py" --N "$n" --mode "$REF_MODE" --variant "${impl#torch-}" --reps "$REPS" \
        --json "$out" >"$log" 2>&1 || { note "$impl failed at N=$n (see $log)"; rm -f "$out"; } ;;
    *) note "unknown implementation $impl" ;;
  esac
}

for n in "${NS[@]}"; do
  for impl in $IMPLS; do
    echo "N=$n $impl ..." >&2
    wait_quiet
    run "$impl" "$n"
  done
done

python3 - "$OUT" "$IMPLS" "$MODE" "${NS[@]}" <<'EOF'
import json, os, sys
out, impls, mode, ns = sys.argv[1], sys.argv[2].split(), sys.argv[3], [int(n) for n in sys.argv[4:]]
# Rooflines of ANCHORS.md: forward, and forward + backward with recompute (lower end).
BOUND = ({64: 0.008, 128: 0.047, 256: 0.305, 512: 1.37} if mode == "fwd"
         else {64: 0.041, 128: 0.165, 256: 0.66, 512: 5.2})
def load(impl, n):
    p = os.path.join(out, f"{impl}_N{n}.json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.loads(f.read().strip().splitlines()[-1])
print("| N | implementation | median s | min s | peak MiB | compile s | loss | time / ruleopt | memory / ruleopt | other load |")
print("|---|---|---|---|---|---|---|---|---|---|")
extra = []
for n in ns:
    base = load("ruleopt", n)
    for impl in impls:
        r = load(impl, n)
        if r is None:
            continue
        compile_s = r.get("compile_total_s", r.get("compile_s"))
        mib = r["peak_rss_bytes"] / 2**20
        if base is not None and impl != "ruleopt":
            ratio_t = f"{r['median_s'] / base['median_s']:.2f}x"
            ratio_m = f"{r['peak_rss_bytes'] / base['peak_rss_bytes']:.1f}x"
        else:
            ratio_t = ratio_m = "1" if impl == "ruleopt" else "-"
        load_ = max(r.get("other_load") or [0.0])
        cs = f"{compile_s:.4f}" if compile_s is not None else "-"
        print(f"| {n} | {impl} | {r['median_s']:.4f} | {r['min_s']:.4f} | {mib:.0f} | {cs} | {r['loss']:.7f} | {ratio_t} | {ratio_m} | {load_:.0%} |")
        if impl == "ruleopt":
            b = BOUND.get(n)
            frac = f"{b / r['median_s']:.1%} of the {b * 1e3:.0f} ms bound" if b else "no bound known"
            extra.append(f"- N={n}: ruleopt {r['synapse_updates_per_s']:.3e} synapse updates/s, {frac}")
print()
print("\n".join(extra))
EOF
[ -s "$NOTES" ] && { echo; sed 's/^/- /' "$NOTES"; }
echo >&2 "results: $OUT"
