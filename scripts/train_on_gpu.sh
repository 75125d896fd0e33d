#!/usr/bin/env bash
# Train every configs/gpu run at once on one lent GPU, time-boxed (train.max_minutes), then pack the weights.
#
#   SRKIT_DATA=/path/to/datasets scripts/train_on_gpu.sh [RUNS_DIR] [PACK_DIR] [--set key=value ...]
#
# The real-world chain runs in order (real-x4, then real-x4-gan from its best weights); every other run starts
# at once beside it. Each run gets a hard wall limit (SRKIT_GPU_WALL seconds, default 520) so the script always
# gets to pack what exists. Extra `--set` overrides go to every run (a CPU dry run: --set train.device=cpu
# --set train.max_minutes=0.1). If the batch-mode (GPU) degradation fails at start, real-x4 is retried with
# the CPU loader degradation instead, so one bug cannot cost the whole lease.
set -u
RUNS=${1:-runs/gpu}
PACK=${2:-runs/gpu-pack}
shift $(( $# < 2 ? $# : 2 ))
WALL=${SRKIT_GPU_WALL:-520}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
mkdir -p "$RUNS" "$PACK"
PACK=$(cd "$PACK" && pwd)
: > "$RUNS/status.txt"
T0=$(date +%s)

train() {  # train NAME [extra args]: one run, its log beside the run folder, its exit code in status.txt
    local name=$1; shift
    local left=$(( WALL - ($(date +%s) - T0) ))
    (( left > 30 )) || { echo "$name skipped: ${left}s left" >> "$RUNS/status.txt"; return 1; }
    timeout -s TERM -k 20 "$left" "${PYTHON:-python3}" -m srkit train "configs/gpu/$name.yaml" --out "$RUNS/$name" \
        --no-progress "$@" > "$RUNS/$name.log" 2>&1
    local rc=$?
    echo "$name exit $rc after $(( $(date +%s) - T0 ))s" >> "$RUNS/status.txt"
    return $rc
}

real_chain() {
    if ! train real-x4 "$@"; then
        if [ ! -f "$RUNS/real-x4/best.safetensors" ]; then  # failed before any weights: the CPU loader instead
            mv "$RUNS/real-x4" "$RUNS/real-x4-batch-failed" 2>/dev/null
            mv "$RUNS/real-x4.log" "$RUNS/real-x4-batch-failed.log"
            train real-x4 --set data.degradation.on=loader --set data.workers=4 --set train.max_minutes=4.0 "$@"
        fi
    fi
    # The GAN starts from whatever best weights the fidelity run left (also after a timeout).
    [ -f "$RUNS/real-x4/best.safetensors" ] &&
        train real-x4-gan --set "model.init=$RUNS/real-x4/best.safetensors" "$@"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null > "$RUNS/gpu.txt"
# SRKIT_GPU_CHAIN=0 leaves out the real-x4 -> real-x4-gan chain; SRKIT_GPU_RUNS names the runs beside it.
# Few processes per GPU: each one time-slices the card, and 11 at once ran 4-20x slower than alone.
[ "${SRKIT_GPU_CHAIN:-1}" = 1 ] && real_chain "$@" &
for name in ${SRKIT_GPU_RUNS-real-x4-ft tiny-x2 tiny-x3 tiny-x4 balanced-x2 balanced-x3 balanced-x4 tiny-x4-ft balanced-x4-ft}; do
    train "$name" "$@" &
done
wait

# Pack: weights, logs, configs (no checkpoints: resuming needs this machine anyway), in groups that each stay
# under 16 MiB (the device tool's limit per returned file).
pack() {  # pack NAME RUN...
    local name=$1; shift
    local files=() r f
    for r in "$@"; do
        for f in best.safetensors final.safetensors log.csv config.yaml; do
            [ -f "$RUNS/$r/$f" ] && files+=("$r/$f")
        done
    done
    (( ${#files[@]} )) && tar czf "$PACK/$name.tar.gz" -C "$RUNS" "${files[@]}"
}
pack real-x4 real-x4 real-x4-batch-failed
pack real-x4-gan real-x4-gan real-x4-gan-ft
pack real-x4-ft-tiny real-x4-ft tiny-x2 tiny-x3 tiny-x4 tiny-x4-ft
pack balanced-x2-x3 balanced-x2 balanced-x3
pack balanced-x4 balanced-x4 balanced-x4-ft
tar czf "$PACK/logs.tar.gz" -C "$RUNS" status.txt gpu.txt $(cd "$RUNS" && ls ./*.log)
cat "$RUNS/status.txt"
for d in "$RUNS"/*/; do
    [ -f "$d/log.csv" ] && printf '%-28s %s\n' "$(basename "$d")" "$(tail -n 1 "$d/log.csv" | cut -c1-150)"
done
ls -la "$PACK"
