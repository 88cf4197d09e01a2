#!/usr/bin/env bash
# Multi-process evaluation through torch.distributed (gloo on CPU, nccl on GPU):
#   bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py args...]
exec bash "$(dirname "$0")/dist_launch.sh" "$3" test.py "$1" "$2" "${@:4}"
