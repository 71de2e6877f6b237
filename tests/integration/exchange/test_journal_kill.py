"""SIGKILL the journal's writer at random moments; no acknowledged command may be lost.

The child (``journal_workload.py``) recovers the journal, rebuilds the real matching engine
from snapshot + replay, then appends seeded commands, applies them and checkpoints every
few thousand; the flusher's listener writes ``ACK <seq>`` to stdout once a group is
durable. The parent SIGKILLs it a seeded 5-300 ms after ``READY``, then recovers the journal
itself and checks that every acknowledged command is there exactly once and in order, and
that the rebuilt engine equals a reference engine fed the same commands. Some cycles also
append a torn frame after the kill (a power loss mid-write), which recovery must cut off.
The next child continues the same journal; a last child runs to completion. Each test
prints its seed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dpgnode.adapters.exchange.segments import encode_frame, list_segments
from dpgnode.domain.exchange import MatchingEngine
from tests.integration.exchange.journal_workload import apply, command, open_journal, rebuild

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.integration


def run_child(directory: Path, seed: int, kill_after_ms: float | None,
              target: int) -> tuple[int, int, int]:
    """One child run; returns ``(recovered_at_start, max_acked, returncode)``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.exchange.journal_workload",
         str(directory), str(seed), str(target)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.append(raw.decode().strip())
            if lines[-1].startswith("READY"):
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(60), "child never got ready"
        if kill_after_ms is not None and proc.poll() is None:
            threading.Event().wait(kill_after_ms / 1000)
            proc.send_signal(signal.SIGKILL)
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(10)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert not any(line.startswith("ERROR") for line in lines), (lines[-5:], stderr)
    start = next((int(x.split()[1]) for x in lines if x.startswith("READY")), None)
    assert start is not None, stderr
    acks = [int(x.split()[1]) for x in lines if x.startswith("ACK")]
    assert acks == sorted(acks)
    return start, max(acks, default=start), proc.returncode


def check_recovery(directory: Path, seed: int, acked: int, ref: MatchingEngine,
                   ref_seq: int) -> tuple[int, MatchingEngine]:
    """Recover like a restarting matcher and compare with the reference; returns its state."""
    journal = open_journal(directory)
    try:
        recovered = journal.recover()
    finally:
        journal.close()
    last = recovered.last_seq
    assert last >= acked, f"acknowledged up to {acked} but only {last} recovered"
    expected = [command(seed, s) for s in range(recovered.snapshot_seq + 1, last + 1)]
    assert list(recovered.commands) == expected  # each exactly once, in order
    assert last >= ref_seq
    for seq in range(ref_seq + 1, last + 1):
        apply(ref, command(seed, seq))
    assert rebuild(recovered).snapshot() == ref.snapshot()
    return last, ref


def tear_tail(directory: Path, rng: random.Random) -> int:
    """Append part of a frame, as a power loss in the middle of a write would leave."""
    path = list_segments(directory)[-1][1]
    frame = encode_frame(1 << 40, 3, os.urandom(rng.randint(10, 300)))
    torn = frame[: rng.randint(1, len(frame) - 1)]
    with path.open("ab") as handle:
        handle.write(torn)
    return len(torn)


def kill_cycles(tmp_path: Path, seed: int, kills: int) -> None:
    rng = random.Random(seed)
    print(f"seed={seed} kills={kills}")
    ref, ref_seq, acked_total = MatchingEngine(), 0, 0
    for cycle in range(kills):
        delay = rng.uniform(5, 300)
        start, acked, rc = run_child(tmp_path, seed, delay, target=10**9)
        assert rc == -signal.SIGKILL, f"cycle {cycle}: child exited with {rc}"
        assert start >= ref_seq
        acked_total = max(acked_total, acked)
        if rng.random() < 0.3:
            tear_tail(tmp_path, rng)
        ref_seq, ref = check_recovery(tmp_path, seed, acked_total, ref, ref_seq)
    final_target = ref_seq + 2_000
    start, acked, rc = run_child(tmp_path, seed, None, target=final_target)
    assert rc == 0
    assert start == ref_seq
    assert acked == final_target
    last, _ = check_recovery(tmp_path, seed, acked, ref, ref_seq)
    assert last == final_target


def test_sigkill_never_loses_an_acknowledged_command(tmp_path: Path) -> None:
    kill_cycles(tmp_path, seed=20240601, kills=3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_sigkill_never_loses_an_acknowledged_command_many_kills(
    tmp_path: Path, seed: int
) -> None:
    kill_cycles(tmp_path, seed=seed, kills=50)
