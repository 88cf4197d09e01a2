#!/usr/bin/env bash
# One-command set-up of mmwinwin and its pinned OpenMMLab stack (see README.md).
#   bash tools/install.sh
# Uses a prebuilt mmcv 2.1.0 wheel when pip's find-links hold one (PIP_FIND_LINKS=DIR),
# otherwise builds mmcv 2.1.0 with its compiled ops from source (~17 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pip_install() { "$PY" -m pip install --disable-pip-version-check "$@"; }

# 1. torch 2.13.0 (the CPU wheel on this platform; a looser spec pulls GBs of CUDA packages)
if ! "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  echo "[install] torch 2.13.0"
  pip_install "torch==2.13.0"
fi

# 2. build prerequisites (setuptools<81 keeps pkg_resources, which mmcv and mmengine need, without deprecation noise)
pip_install "setuptools<81" wheel ninja psutil

# 3. mmcv 2.1.0 *full* (with compiled ops): prebuilt wheel from find-links, else from source
if ! "$PY" -c "import mmcv, sys; from mmcv.ops import nms; sys.exit(mmcv.__version__ != '2.1.0')" 2>/dev/null; then
  echo "[install] mmcv 2.1.0 with ops (find-links: ${PIP_FIND_LINKS:-none}; source build if no wheel)"
  MMCV_WITH_OPS=1 pip_install --no-build-isolation "mmcv==2.1.0"
fi

# 4. the rest of the stack and mmwinwin itself (editable), with the test extras (timm, the
#    reference for the pretrained RoPE families, and torchvision, which timm needs; tomesd,
#    the reference of the token-merging tests, which needs torch only): torch is
#    pinned on the same command line, because timm on its own would upgrade it and break
#    mmcv's compiled ops; torchvision 0.28.0 is the build that matches torch 2.13.0
pip_install --no-build-isolation -e ".[tests]" "torch==2.13.0" "torchvision==0.28.0"
"$PY" -c "import torch, torchvision, mmcv.ops, timm, tomesd, xdist, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" || {
  echo "[install] FAILED: torch / torchvision / mmcv.ops / timm / tomesd / pytest-xdist do not import together (see above)" >&2; exit 1; }
"$PY" -c "import mmwinwin, mmcv, mmseg, mmdet, torch; print('[install] ok: mmwinwin', mmwinwin.__version__, '| torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmseg', mmseg.__version__, '| mmdet', mmdet.__version__)"
