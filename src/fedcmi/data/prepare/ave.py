"""AVE index: ``Category&VideoID&Quality&StartTime&EndTime`` rows.

Fields are split on ``&`` only, since class names contain commas and spaces. A VideoID
seen again (a video with several events) keeps its first row; an event of zero length
is skipped; both are returned as skip records for the report next to the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fedcmi.data.prepare.cache import Preparer
from fedcmi.errors import InputError
from fedcmi.registry import PREPARERS

HEADER = "Category&VideoID&Quality&StartTime&EndTime"


@dataclass(frozen=True)
class Event:
    category: str
    video_id: str
    quality: str
    start: float
    end: float


@dataclass(frozen=True)
class Skip:
    path: str
    reason: str


def read_events(path: str | Path) -> tuple[list[Event], list[Skip]]:
    """Events of an AVE list file (``Annotations.txt`` with header, split files without)."""
    path = Path(path)
    events, skips, seen = [], [], set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        line = line.strip()
        if not line or line == HEADER:
            continue
        fields = line.split("&")
        if len(fields) != 5:
            raise InputError(f"{path}:{lineno}: expected 5 '&'-separated fields, got {len(fields)}")
        category, video_id, quality, start, end = fields
        try:
            event = Event(category, video_id, quality, float(start), float(end))
        except ValueError:
            raise InputError(
                f"{path}:{lineno}: start/end {start!r}/{end!r} are not numbers"
            ) from None
        where = f"{path.name}:{lineno} {video_id}"
        if video_id in seen:
            skips.append(Skip(where, "duplicated VideoID (first row kept)"))
        elif event.end <= event.start:
            skips.append(Skip(where, f"zero-length event [{event.start}, {event.end}]"))
        else:
            seen.add(video_id)
            events.append(event)
    return events, skips


def class_names(events: list[Event]) -> list[str]:
    return sorted({e.category for e in events})


# ---------------------------------------------------------------------------------
# Preparation: raw layout -> cache (event-cropped, "SE")
# ---------------------------------------------------------------------------------

SPLIT_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}


@dataclass
class PrepareParams:
    """``fedcmi data prepare ave`` knobs (``--set key=value``)."""

    seconds: float = 10.0  # event audio tiled to this length: (257, 1004) at 10 s
    frame_size: int = 224
    frames: int = 10  # frames at 1 fps inside the event window, topped up to this many


def array_specs(p: PrepareParams) -> dict:
    from fedcmi.data.prepare.spectrogram import av_array_specs

    return av_array_specs(p.seconds, p.frames, p.frame_size)


def index_clips(src: str | Path, p: PrepareParams) -> tuple[list, list[dict[str, str]], list[str]]:
    """Jobs from the dataset's own train/val/test lists; skips are reported."""
    from fedcmi.data.prepare.cache import ClipJob

    src = Path(src)
    annotations = src / "Annotations.txt"
    if not annotations.is_file():
        raise InputError(f"{annotations}: not found (is --src the AVE dataset folder?)")
    all_events, skipped_rows = read_events(annotations)
    classes = class_names(all_events)
    skipped = [{"path": s.path, "reason": s.reason} for s in skipped_rows]
    jobs, taken = [], set()
    for split, name in SPLIT_FILES.items():
        events, skips = read_events(src / name)
        skipped += [{"path": s.path, "reason": s.reason} for s in skips]
        for event in events:
            video = src / "AVE" / f"{event.video_id}.mp4"
            if event.video_id in taken:
                skipped.append(
                    {"path": f"{name} {event.video_id}", "reason": "already in an earlier split"}
                )
            elif event.category not in classes:
                skipped.append(
                    {
                        "path": f"{name} {event.video_id}",
                        "reason": f"class {event.category!r} not in Annotations.txt",
                    }
                )
            elif not video.is_file():
                skipped.append({"path": str(video), "reason": f"{video}: missing video file"})
            else:
                taken.add(event.video_id)
                source = {
                    "path": str(video),
                    "start": event.start,
                    "end": event.end,
                    "seconds": p.seconds,
                    "size": p.frame_size,
                    "frames": p.frames,
                }
                jobs.append(ClipJob(event.video_id, classes.index(event.category), split, source))
    return jobs, skipped, classes


def prepare_clip(job) -> dict:
    """Worker: event-cropped audio spectrogram and frames of one video."""
    from fedcmi.data.prepare.media import audio_track, frames_per_second
    from fedcmi.data.prepare.spectrogram import SAMPLE_RATE, pmr_spectrogram

    s = job.source
    audio = audio_track(s["path"], SAMPLE_RATE)
    event = audio[int(s["start"] * SAMPLE_RATE) : int(s["end"] * SAMPLE_RATE)]
    if len(event) == 0:
        raise InputError(f"{s['path']}: no audio inside the event [{s['start']}, {s['end']}]")
    frames = frames_per_second(s["path"], s["size"], s["start"], s["end"], minimum=s["frames"])
    return {"audio": pmr_spectrogram(event, s["seconds"]), "frames": frames[: s["frames"]]}


PREPARERS.register("ave")(Preparer(PrepareParams, index_clips, array_specs, prepare_clip))
