"""CREMA-D index: clip ids, labels and splits.

Clip ids are ``Actor_Sentence_Emotion_Level`` (e.g. ``1001_DFA_ANG_XX``). The label is
the filename's emotion in the class order of OGM-GE/PMR (NEU HAP SAD FEA DIS ANG), or
the 4-class ``MultiModalVote`` of ``processedResults/summaryTable.csv`` (A S H N).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedcmi.data.prepare.cache import Preparer
from fedcmi.errors import InputError
from fedcmi.registry import PREPARERS

EMOTIONS = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
VOTE_CLASSES = ("A", "S", "H", "N")


@dataclass(frozen=True)
class ClipId:
    actor: str
    sentence: str
    emotion: str
    level: str

    @property
    def name(self) -> str:
        return f"{self.actor}_{self.sentence}_{self.emotion}_{self.level}"


def parse_clip_id(name: str) -> ClipId:
    parts = Path(name).stem.split("_")
    if len(parts) != 4 or parts[2] not in EMOTIONS:
        raise InputError(f"{name!r} is not a CREMA-D clip id (Actor_Sentence_Emotion_Level)")
    return ClipId(*parts)


def read_split_file(path: str | Path) -> list[tuple[str, int]]:
    """A headerless ``<ID>,<EMO>`` file (CRLF or LF, optional UTF-8 BOM) -> (id, label).

    The label comes from the id's emotion; a second column that disagrees is an error
    naming the line, so a mislabelled split file never trains silently.
    """
    path = Path(path)
    rows = []
    text = path.read_text(encoding="utf-8-sig")
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        try:
            clip = parse_clip_id(fields[0])
        except ValueError as exc:
            raise InputError(f"{path}:{lineno}: {exc}") from None
        if len(fields) > 1 and fields[1] and fields[1] != clip.emotion:
            raise InputError(
                f"{path}:{lineno}: label {fields[1]!r} disagrees with the id's emotion "
                f"{clip.emotion!r}"
            )
        rows.append((clip.name, EMOTIONS.index(clip.emotion)))
    if not rows:
        raise InputError(f"{path}: no clips listed")
    return rows


def read_vote_labels(summary_table: str | Path) -> dict[str, int]:
    """``FileName -> MultiModalVote`` class index (A S H N); other votes are left out."""
    labels = {}
    with open(summary_table, newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            vote = (row.get("MultiModalVote") or "").strip()
            if vote in VOTE_CLASSES:
                labels[row["FileName"].strip()] = VOTE_CLASSES.index(vote)
    return labels


def stratified_clip_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Clip-random split, stratified per class (as the OGM-GE/PMR split)."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        test.append(idx[: int(round(test_fraction * len(idx)))])
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(labels)), test_idx), test_idx


def speaker_disjoint_split(
    actors: list[str], test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Whole actors go to test, so no speaker is heard in both splits."""
    unique = sorted(set(actors))
    rng = np.random.default_rng(seed)
    n_test = max(1, int(round(test_fraction * len(unique))))
    test_actors = set(rng.permutation(unique)[:n_test].tolist())
    is_test = np.array([a in test_actors for a in actors])
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


# ---------------------------------------------------------------------------------
# Preparation: raw layout -> cache
# ---------------------------------------------------------------------------------


@dataclass
class PrepareParams:
    """``fedcmi data prepare crema-d`` knobs (``--set key=value``)."""

    seconds: float = 3.0  # audio tiled/cut to this length: (257, 299) at 3 s
    frame_size: int = 224  # frames resized once to frame_size x frame_size
    frames: int = 3  # frames stored per clip (first of each second, topped up)
    labels: str = "emotion"  # "emotion" (6 classes) or "vote" (MultiModalVote, 4 classes)
    split: str = "stratified"  # "stratified", "speaker" or "file"
    train_file: str = ""  # with split = "file": headerless <ID>,<EMO> lists
    test_file: str = ""
    test_fraction: float = 0.1
    seed: int = 0


