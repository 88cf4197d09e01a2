#!/usr/bin/env bash
# What dist_train.sh and dist_test.sh share: start NUM_PROCS copies of a tool through
# torch.distributed.run (gloo on CPU, nccl on GPU).
#   bash tools/dist_launch.sh NUM_PROCS TOOL.py [tool args...]
# Environment: NNODES, NODE_RANK, PORT (29500), MASTER_ADDR (127.0.0.1), MAX_RESTARTS (0:
# when a process dies, torch.distributed.run stops the others and, up to MAX_RESTARTS times,
# starts the whole group again; docs/long_runs.md).
NPROC=$1
TOOL=$2
PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
python3 -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" --max-restarts="${MAX_RESTARTS:-0}" \
    "$(dirname "$0")/$TOOL" "${@:3}" --launcher pytorch
