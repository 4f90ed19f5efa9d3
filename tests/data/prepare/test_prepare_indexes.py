"""AVE annotation parsing (duplicates, zero-length events) and CrisisMMD TSVs."""

import pytest

from fedcmi.data.prepare.ave import HEADER, class_names, read_events
from fedcmi.data.prepare.crisismmd import clean_tweet, read_pairs, task_file


def test_ave_events_skip_duplicates_and_zero_length(tmp_path):
    path = tmp_path / "Annotations.txt"
    path.write_text(
        HEADER + "\n"
        "Church bell&RUhOCu3LNXM&good&0&10\n"
        "Race car, auto racing&abc123&good&2&7\n"
        "Church bell&RUhOCu3LNXM&good&3&5\n"
        "Dog&zzz&good&4&4\n"
    )
    events, skips = read_events(path)
    assert [e.video_id for e in events] == ["RUhOCu3LNXM", "abc123"]
    assert events[1].category == "Race car, auto racing" and events[1].start == 2.0
    assert [s.reason.split(" ")[0] for s in skips] == ["duplicated", "zero-length"]
    assert "Annotations.txt:4" in skips[0].path
    assert class_names(events) == ["Church bell", "Race car, auto racing"]


def test_ave_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "testSet.txt"
    path.write_text("Dog&x&good&1\n")
    with pytest.raises(ValueError, match=r"testSet\.txt:1"):
        read_events(path)


def test_clean_tweet():
    text = "RT @user: Flooding in #Houston now https://t.co/abc www.x.org #Harvey"
    assert clean_tweet(text) == "@user: Flooding in Houston now Harvey"


def test_crisismmd_pairs(media, tmp_path):
    columns = list(media.tsv_columns)
    rows = [
        [
            "harvey",
            "1",
            "1_0",
            "RT Help #now http://t.co/x",
            "data_image/harvey/1/1_0.jpg",
            "informative",
            "informative",
            "informative",
            "Positive",
        ],
        [
            "harvey",
            "2",
            "2_0",
            "no",
            "data_image/harvey/1/2_0.jpg",
            "not_informative",
            "informative",
            "not_informative",
            "Negative",
        ],
    ]
    path = task_file(tmp_path, "informative", "test")
    path.parent.mkdir(parents=True)
    path.write_text("\n".join("\t".join(r) for r in [columns, *rows]) + "\n")
    pairs = read_pairs(path)
    assert [(p.text, p.label) for p in pairs] == [
        ("Help now", "informative"),
        ("no", "not_informative"),
    ]
    assert [p.tweet_id for p in read_pairs(path, consistent_only=True)] == ["1"]
    assert read_pairs(path, label_column="label_image")[1].label == "not_informative"
    with pytest.raises(ValueError, match="missing column"):
        read_pairs(path, label_column="nope")
