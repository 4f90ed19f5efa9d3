"""CrisisMMD v2.0 index: task TSVs, labels and tweet cleaning."""

from __future__ import annotations

import csv
import functools
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedcmi.data.prepare.cache import Preparer
from fedcmi.errors import InputError
from fedcmi.registry import PREPARERS

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
    event: str = ""  # the crisis, the TSV's event_name


def task_file(root: str | Path, task: str, split: str) -> Path:
    if task not in TASKS or split not in SPLITS:
        raise InputError(f"task {task!r} / split {split!r}: expected one of {TASKS} / {SPLITS}")
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
            raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
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
                    row.get("event_name", ""),
                )
            )
    return pairs


# ---------------------------------------------------------------------------------
# Preparation: TSVs + images -> cache
# ---------------------------------------------------------------------------------

SPLIT_NAMES = {"train": "train", "dev": "val", "test": "test"}


@dataclass
class PrepareParams:
    """``fedcmi data prepare crisismmd`` knobs (``--set key=value``)."""

    task: str = "informative"  # informative | humanitarian | damage
    label_column: str = "label"  # label | label_text | label_image
    consistent_only: bool = False  # keep pairs whose text and image labels agree
    humanitarian_classes: int = 8  # 8, or 6 (injured/missing -> affected_individuals)
    image_size: int = 228  # padded to square, resized once; crop 224 at training time
    max_length: int = 40
    tokenizer: str = ""  # a local BERT tokenizer folder, or a vocab.txt file (required)


def array_specs(p: PrepareParams) -> dict:
    from fedcmi.data.prepare.cache import ArraySpec

    return {
        "image": ArraySpec((p.image_size, p.image_size, 3), "uint8"),
        "text": ArraySpec((p.max_length,), "int32"),
    }


def derived_params(p: PrepareParams) -> dict:
    """Recorded in the manifest: the tokenizer's vocabulary size, for the text encoder."""
    return {"vocab_size": len(load_tokenizer(p.tokenizer))} if p.tokenizer else {}


def index_clips(src: str | Path, p: PrepareParams) -> tuple[list, list[dict[str, str]], list[str]]:
    from fedcmi.data.prepare.cache import ClipJob

    if not p.tokenizer:
        raise InputError(
            "crisismmd needs --set tokenizer=PATH (a local BERT tokenizer or vocab.txt)"
        )
    if p.humanitarian_classes not in (6, 8):
        raise InputError(f"humanitarian_classes = {p.humanitarian_classes}: expected 6 or 8")
    merge = p.task == "humanitarian" and p.humanitarian_classes == 6
    src = Path(src)
    pairs = {
        split: read_pairs(task_file(src, p.task, split), p.label_column, p.consistent_only, merge)
        for split in SPLIT_NAMES
    }
    classes = sorted({pair.label for rows in pairs.values() for pair in rows})
    jobs, skipped = [], []
    for split, rows in pairs.items():
        for pair in rows:
            image = src / pair.image
            if not image.is_file():
                skipped.append({"path": str(image), "reason": f"{image}: missing image file"})
                continue
            source = {
                "path": str(image),
                "text": pair.text,
                "size": p.image_size,
                "max_length": p.max_length,
                "tokenizer": p.tokenizer,
            }
            jobs.append(
                ClipJob(
                    pair.image_id,
                    classes.index(pair.label),
                    SPLIT_NAMES[split],
                    source,
                    {"event": pair.event},
                )
            )
    return jobs, skipped, classes


@functools.lru_cache(maxsize=2)
def load_tokenizer(path: str):
    from transformers import BertTokenizerFast  # type: ignore[attr-defined]

    target = Path(path)
    if target.is_file():  # a vocab.txt; transformers 5 calls the argument "vocab"
        params = inspect.signature(BertTokenizerFast.__init__).parameters
        key = "vocab_file" if "vocab_file" in params else "vocab"
        return BertTokenizerFast(**{key: str(target)}, do_lower_case=True)
    if target.is_dir():
        return BertTokenizerFast.from_pretrained(str(target), local_files_only=True)
    raise FileNotFoundError(f"tokenizer {path}: no such file or folder")


def square_image(path: str | Path, size: int) -> np.ndarray:
    """Pad to a square (black, centred), resize to ``size``; uint8 (size, size, 3)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{path}: cannot read image ({exc})") from None
    side = max(rgb.size)
    canvas = Image.new("RGB", (side, side))
    canvas.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
    return np.asarray(canvas.resize((size, size), Image.Resampling.BILINEAR))


def prepare_clip(job) -> dict:
    s = job.source
    tokenizer = load_tokenizer(s["tokenizer"])
    ids = tokenizer(s["text"], max_length=s["max_length"], padding="max_length", truncation=True)[
        "input_ids"
    ]
    return {"image": square_image(s["path"], s["size"]), "text": np.asarray(ids, dtype=np.int32)}


PREPARERS.register("crisismmd")(
    Preparer(PrepareParams, index_clips, array_specs, prepare_clip, derived_params)
)
