#!/usr/bin/env bash
# One GPU session's device calls: bash bench/gpu_session.sh STEP [ARGS]
#
# Why a driver: a session gets one warm machine whose /tmp survives between calls (< 30 s apart)
# while each call carries < 64 MiB and runs < 10 min. So every call first copies in whatever it
# carried (carry_in), long work runs as background processes (setsid) that outlive the call and write
# under /tmp/res, and a `wait` call blocks until they finish and returns their logs and JSON rows.
# The code runs from a snapshot (/tmp/repo, taken at `setup`), so later calls, which re-send the
# working tree without the earlier carries, cannot change what a running job imports.
#
# Payloads (git-ignored, built here; bench/README "GPU session driver" says how):
#   .whl                      cp312 wheels: liger-kernel (installed apart, so a job can run without it),
#                             pydantic + pydantic-settings + python-dotenv + platformdirs, gguf
#   .devcarry/tfb             the transformers 5.24 wheel (Gemma's GGUF tokenizer needs >= 5.18)
#   .devcarry/bnb             bitsandbytes (QLoRA)
#   .devcarry/smol1, smol2    SmolLM2-135M-Instruct's GGUF in two parts (bench/knowledge.py stage)
#   .devcarry/gemma1..5       Gemma 3 270M's GGUF in five parts (BASE=gemma3-270m ... stage)
#   .devcarry/knowledge       the `email` knowledge dataset (bench/knowledge.py prep)
#
# Steps: setup | gputest | b8 | smol | prof | keys | ab | host | warm | gemma | gemma-check | wait NAME... | collect
set -uo pipefail
STEP=${1:?step}; shift || true
R=/tmp/repo RES=/tmp/res
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
BASEPATH=/tmp/gt:/tmp/site
mkdir -p "$RES" /tmp/gguf-parts /tmp/gemma-parts

carry_in() {
  for d in .devcarry/smol*/; do [ -d "$d" ] && cp "$d"* /tmp/gguf-parts/; done
  for d in .devcarry/gemma*/; do [ -d "$d" ] && cp "$d"* /tmp/gemma-parts/; done
  if [ -d .devcarry/knowledge ] && [ -d "$R" ]; then mkdir -p "$R/.devcarry" && cp -r .devcarry/knowledge "$R/.devcarry/"; fi
  # the base model's answer cache (general replay, base probe answers) from an earlier `smol` or `prof`
  if [ -f .devcarry/answers.tgz ] && [ -d "$R" ]; then mkdir -p "$R/.devcarry" && cp .devcarry/answers.tgz "$R/.devcarry/"; fi
  install_once .devcarry/bnb /tmp/site-bnb
  install_once .devcarry/tfb /tmp/site-tf
  return 0
}

