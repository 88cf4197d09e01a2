#!/usr/bin/env bash
# Multi-process training through torch.distributed (gloo on CPU, nccl on GPU):
#   bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args...]
# MAX_RESTARTS=N: when a process dies, restart the whole group up to N times; each start
# (the first one too) gets --resume, so it continues from the newest checkpoint in work_dir
# that loads (docs/long_runs.md). Use a fresh --work-dir for a new run.
ARGS=("${@:3}")
if [ "${MAX_RESTARTS:-0}" -gt 0 ] && [[ ! " ${ARGS[*]} " =~ " --resume" ]]; then
    ARGS+=(--resume)
fi
exec bash "$(dirname "$0")/dist_launch.sh" "$2" train.py "$1" "${ARGS[@]}"
