"""Decoding with PyAV: frames at 1 fps and the audio track of a video file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedcmi.errors import InputError


def _open(path: Path):
    import av

    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: cannot decode ({exc})") from None


def frames_per_second(
    path: str | Path, size: int, start: float = 0.0, end: float | None = None, minimum: int = 1
) -> np.ndarray:
    """The first frame of each second in [start, end), resized to ``size`` x ``size``.

    Returns uint8 (n, size, size, 3) in time order. When the window holds fewer than
    ``minimum`` such frames (short clips), ``minimum`` frames evenly spread over the
    window are taken instead (a clip of one still frame repeats it).
    """
    import av

    path = Path(path)
    container = _open(path)
    try:
        decoded = [
            frame
            for frame in container.decode(container.streams.video[0])
            if start <= float(frame.time or 0.0) and (end is None or float(frame.time or 0.0) < end)
        ]
        if not decoded:
            raise InputError(f"{path}: no video frames in [{start}, {end})")
        firsts: dict[int, int] = {}
        for i, frame in enumerate(decoded):
            firsts.setdefault(int(float(frame.time or 0.0) - start), i)
        chosen = [firsts[s] for s in sorted(firsts)]
        if len(chosen) < minimum:
            chosen = np.linspace(0, len(decoded) - 1, minimum).round().astype(int).tolist()
        return np.stack(
            [decoded[i].to_ndarray(width=size, height=size, format="rgb24") for i in chosen]
        )
    except (av.error.FFmpegError, IndexError) as exc:
        raise InputError(f"{path}: cannot decode video ({exc})") from None
    finally:
        container.close()


def audio_track(path: str | Path, sample_rate: int = 16_000) -> np.ndarray:
    """The first audio stream, mono float32 at ``sample_rate``."""
    import av

    path = Path(path)
    container = _open(path)
    try:
        if not container.streams.audio:
            raise InputError(f"{path}: no audio stream")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        for frame in container.decode(container.streams.audio[0]):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: cannot decode audio ({exc})") from None
    finally:
        container.close()
    if not chunks:
        raise InputError(f"{path}: empty audio stream")
    return np.concatenate(chunks).astype(np.float32)


def frames_from_folder(folder: str | Path, size: int, count: int) -> np.ndarray:
    """Frames already extracted as JPEGs (``<idx:05d>.jpg``), in sorted order, resized."""
    from PIL import Image, UnidentifiedImageError

    files = sorted(Path(folder).glob("*.jpg"))
    if not files:
        raise InputError(f"{folder}: no .jpg frames")
    picks = (
        files
        if len(files) >= count
        else [files[i] for i in np.linspace(0, len(files) - 1, count).round().astype(int)]
    )
    frames = []
    for path in picks[:count]:
        try:
            with Image.open(path) as image:
                frames.append(
                    np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
                )
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError(f"{path}: cannot read image ({exc})") from None
    return np.stack(frames)
