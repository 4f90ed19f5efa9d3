"""Generators of tiny raw media files (no download): videos with audio, WAVs, JPEGs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.io import wavfile


def write_video(
    path: Path,
    seconds: float,
    fps: int = 10,
    size: int = 32,
    audio_hz: float | None = 440.0,
    seed: int = 0,
) -> Path:
    """A small video (FLV1 in .flv, MPEG-4 part 2 in .mp4) with a tone as its audio track."""
    import av

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "flv" if path.suffix == ".flv" else "mpeg4"
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        audio = None
        if audio_hz is not None:
            audio = container.add_stream("mp3" if codec == "flv" else "aac", rate=22_050)
            audio.layout = "mono"
        for i in range(int(seconds * fps)):
            shade = (i * 7 + rng.integers(0, 40)) % 255
            image = np.full((size, size, 3), shade, dtype=np.uint8)
            image[: size // 2, : size // 2] = 255 - shade
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            t = np.arange(int(seconds * 22_050)) / 22_050
            samples = (0.3 * np.sin(2 * np.pi * audio_hz * t)).astype(np.float32)
            for start in range(0, len(samples), 1152):
                chunk = samples[start : start + 1152]
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                frame.sample_rate = 22_050
                frame.pts = start
                frame.time_base = Fraction(1, 22_050)
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
    return path


# Columns of CrisisMMD's task TSVs (crisismmd_datasplit_all/task_*_text_img_*.tsv).
TSV_COLUMNS = (
    "event_name",
    "tweet_id",
    "image_id",
    "tweet_text",
    "image",
    "label",
    "label_text",
    "label_image",
    "label_text_image",
)


def write_wav(path: Path, seconds: float, hz: float = 300.0, rate: int = 16_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    wavfile.write(path, rate, (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16))
    return path


def write_jpeg(path: Path, size: tuple[int, int], shade: int) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((size[1], size[0], 3), shade, dtype=np.uint8)
    Image.fromarray(image).save(path, format="JPEG")
    return path
