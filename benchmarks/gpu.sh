#!/usr/bin/env bash
# The GPU part of the speed benchmark: a CREMA-D-shaped FedCMI round (5 clients x 335
# samples x 10 local epochs, two ResNet-18s) three ways, plus av-digits; JSON to $1.
# Budget: under 6 minutes on one H100/H200 (compilation included).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench-gpu.json}"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
timeout 330 python -m fedcmi.cli bench speed --workload crema-shaped,av-digits --scale 1 \
    --epochs 10 --compile --json "$out"
