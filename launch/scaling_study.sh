#!/usr/bin/env bash
# The small IsoFLOP study on one GPU (docs/scaling.md, "The study"), end to end:
#   Python sources installed on the machine -> exact dedup -> BPE tokenizer trained on part of them
#   -> token shards with a held-out validation split -> IsoFLOP plan -> runs -> fitted laws and plots
#   -> the loss predicted at CHECK_FACTOR x the largest budget -> that run -> the prediction error.
#
#   bash launch/scaling_study.sh      # from anywhere; repeat the same command until it prints COMPLETE
#
# Every stage skips finished work and the runner resumes unfinished runs from their checkpoints, so
# the command can simply be given again after a time limit, a crash or a lost machine (with a lost
# machine the data is rebuilt, identically). Each invocation stops itself before TIME_LIMIT seconds:
# runs still in flight then save a checkpoint and exit. Results are copied to $RESULTS each time.
#
# On the lent GPU machine (python3 there lacks grain, array_record, ml_collections and tensorboardX):
#   here, once:  bash ../shared/gpu/wheels.sh tensorboardX==2.6.5
#   each call:   carry .whl; the script installs .whl/*.whl into /tmp/dsllm_site by itself.
# Toy dry run on a CPU: see docs/scaling.md ("Dry run").
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)

: "${STUDY:=/tmp/dsllm_scaling_study}"   # working directory: data, plan, runs, fits
: "${RESULTS:=${OUT:-$STUDY/export}}"    # results copied here after each call (the device tool's $OUT)
: "${PYTHON:=python3}"
: "${BUDGETS:=1e14,2e14,4e14,8e14,1.6e15}"  # FLOPs, C = M x tokens
: "${PER_BUDGET:=7}"                     # model sizes per budget
: "${SPAN:=10}"                          # largest / smallest target M in a budget
: "${M_LAW:=}"                           # BASE,EXP to centre sizes on (default: the paper's Formula 4)
: "${CHECK_FACTOR:=3}"                   # the prediction is checked at this x the largest budget
: "${SEQ_LEN:=512}"
: "${VOCAB:=8192}"                       # tokenizer ids, the 15 special tokens included
: "${PARALLEL:=6}"                       # runs sharing the GPU at a time (small models leave it idle)
: "${TIME_LIMIT:=560}"                   # seconds this call may take (a device command stops at 600)
: "${CORPUS_MB:=600}"                    # cap on unique source bytes (a random subset past it)
: "${TOKENIZER_MB:=16}"                  # of training documents the tokenizer learns from
: "${VALIDATION_FRACTION:=0.01}"         # documents held out (hash of the text) for validation
: "${ROOTS:=}"                           # comma-separated source dirs (default: python's stdlib + site-packages)
: "${EXTRA_SET:=}"                       # space-separated KEY=VALUE config overrides for every run
: "${N_BOOT:=1000}"                       # bootstrap refits behind each interval
: "${RESUME_RESULTS:=}"                   # results.csv exported by an earlier call on a machine since lost:
                                         # its runs count as done (the data and plan are rebuilt identically)
: "${TRAINER:=}"                         # training command (default: $PYTHON -m dsllm.train)

left() { echo $(( TIME_LIMIT - ($(date +%s) - T0) )); }
say() { echo "[$(date +%H:%M:%S) +$(( $(date +%s) - T0 ))s] $*"; }

