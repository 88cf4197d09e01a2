#!/usr/bin/env bash
# Multi-process training through torch.distributed (gloo on CPU, nccl on GPU):
#   bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args...]
exec bash "$(dirname "$0")/dist_launch.sh" "$2" train.py "$1" "${@:3}"
