"""AVE index: ``Category&VideoID&Quality&StartTime&EndTime`` rows (shared/spec/DATASETS.md).

Fields are split on ``&`` only, since class names contain commas and spaces. A VideoID
seen again (a video with several events) keeps its first row; an event of zero length
is skipped; both are returned as skip records for the report next to the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
            raise ValueError(f"{path}:{lineno}: expected 5 '&'-separated fields, got {len(fields)}")
        category, video_id, quality, start, end = fields
        try:
            event = Event(category, video_id, quality, float(start), float(end))
        except ValueError:
            raise ValueError(
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
