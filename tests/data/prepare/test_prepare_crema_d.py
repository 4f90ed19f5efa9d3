"""CREMA-D ids, split files (BOM, CRLF, bad lines), vote labels and split kinds."""

import numpy as np
import pytest

from fedcmi.data.prepare.crema_d import (
    EMOTIONS,
    parse_clip_id,
    read_split_file,
    read_vote_labels,
    speaker_disjoint_split,
    stratified_clip_split,
)


def test_parse_clip_id():
    clip = parse_clip_id("1001_DFA_ANG_XX.wav")
    assert (clip.actor, clip.sentence, clip.emotion, clip.level) == ("1001", "DFA", "ANG", "XX")
    with pytest.raises(ValueError, match="not a CREMA-D clip id"):
        parse_clip_id("1001_DFA_XXX_XX")


def test_split_file_with_bom_and_crlf(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes("\ufeff1001_DFA_ANG_XX,ANG\r\n1002_IEO_NEU_LO,NEU\r\n\r\n".encode("utf-8"))
    assert read_split_file(path) == [
        ("1001_DFA_ANG_XX", EMOTIONS.index("ANG")),
        ("1002_IEO_NEU_LO", 0),
    ]


def test_split_file_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("1001_DFA_ANG_XX,ANG\n1001_DFA_ANG_XX,SAD\n")
    with pytest.raises(ValueError, match=r"bad\.csv:2"):
        read_split_file(path)


def test_vote_labels(tmp_path):
    table = tmp_path / "summaryTable.csv"
    table.write_text(
        ",FileName,VoiceVote,VoiceLevel,FaceVote,FaceLevel,MultiModalVote,MultiModalLevel\n"
        "0,1001_DFA_ANG_XX,A,60,A,50,A,70\n1,1001_DFA_DIS_XX,D,50,N,60,D:N,50\n"
        "2,1001_DFA_HAP_XX,H,80,H,90,H,85\n"
    )
    assert read_vote_labels(table) == {"1001_DFA_ANG_XX": 0, "1001_DFA_HAP_XX": 2}


def test_stratified_and_speaker_disjoint_splits():
    labels = np.repeat(np.arange(6), 20)
    train, test = stratified_clip_split(labels, 0.1, seed=0)
    assert np.bincount(labels[test]).tolist() == [2] * 6
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 120
    actors = [str(1001 + i % 10) for i in range(120)]
    train, test = speaker_disjoint_split(actors, 0.2, seed=0)
    assert not {actors[i] for i in train} & {actors[i] for i in test}
    assert len({actors[i] for i in test}) == 2