# install_once DIR TARGET: pip-install DIR's wheels into TARGET unless these very wheels are there already.
# Why: a carried folder stays in the device's checkout between calls, and re-installing into TARGET
# while a job imports from it broke a Gemma job (FileNotFoundError on transformers/__init__.py).
install_once() {
  local dir=$1 target=$2 stamp
  [ -d "$dir" ] || return 0
  stamp=$(ls "$dir"/*.whl | xargs -n1 basename | sort | tr '\n' ' ')
  [ -f "$target/.installed" ] && [ "$(cat "$target/.installed")" = "$stamp" ] && return 0
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$target" "$dir"/*.whl \
    && echo "$stamp" > "$target/.installed"
}

# bg NAME WAIT_FOR COMMAND: run COMMAND in $R in its own session after WAIT_FOR's .done exists
# ("-" for none); its output in $RES/NAME.log, its exit code in $RES/NAME.done.
bg() {
  local name=$1 after=$2; shift 2
  local wait_line=":"
  [ "$after" != "-" ] && wait_line="while [ ! -f $RES/$after.done ]; do sleep 2; done"
  setsid nohup bash -c "$wait_line; cd $R && ( $* ) > $RES/$name.log 2>&1; echo \$? > $RES/$name.done" \
    > /dev/null 2>&1 < /dev/null &
  echo "started $name (after $after)"
}

report() {
  for f in "$RES"/*.log; do
    [ -f "$f" ] || continue
    local n; n=$(basename "$f" .log)
    echo "=== $n: $( [ -f "$RES/$n.done" ] && echo "exit $(cat "$RES/$n.done")" || echo running)"
    grep -v -E "Warning|warn\(|^\s*$" "$f" | tail -n "${TAIL:-6}" | cut -c1-600
  done
  nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader
  if [ -n "${OUT:-}" ]; then
    # at most 8 files come back: one tarball of every JSON row and log
    tar czf "$OUT/res.tgz" -C "$RES" . 2>/dev/null
  fi
}

[ "$STEP" = setup ] || carry_in  # setup copies them in once it has made the snapshot
case "$STEP" in
  setup)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      $(ls .whl/*.whl | grep -v liger_kernel) || exit 1
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site-liger \
      .whl/liger_kernel*.whl || exit 1
    rm -rf "$R" && mkdir -p "$R" && cp -r server tools bench tests pyproject.toml "$R"/
    carry_in
    mkdir -p /tmp/gt/graphtune && ln -sfn "$R/server" /tmp/gt/graphtune/server && ln -sfn "$R/tools" /tmp/gt/graphtune/tools
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    PYTHONPATH=$BASEPATH python3 -c "import torch, transformers, peft, triton, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'triton', triton.__version__, 'accelerate', accelerate.__version__)"
    PYTHONPATH=/tmp/gt:/tmp/site-tf:/tmp/site python3 -c "import transformers; print('gemma side: transformers', transformers.__version__)"
    PYTHONPATH=$BASEPATH python3 -c "import graphtune.tools.training.train_job; print('graphtune imports')"
    ;;
  gputest)  # the shared-prefix equality on CUDA (flex_attention, compiled layers): ~2 min
    bg gputest - "PYTHONPATH=$BASEPATH:/tmp/site-liger python3 -m pytest -q -p no:cacheprovider -m gpu tests/unit/training/test_shared_prefix.py"
    ;;
  b8)  # the 8B LoRA ceiling (<= 20 GiB at >= 12k tokens/s) and QLoRA, solo, after gputest
    bg b8 "${AFTER:-gputest}" "mkdir -p $RES/b8 && PYTHONPATH=$BASEPATH:/tmp/site-liger:/tmp/site-bnb OUT=$RES/b8 VARIANTS=${VARIANTS:-lora-8b@20,qlora-8b} python3 bench/train_throughput.py"
    ;;
  gemma)  # Gemma 3 270M on `email`: the default job beside one with no Liger and eager layers (issue 18 part two)
    G="GGUF_PARTS=/tmp/gemma-parts KNOWLEDGE_HOME=/tmp/kg OUT=$RES/gemma"
    bg gemma-warm "${AFTER:-b8}" "mkdir -p $RES/gemma && $G PYTHONPATH=/tmp/gt:/tmp/site-tf:/tmp/site:/tmp/site-liger python3 bench/knowledge.py warm"
    bg gemma-a gemma-warm "$G KNOWLEDGE_FIRST=0 PYTHONPATH=/tmp/gt:/tmp/site-tf:/tmp/site:/tmp/site-liger python3 bench/knowledge.py run"
    # GEMMA_B=0: the default job only (the Liger-off, eager-layers job beside it was the eleventh session's check)
    if [ "${GEMMA_B:-1}" = 1 ]; then
      bg gemma-b gemma-warm "$G KNOWLEDGE_FIRST=1 PYTHONPATH=/tmp/gt:/tmp/site-tf:/tmp/site python3 bench/knowledge.py run compile_layers=false"
    fi
    ;;
  gemma-check)  # both Gemma adapters' probes again on the GPU in fp32, transformers' own path, no Liger
    for n in ${GEMMA_MODELS:-0 1}; do
      after=gemma-b; [ "$n" = 0 ] && after=gemma-a
      bg "gemma-check$n" "$after" "GRAPHTUNE_HOME=/tmp/kg PYTHONPATH=/tmp/gt:/tmp/site-tf:/tmp/site python3 bench/answer_on_cpu.py /tmp/gguf/gemma-3-270m-q4_k_m.gguf /tmp/kg/models/knowledge_$n $R/.devcarry/knowledge/datasets/email-facts --device cuda --fp32 --limit 300"
    done
    ;;
  smol)  # SmolLM2 on `email`: shared_prefix on vs the shipped defaults, side by side
    export KNOWLEDGE_RUNS=${RUNS:-'[{"shared_prefix": true}, {}]'}  # inherited: JSON survives no second quoting
    bg smol "${AFTER:-b8}" "mkdir -p $RES/smol && KNOWLEDGE_HOME=/tmp/kh OUT=$RES/smol PARALLEL=1 PYTHONPATH=$BASEPATH:/tmp/site-liger python3 bench/knowledge.py run"
    ;;
  prof)  # where the SmolLM2 job's seconds go (bench/step_clock.py): a 60-step sweep profiled at steps 40-44,
    # with NOKL=1 the same without the KL term, then the shipped defaults' whole job alone with its step clock
    # (JOB_PROFILE=START:COUNT profiles a few of the job's steps too; SDPA_WARM=1: step_clock.eager_sdpa_once)
    K="KNOWLEDGE_HOME=/tmp/kh OUT=$RES/prof PYTHONPATH=$BASEPATH:/tmp/site-liger"
    S="SWEEP=49152 SWEEP_STEPS=${SWEEP_STEPS:-60} KNOWLEDGE=0"
    NOKL_RUN=":"
    [ "${NOKL:-0}" = 1 ] && NOKL_RUN="$K $S SWEEP_TAG=nokl python3 bench/knowledge.py run general_replay_kl=0"
    bg prof "${AFTER:--}" "mkdir -p $RES/prof && $K $S PROFILE=40:5 python3 bench/knowledge.py run && \
      $NOKL_RUN && $K ${JOB_PROFILE:+PROFILE=$JOB_PROFILE} KNOWLEDGE_RUNS='[{}]' python3 bench/knowledge.py run"
    ;;
  keys)  # why a job misses the compiled layers an earlier process saved: three short sweeps in three
    # processes (a, b: the sweep's config; c: the job's, budget auto) with inductor's and AOTAutograd's
    # cache-key details logged; bench/compile_keys.py prints their counters and where the keys differ
    K="KNOWLEDGE_HOME=/tmp/kh OUT=$RES/keys PYTHONPATH=$BASEPATH:/tmp/site-liger SWEEP=49152 SWEEP_STEPS=3 KNOWLEDGE=0"
    L="TORCH_LOGS=+torch._inductor.codecache,+torch._functorch._aot_autograd.autograd_cache"
    bg keys "${AFTER:--}" "mkdir -p $RES/keys && \
      $K $L SWEEP_TAG=a python3 bench/knowledge.py run > $RES/keys/a.log 2>&1; \
      $K $L SWEEP_TAG=b python3 bench/knowledge.py run > $RES/keys/b.log 2>&1; \
      $K $L SWEEP_TAG=c SWEEP_AUTO_BUDGET=1 python3 bench/knowledge.py run > $RES/keys/c.log 2>&1; \
      python3 bench/compile_keys.py $RES/keys/a.log $RES/keys/b.log $RES/keys/c.log"
    ;;
  ab)  # the step's speed-ups one by one, same call: 40-step sweeps of the knowledge job (KL checkpointed,
    # rows collated in-process, metrics every step -> each landed change added), then the defaults' job
    K="KNOWLEDGE_HOME=/tmp/kh OUT=$RES/ab PYTHONPATH=$BASEPATH:/tmp/site-liger SWEEP=49152 SWEEP_STEPS=${SWEEP_STEPS:-40} KNOWLEDGE=0"
    bg ab "${AFTER:--}" "mkdir -p $RES/ab && \
      $K SWEEP_TAG=old LOADER_WORKERS=0 KL_PATH=checkpointed python3 bench/knowledge.py run logging_steps=1 && \
      $K SWEEP_TAG=kl LOADER_WORKERS=0 python3 bench/knowledge.py run logging_steps=1 && \
      $K SWEEP_TAG=worker python3 bench/knowledge.py run logging_steps=1 && \
      $K SWEEP_TAG=log3 python3 bench/knowledge.py run logging_steps=3 && \
      ${AB_JOB:-:}"
    ;;
  host)  # candidates for the host-bound step, each beside the defaults in the same call (40-step sweeps)
    K="KNOWLEDGE_HOME=/tmp/kh OUT=$RES/host PYTHONPATH=$BASEPATH:/tmp/site-liger SWEEP=49152 SWEEP_STEPS=${SWEEP_STEPS:-40} KNOWLEDGE=0"
    bg host "${AFTER:--}" "mkdir -p $RES/host && \
      $K SWEEP_TAG=base python3 bench/knowledge.py run; \
      $K SWEEP_TAG=cpp INDUCTOR_CPP_WRAPPER=1 python3 bench/knowledge.py run; \
      $K SWEEP_TAG=graphs LAYER_COMPILE_MODE=reduce-overhead python3 bench/knowledge.py run; \
      $K SWEEP_TAG=base2 python3 bench/knowledge.py run"
    ;;
  warm)  # the MCP server's warm worker on the GPU (bench/warm_worker_start.py): 20-step `email` jobs through the
    # job runner, cold vs handed to a ready spare; submit -> first step. After a step that assembled /tmp/gguf.
    bg warm "${AFTER:--}" "PYTHONPATH=$BASEPATH:/tmp/site-liger DATASETS=$R/.devcarry/knowledge/datasets \
      DATASET=email-facts BASE=/tmp/gguf/SmolLM2-135M-Instruct.Q4_1.gguf MAX_STEPS=20 TOKENS_PER_BATCH=0 \
      MAX_SEQ_LENGTH=512 ROUNDS=${ROUNDS:-2} python3 bench/warm_worker_start.py"
    ;;
  wait)  # block until every named step is done (or 560 s), then report
    deadline=$((SECONDS + ${WAIT_S:-560}))
    while [ $SECONDS -lt $deadline ]; do
      all=1; for n in "$@"; do [ -f "$RES/$n.done" ] || all=0; done
      [ $all = 1 ] && break
      sleep 5
    done
    report
    ;;
  collect|*)
    report
    ;;
esac
