#!/usr/bin/env bash
# One-run GPU benchmark of mmwinwin's pure core (Win-Win training, Expedite, flow,
# TFLOP/s); needs only python + torch (no mmcv / mmseg / mmdet). Writes OUT_DIR/results.json
# and OUT_DIR/results.md. Extra flags go to tools/analysis_tools/benchmark_device.py, e.g.
#   bash tools/analysis_tools/benchmark_device.sh work_dirs/device                # GPU, bf16, <= 8 min on an H200
#   bash tools/analysis_tools/benchmark_device.sh work_dirs/device --compile      # also torch.compile (longer)
#   bash tools/analysis_tools/benchmark_device.sh work_dirs/smoke --smoke         # tiny sizes on CPU
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 OUT_DIR [--smoke] [--compile] [--dtype bf16|fp16|fp32] [--parts ...]" >&2
    exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c "import torch" || { echo "benchmark_device.sh needs torch (pip install torch)" >&2; exit 1; }
OUT="$1"; shift
mkdir -p "$OUT"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" "$ROOT/tools/analysis_tools/benchmark_device.py" "$OUT" "$@" \
    2>&1 | tee "$OUT/log.txt"
