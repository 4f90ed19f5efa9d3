"""CREMA-D index: clip ids, labels and splits (shared/spec/DATASETS.md).

Clip ids are ``Actor_Sentence_Emotion_Level`` (e.g. ``1001_DFA_ANG_XX``). The label is
the filename's emotion in the class order of OGM-GE/PMR (NEU HAP SAD FEA DIS ANG), or
the 4-class ``MultiModalVote`` of ``processedResults/summaryTable.csv`` (A S H N).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
        raise ValueError(f"{name!r} is not a CREMA-D clip id (Actor_Sentence_Emotion_Level)")
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
            raise ValueError(f"{path}:{lineno}: {exc}") from None
        if len(fields) > 1 and fields[1] and fields[1] != clip.emotion:
            raise ValueError(
                f"{path}:{lineno}: label {fields[1]!r} disagrees with the id's emotion "
                f"{clip.emotion!r}"
            )
        rows.append((clip.name, EMOTIONS.index(clip.emotion)))
    if not rows:
        raise ValueError(f"{path}: no clips listed")
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
