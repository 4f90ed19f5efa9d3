"""CrisisMMD v2.0 index: task TSVs, labels and tweet cleaning (shared/spec/DATASETS.md)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

TASKS = ("informative", "humanitarian", "damage")
SPLITS = ("train", "dev", "test")
# The 6-class humanitarian merge used by several papers.
HUMANITARIAN_MERGE = {
    "injured_or_dead_people": "affected_individuals",
    "missing_or_found_people": "affected_individuals",
}
_URL = re.compile(r"https?://\S+|www\.\S+")
_RT = re.compile(r"^\s*RT\b:?\s*")


def clean_tweet(text: str) -> str:
    """Strip a leading "RT", URLs and '#' (the word of a hashtag stays)."""
    text = _RT.sub("", text)
    text = _URL.sub(" ", text).replace("#", "")
    return " ".join(text.split())


@dataclass(frozen=True)
class Pair:
    tweet_id: str
    image_id: str
    text: str
    image: str  # relative to the dataset root
    label: str


def task_file(root: str | Path, task: str, split: str) -> Path:
    if task not in TASKS or split not in SPLITS:
        raise ValueError(f"task {task!r} / split {split!r}: expected one of {TASKS} / {SPLITS}")
    return Path(root) / "crisismmd_datasplit_all" / f"task_{task}_text_img_{split}.tsv"


def read_pairs(
    path: str | Path,
    label_column: str = "label",
    consistent_only: bool = False,
    merge_humanitarian: bool = False,
) -> list[Pair]:
    """Rows of one task TSV; the test split's texts come from the test file itself."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"tweet_id", "image_id", "tweet_text", "image", label_column} - set(
            reader.fieldnames or []
        )
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        pairs = []
        for row in reader:
            if consistent_only and row.get("label_text") != row.get("label_image"):
                continue
            label = row[label_column]
            if merge_humanitarian:
                label = HUMANITARIAN_MERGE.get(label, label)
            pairs.append(
                Pair(
                    row["tweet_id"],
                    row["image_id"],
                    clean_tweet(row["tweet_text"]),
                    row["image"],
                    label,
                )
            )
    return pairs