def _sources(src: Path, key: str, p: PrepareParams) -> tuple[dict[str, Any] | None, str]:
    wav = src / "AudioWAV" / f"{key}.wav"
    frame_dir = src / "Image-01-FPS" / key  # the OGM-GE/PMR preprocessed frame layout
    video = src / "VideoFlash" / f"{key}.flv"
    if not wav.is_file():
        return None, f"{wav}: missing audio file"
    if not frame_dir.is_dir() and not video.is_file():
        return None, f"{video}: missing video file (and no {frame_dir})"
    source = {
        "path": str(video),
        "wav": str(wav),
        "seconds": p.seconds,
        "size": p.frame_size,
        "frames": p.frames,
    }
    if frame_dir.is_dir():
        source["frame_dir"] = str(frame_dir)
    return source, ""


def array_specs(p: PrepareParams) -> dict:
    from fedcmi.data.prepare.spectrogram import av_array_specs

    return av_array_specs(p.seconds, p.frames, p.frame_size)


def index_clips(src: str | Path, p: PrepareParams) -> tuple[list, list[dict[str, str]], list[str]]:
    """Jobs (one per usable clip), skip records and class names for a raw CREMA-D folder."""
    from fedcmi.data.prepare.cache import ClipJob

    src = Path(src)
    if p.split == "file":
        if not p.train_file or not p.test_file:
            raise InputError("split = 'file' needs train_file and test_file")
        listed = [(k, "train") for k, _ in read_split_file(p.train_file)]
        listed += [(k, "test") for k, _ in read_split_file(p.test_file)]
    else:
        names = {f.stem for f in (src / "AudioWAV").glob("*.wav")} | {
            f.stem for f in (src / "VideoFlash").glob("*.flv")
        }
        if not names:
            raise InputError(f"{src}: no AudioWAV/*.wav or VideoFlash/*.flv found")
        listed = [(k, "") for k in sorted(names)]
    votes = (
        read_vote_labels(src / "processedResults" / "summaryTable.csv")
        if p.labels == "vote"
        else {}
    )
    jobs, skipped = [], []
    for key, split in listed:
        clip = parse_clip_id(key)
        label = votes.get(key) if p.labels == "vote" else EMOTIONS.index(clip.emotion)
        source, reason = _sources(src, key, p)
        if label is None:
            source, reason = None, f"{key}: no 4-class MultiModalVote in summaryTable.csv"
        if source is None or label is None:
            skipped.append({"path": reason.split(":")[0], "reason": reason})
            continue
        jobs.append(ClipJob(key, label, split, source))
    _assign_splits(jobs, p)
    classes = list(VOTE_CLASSES) if p.labels == "vote" else list(EMOTIONS)
    return jobs, skipped, classes


def _assign_splits(jobs: list, p: PrepareParams) -> None:
    if p.split == "file":
        return
    if p.split == "stratified":
        _, test = stratified_clip_split(np.array([j.label for j in jobs]), p.test_fraction, p.seed)
    elif p.split == "speaker":
        _, test = speaker_disjoint_split(
            [parse_clip_id(j.key).actor for j in jobs], p.test_fraction, p.seed
        )
    else:
        raise InputError(f"split = {p.split!r}: expected 'stratified', 'speaker' or 'file'")
    test_set = set(test.tolist())
    for i, job in enumerate(jobs):
        job.split = "test" if i in test_set else "train"


def prepare_clip(job) -> dict[str, np.ndarray]:
    """Worker: one clip -> {"audio": (257, T) spectrogram, "frames": (F, S, S, 3) uint8}."""
    from fedcmi.data.prepare.media import frames_from_folder, frames_per_second
    from fedcmi.data.prepare.spectrogram import load_wav, pmr_spectrogram

    s = job.source
    audio = pmr_spectrogram(load_wav(s["wav"]), s["seconds"])
    if "frame_dir" in s:
        frames = frames_from_folder(s["frame_dir"], s["size"], s["frames"])
    else:
        frames = frames_per_second(s["path"], s["size"], minimum=s["frames"])
    return {"audio": audio, "frames": frames[: s["frames"]]}


PREPARERS.register("crema-d")(Preparer(PrepareParams, index_clips, array_specs, prepare_clip))