# --- environment ---------------------------------------------------------------------------------
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  site=/tmp/dsllm_site
  [ -f $site/.done ] || { $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
                            --target $site .whl/*.whl && touch $site/.done; }
  export PYTHONPATH="$site:$PYTHONPATH"
fi
missing=$($PYTHON -c "
import importlib.util as u
print(' '.join(m for m in ['jax', 'flax', 'optax', 'orbax.checkpoint', 'grain', 'array_record', 'ml_collections',
                           'tensorboardX', 'tokenizers', 'matplotlib', 'scipy'] if u.find_spec(m) is None))")
if [ -n "$missing" ]; then
  echo "error: $PYTHON lacks: $missing. Carry them as wheels: bash ../shared/gpu/wheels.sh tensorboardX==2.6.5" >&2
  exit 2
fi
export PYTHONUNBUFFERED=1
export JAX_COMPILATION_CACHE_DIR="$STUDY/jax_cache"  # a resumed run compiles from cache
mkdir -p "$STUDY" "$RESULTS"
exec > >(tee -a "$STUDY/study_log.txt") 2>&1  # every call's output also goes into study.tar.gz
say "call started; STUDY=$STUDY BUDGETS=$BUDGETS PER_BUDGET=$PER_BUDGET SPAN=$SPAN SEQ_LEN=$SEQ_LEN VOCAB=$VOCAB"
S() { $PYTHON -m dsllm.scaling "$@"; }
# a budget whose noisy curve has no minimum is dropped from the fits with a warning, not fatal
F() { local cmd=$1; shift; $PYTHON -m dsllm.scaling "$cmd" --skip_degenerate --n_boot="$N_BOOT" "$@"; }
sets=(); for kv in $EXTRA_SET; do sets+=("--set=$kv"); done
law=(); [ -n "$M_LAW" ] && law=("--m_law=$M_LAW")

# --- data ------------------------------------------------------------------------------------------
if [ ! -f "$STUDY/tokens/manifest.json" ]; then
  if [ ! -f "$STUDY/corpus/stats.json" ]; then
    say "corpus: Python sources, exact dedup"
    $PYTHON -m dsllm.scaling.code_corpus --out="$STUDY/corpus" --max_mb="$CORPUS_MB" --tokenizer_mb="$TOKENIZER_MB" \
      --validation_fraction="$VALIDATION_FRACTION" ${ROOTS:+--roots="$ROOTS"}
  fi
  if [ ! -f "$STUDY/tok.done" ]; then
    say "tokenizer: byte-level BPE, $VOCAB ids, on ${TOKENIZER_MB} MB of training files"
    rm -rf "$STUDY/tok"
    $PYTHON -m dsllm.tokenizer train --input="$STUDY/corpus/tokenizer_sample.jsonl" --vocab_size="$VOCAB" \
      --backend=hf --out="$STUDY/tok"
    touch "$STUDY/tok.done"
  fi
  say "token shards"
  rm -rf "$STUDY/tokens"  # what an interrupted call left has no manifest
  $PYTHON -m dsllm.data.prepare --input="$STUDY/corpus/corpus.jsonl" --tokenizer="$STUDY/tok" --out="$STUDY/tokens" \
    --validation_fraction="$VALIDATION_FRACTION"
fi

# --- the IsoFLOP sweep -----------------------------------------------------------------------------
S plan --budgets="$BUDGETS" --per_budget="$PER_BUDGET" --span="$SPAN" --seq_len="$SEQ_LEN" "${law[@]}" \
  --data_path="$STUDY/tokens" --out="$STUDY/plan" "${sets[@]}" > "$STUDY/plan.txt"
cat "$STUDY/plan.txt"
if [ -n "$RESUME_RESULTS" ] && [ ! -f "$STUDY/plan/results.csv" ]; then
  say "taking the finished runs of $RESUME_RESULTS"
  cp "$RESUME_RESULTS" "$STUDY/plan/results.csv"
fi
runs_total=$($PYTHON -c "import json; print(len(json.load(open('$STUDY/plan/plan.json'))['runs']))")
recorded() { [ -f "$1/results.csv" ] && $PYTHON -c "import csv; print(len(list(csv.DictReader(open('$1/results.csv')))))" || echo 0; }

run_plan() {  # run_plan DIR: train what is left, stopping before the time limit
  local t=$(left)
  if [ "$t" -lt 90 ]; then say "too little time left to start runs ($t s)"; return 0; fi
  say "running $1 ($t s left)"
  # --foreground: the TERM goes to the runner alone, which passes one TERM to each trainer (a second
  # one would cut short the checkpoint the trainer saves on the first)
  timeout --foreground -k 20 -s TERM $(( t - 40 )) $PYTHON -m dsllm.scaling run --plan="$1" --parallel="$PARALLEL" --keep_going \
    --trainer="${TRAINER:-$PYTHON -m dsllm.train}" \
    --stop_after_s=$(( t - 90 )) || say "runner stopped (exit $?): runs resume from their checkpoints next call"
}

[ "$(recorded "$STUDY/plan")" -lt "$runs_total" ] && run_plan "$STUDY/plan"
done_runs=$(recorded "$STUDY/plan")
say "sweep: $done_runs of $runs_total runs recorded"

# --- fits, prediction, and the check at CHECK_FACTOR x the largest budget ---------------------------
complete=0
fit_and_check() {
  mkdir -p "$STUDY/plots"
  F fit --results="$STUDY/plan/results.csv" --plot="$STUDY/plots" > "$STUDY/fit.txt" || return 1
  cat "$STUDY/fit.txt"
  F fit --results="$STUDY/plan/results.csv" --json > "$STUDY/fit.json" || return 1
  F fit --results="$STUDY/plan/results.csv" --loss_law=offset --json > "$STUDY/fit_offset.json" \
    || echo '{"error": "the offset law did not fit"}' > "$STUDY/fit_offset.json"
  local check
  check=$($PYTHON -c "print('%.3g' % ($CHECK_FACTOR * max(float(b) for b in '$BUDGETS'.split(','))))")
  # the prediction is written before the check run exists, from the sweep alone
  if [ ! -f "$STUDY/prediction_before.json" ]; then
    F predict --results="$STUDY/plan/results.csv" --compute="$check" --json > "$STUDY/prediction_before.json.tmp" \
      && mv "$STUDY/prediction_before.json.tmp" "$STUDY/prediction_before.json" || return 1
  fi
  F plan --budgets="$check" --per_budget=1 --seq_len="$SEQ_LEN" --results="$STUDY/plan/results.csv" \
    --data_path="$STUDY/tokens" --out="$STUDY/check" "${sets[@]}" > "$STUDY/check_plan.txt" || return 1
  cat "$STUDY/check_plan.txt"
  if [ "$(recorded "$STUDY/check")" -lt 1 ]; then run_plan "$STUDY/check"; fi
  [ "$(recorded "$STUDY/check")" -ge 1 ] || return 0
  F predict --results="$STUDY/plan/results.csv" --holdout="$STUDY/check/results.csv" --plot="$STUDY/plots" \
    > "$STUDY/prediction.txt" || return 1
  cat "$STUDY/prediction.txt"
  F predict --results="$STUDY/plan/results.csv" --holdout="$STUDY/check/results.csv" --json \
    > "$STUDY/prediction.json" || return 1
  F predict --results="$STUDY/plan/results.csv" --holdout="$STUDY/check/results.csv" --loss_law=offset --json \
    > "$STUDY/prediction_offset.json" || echo '{"error": "the offset law did not fit"}' > "$STUDY/prediction_offset.json"
  complete=1
}
if [ "$done_runs" -ge "$runs_total" ]; then
  fit_and_check || say "the fit or the check failed (see above); the sweep's results are exported as they are"
fi

# --- export (at most 8 files come back from the device) --------------------------------------------
cp "$STUDY/plan/results.csv" "$RESULTS/" 2>/dev/null || true
for f in fit.json prediction.json; do cp "$STUDY/$f" "$RESULTS/" 2>/dev/null || true; done
for f in isoflop m_opt d_opt loss_vs_compute; do cp "$STUDY/plots/$f.png" "$RESULTS/" 2>/dev/null || true; done
( cd "$STUDY" && tar czf "$RESULTS/study.tar.gz" --ignore-failed-read \
    $(ls -d study_log.txt corpus/stats.json tokens/manifest.json tok/*.json plan.txt plan/plan.json plan/commands.txt \
        plan/results.csv check_plan.txt check/plan.json check/results.csv fit.txt fit.json fit_offset.json \
        prediction_before.json prediction.txt prediction.json prediction_offset.json plots 2>/dev/null) \
    $(ls plan/runs/*/train.log check/runs/*/train.log 2>/dev/null) )
if [ "$complete" = 1 ]; then say "COMPLETE: results in $RESULTS"; else say "INCOMPLETE: give the same command again"; fi
