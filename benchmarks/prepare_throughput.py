"""Prepare throughput on generated CREMA-D-shaped raw clips (no download).

Writes N clips like CREMA-D's (2.5 s, 480x360 FLV at 30 fps, 16 kHz WAV), prepares them
with 1 and with W workers, and prints clips per second per worker and cache bytes per
clip. Usage: python benchmarks/prepare_throughput.py [--clips 24] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fedcmi.data.prepare import prepare  # noqa: E402
from fedcmi.data.prepare.crema_d import EMOTIONS  # noqa: E402
from tests.fixtures.media import write_video, write_wav  # noqa: E402


def make_raw(root: Path, clips: int) -> None:
    for i in range(clips):
        key = f"{1001 + i // 6}_DFA_{EMOTIONS[i % 6]}_XX"
        write_wav(root / "AudioWAV" / f"{key}.wav", 2.5, hz=200 + 20 * i)
        write_video(
            root / "VideoFlash" / f"{key}.flv", 2.5, fps=30, size=360, audio_hz=None, seed=i
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        make_raw(raw, args.clips)
        results = {}
        for workers in sorted({1, args.workers}):
            started = time.perf_counter()
            manifest = prepare("crema-d", raw, Path(tmp) / f"cache{workers}", {}, workers=workers)
            wall = time.perf_counter() - started
            results[workers] = {
                "clips": manifest["ok"],
                "wall_seconds": round(wall, 2),
                "clips_per_second": round(manifest["ok"] / wall, 2),
                "clips_per_second_per_worker": round(manifest["ok"] / wall / workers, 2),
                "cache_bytes_per_clip": manifest["bytes_per_clip"],
            }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
