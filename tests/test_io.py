"""sabrkit.io: atomic writes of files and folders, with concurrent writers of one target."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from sabrkit.io import atomic_directory, atomic_write, atomic_write_bytes, atomic_write_text

_PAYLOAD_BYTES = 256 * 1024


def _payload(writer: int, round_: int) -> bytes:
    """A large, self-describing payload: every byte names its writer and round."""
    return bytes([writer]) + bytes([round_ % 256]) * (_PAYLOAD_BYTES - 1)


def _write_rounds(path: str, writer: int, rounds: int) -> None:
    for round_ in range(rounds):
        with atomic_write(path) as tmp:
            # written in chunks, so a shared temporary name would interleave the two writers
            with tmp.open("wb") as handle:
                data = _payload(writer, round_)
                for start in range(0, len(data), 4096):
                    handle.write(data[start : start + 4096])


def _check_complete(target: Path) -> None:
    data = target.read_bytes()
    assert len(data) == _PAYLOAD_BYTES
    writer, round_ = data[0], data[1]
    assert data == _payload(writer, round_), "the target holds a mix of two writers' bytes"


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_two_concurrent_writers_never_leave_a_mixed_or_partial_file(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "table.bin"
    rounds = 40
    if kind == "threads":  # same process id: only the random token keeps the names apart
        workers = [threading.Thread(target=_write_rounds, args=(str(target), w, rounds)) for w in (1, 2)]
    else:
        context = multiprocessing.get_context("spawn")
        workers = [context.Process(target=_write_rounds, args=(str(target), w, rounds)) for w in (1, 2)]
    for worker in workers:
        worker.start()
    seen = 0
    while any(w.is_alive() for w in workers):
        if target.exists():  # a reader during the writes sees a complete file or none
            _check_complete(target)
            seen += 1
    for worker in workers:
        worker.join()
        if kind == "processes":
            assert worker.exitcode == 0
    _check_complete(target)
    assert target.read_bytes()[1] == (rounds - 1) % 256
    assert [p.name for p in tmp_path.iterdir()] == ["table.bin"], "a temporary file was left behind"


def test_failed_write_keeps_the_previous_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "report.json", "old\n")
    with pytest.raises(RuntimeError, match="disk full"), atomic_write(target) as tmp:
        tmp.write_text("half a fi", encoding="utf-8")
        raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_suffix_is_kept_on_the_temporary_name_and_folders_are_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "ct.nii.gz"
    with atomic_write(target, suffix=".nii.gz") as tmp:
        assert tmp.parent == target.parent
        assert tmp.name.endswith(".nii.gz") and tmp.name.startswith(".ct.")
        assert not tmp.exists()
        tmp.write_bytes(b"x")
    assert atomic_write_bytes(target, b"y") == target
    assert target.read_bytes() == b"y"


def test_atomic_directory_swaps_the_whole_folder_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "cohort"
    with atomic_directory(target) as staging:
        (staging / "old.csv").write_text("a\n")
    with pytest.raises(ValueError, match="bad row"), atomic_directory(target) as staging:
        (staging / "new.csv").write_text("b\n")
        raise ValueError("bad row")
    assert sorted(p.name for p in target.iterdir()) == ["old.csv"]
    with atomic_directory(target) as staging:
        (staging / "new.csv").write_text("b\n")
    assert sorted(p.name for p in target.iterdir()) == ["new.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["cohort"], "a staging or old folder was left behind"
