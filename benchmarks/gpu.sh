#!/usr/bin/env bash
# The GPU checks in one call, one JSON at $1 (default bench-gpu.json):
#   1. the CUDA test suite (tests/engine/test_gpu.py, marker `gpu`), at most SUITE_SECONDS
#      (180 s): concurrent clients on streams vs sequential, bf16 / channels_last /
#      compile vs fp32 with ResNets, float16-resident data vs float32, one round on
#      prepared CREMA-D and AVE fixtures with every speed option;
#   2. the speed bench, in what is left of TOTAL_SECONDS (540 s): a CREMA-D-shaped FedCMI
#      round (5 clients x 335 samples x 10 local epochs, two ResNet-18s) as reference /
#      default / tuned, the same for av-digits when its cache is already built, then
#      tuned+compile for each (compiled rows last: a cut keeps the rows before them).
#
# Needs torch (CUDA), numpy, scipy, tqdm and rich; the suite also needs pytest and PyAV
# (it is reported as skipped without them). fedcmi runs from src/ when it is not
# installed, so a machine with a CUDA PyTorch image needs no pip install.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench-gpu.json}"
python="${PYTHON:-python3}"
suite_budget="${SUITE_SECONDS:-180}"
total_budget="${TOTAL_SECONDS:-540}"
export PYTHONPATH="src:.${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
work="$(mktemp -d)"
started=$(date +%s)

"$python" - <<'PY' || exit 1
import torch
assert torch.cuda.is_available(), "benchmarks/gpu.sh: no CUDA device"
print("device:", torch.cuda.get_device_name(), "| torch", torch.__version__)
PY

# 1. The CUDA suite.
if "$python" -c "import pytest, av" 2>/dev/null; then
    timeout "$suite_budget" "$python" -m pytest -q -m gpu -p no:cacheprovider \
        --junitxml="$work/suite.xml" tests/engine/test_gpu.py
    echo "suite exit status: $?"
else
    echo "suite skipped: pytest or PyAV is not installed"
fi

# 2. The speed bench in the time left.
left=$(( total_budget - ($(date +%s) - started) ))
workloads="crema-shaped"
cache="${FEDCMI_CACHE:-$HOME/.cache/fedcmi}"
if compgen -G "$cache/av-digits-*.pt" >/dev/null; then
    workloads="crema-shaped,av-digits"
else
    echo "av-digits skipped: no built cache in $cache (build it with \`fedcmi data build\`)"
fi
timeout "$left" "$python" -m fedcmi.cli bench speed --workload "$workloads" --scale 1 \
    --epochs 10 --compile --json "$work/bench.json"
bench_status=$?
[ "$bench_status" = 124 ] && echo "bench stopped after $left s; the rows measured so far are kept"

# One JSON: the suite's cases and the bench's rows.
"$python" - "$work" "$out" "$bench_status" <<'PY'
import json, sys, xml.etree.ElementTree as ET
from pathlib import Path
work, out, status = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
suite = {"ran": False}
if (work / "suite.xml").is_file():
    cases = []
    for case in ET.parse(work / "suite.xml").iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = tag if tag != "failure" else "failed"
                cases.append({"test": case.get("name"), "outcome": outcome,
                              "seconds": float(case.get("time", 0)),
                              "message": (node.get("message") or "")[:500]})
                break
        else:
            cases.append({"test": case.get("name"), "outcome": outcome,
                          "seconds": float(case.get("time", 0))})
    suite = {"ran": True, "cases": cases,
             "passed": sum(c["outcome"] == "passed" for c in cases),
             "failed": sum(c["outcome"] in ("failed", "error") for c in cases)}
bench = json.loads((work / "bench.json").read_text()) if (work / "bench.json").is_file() else []
out.write_text(json.dumps({"suite": suite, "bench": bench, "bench_exit_status": status}, indent=2))
print(f"wrote {out}: suite {suite.get('passed', 0)} passed, {suite.get('failed', 0)} failed; "
      f"{len(bench)} bench rows")
PY
