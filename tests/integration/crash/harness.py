"""The kill -9 harness (RELIABILITY.md R4, R5): run the workload child, SIGKILL it, check.

One *cycle* runs the workload of ``tests/integration/crash/workload.py`` in a child process
on a data directory, reads its ack pipe (the child's stdout) on a thread, and sends SIGKILL a
seeded, uniformly random 5-500 ms after the child reported ``READY`` (the node is built and
the workload starts). Children are forked by one ``workload --serve`` process per seed
(:class:`Zygote`), so a cycle does not pay Python's start-up; each child is still a process
of its own, with its own connections, killed by pid.
Some cycles run with ``PRAGMA wal_autocheckpoint=1`` so that kills land inside WAL
checkpoints too. After each kill, with no process touching the file, :func:`check_after_kill`
opens the database the way a restarting node does and checks:

- ``PRAGMA integrity_check`` = ok, ``PRAGMA foreign_key_check`` empty, no schema drift;
- ``verify_ledger``: Σ postings per asset = 0, balances = postings, hash chain, holds;
- every key the child acknowledged (``created`` or ``replayed``) is in the journal exactly
  once;
- every journal entry has exactly one ``ledger.entry_posted`` outbox event and every such
  event names a journal entry.

Each restart runs the same seed, so it resubmits every key of the previous runs, acked or
not: a key already in the journal must come back ``replayed`` (never ``created`` or
``refused``). :func:`run_seed` ends with a run that is not killed and resubmits every key
any earlier run may have sent, then checks everything again.
"""

from __future__ import annotations

import json
import os
import queue
import random
import shlex
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text

from dpgnode.adapters.storage import migrate
from dpgnode.node import build_node
from dpgnode.settings import load_settings

REPO = Path(__file__).resolve().parents[3]
KILL_MIN_MS, KILL_MAX_MS = 5.0, 500.0
READY_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 120.0


@dataclass
class Cycle:
    """One child run: what it acknowledged and how it ended."""

    seed: int
    number: int
    kill_after_ms: float | None
    wal_autocheckpoint: int
    lines: list[str] = field(default_factory=list)
    returncode: int | None = None
    stderr: str = ""
    ready: str = ""

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    def describe(self) -> str:
        delay = "none" if self.kill_after_ms is None else f"{self.kill_after_ms:.1f} ms"
        return (
            f"seed={self.seed} cycle={self.number} kill_after={delay} "
            f"wal_autocheckpoint={self.wal_autocheckpoint or 'default'} rc={self.returncode} "
            f"lines={len(self.lines)}"
        )

    def statuses(self) -> list[tuple[str, str, str]]:
        """``(key, kind, status)`` of every ack line."""
        out = []
        for line in self.lines:
            parts = line.split()
            if len(parts) == 3 and parts[2] in ("created", "replayed", "refused"):
                out.append((parts[0], parts[1], parts[2]))
        return out

    def errors(self) -> list[str]:
        return [line for line in self.lines if line.startswith("ERROR")]


class Zygote:
    """The workload's fork server (``workload --serve``): one per seed, one child per cycle.

    Children are forked from an interpreter that has already imported the node, so a cycle
    costs the workload, not Python's start-up. The parent kills the child itself (by its
    pid) with SIGKILL; the fork server only relays the ack pipe and reports the exit code.
    """

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.crash.workload", "--serve"],
            cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._stderr: list[bytes] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            if raw.endswith(b"\n"):  # a torn line cannot happen with single small writes
                self._lines.put(raw.decode().rstrip("\n"))
        self._lines.put(None)

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            self._stderr.append(raw)

    def stderr_tail(self) -> str:
        return b"".join(self._stderr[-40:]).decode(errors="replace")

    def _next(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"workload silent for {timeout} s: {self.stderr_tail()}") from None
        if line is None:
            raise AssertionError(f"fork server died: {self.stderr_tail()}")
        return line

    def run(self, cycle: Cycle, argv: list[str]) -> Cycle:
        """Run one child with ``argv``; SIGKILL it ``cycle.kill_after_ms`` after READY."""
        assert self._proc.stdin is not None
        self._proc.stdin.write((shlex.join(argv) + "\n").encode())
        self._proc.stdin.flush()
        first = self._next(READY_TIMEOUT_S)
        assert first.startswith("PID "), first
        pid = int(first.split()[1])
        done = threading.Event()
        guard = threading.Lock()

        def kill() -> None:
            with guard:
                if not done.is_set():
                    os.kill(pid, signal.SIGKILL)

        timer: threading.Timer | None = None
        try:
            while True:
                line = self._next(RUN_TIMEOUT_S)
                if line.startswith("EXIT "):
                    with guard:
                        done.set()
                    cycle.returncode = int(line.split()[1])
                    return cycle
                if line.startswith("READY"):
                    cycle.ready = line
                    if cycle.kill_after_ms is not None:
                        timer = threading.Timer(cycle.kill_after_ms / 1000, kill)
                        timer.start()
                else:
                    cycle.lines.append(line)
        finally:
            if timer is not None:
                timer.cancel()
            cycle.stderr = self.stderr_tail()

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(30)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            for reader in self._readers:
                reader.join(10)
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_child(
    zygote: Zygote,
    data_dir: Path,
    seed: int,
    number: int,
    *,
    kill_after_ms: float | None,
    wal_autocheckpoint: int = 0,
    ops: int = 2_000,
    threads: int = 24,
) -> Cycle:
    """Run the workload once; SIGKILL it ``kill_after_ms`` after READY (None: let it finish)."""
    cycle = Cycle(seed, number, kill_after_ms, wal_autocheckpoint)
    argv = [
        "--data-dir", str(data_dir), "--seed", str(seed), "--ops", str(ops),
        "--threads", str(threads), "--wal-autocheckpoint", str(wal_autocheckpoint),
    ]
    return zygote.run(cycle, argv)


@dataclass
class Snapshot:
    """What the journal held after a check: keys (with multiplicity) and entry ids."""

    keys: Counter[str]
    entries: int


def check_after_kill(data_dir: Path, acked: set[str]) -> tuple[list[str], Snapshot]:
    """Open the database like a restarting node and check everything (module docstring)."""
    problems: list[str] = []
    node = build_node(load_settings(data_dir), upgrade=False)
    try:
        with node.writer_engine.connect() as conn:
            for name, want in (("journal_mode", "wal"), ("synchronous", "2")):
                got = str(conn.exec_driver_sql(f"PRAGMA {name}").scalar())
                if got != want:
                    problems.append(f"PRAGMA {name} = {got}, expected {want}")
        problems.extend(migrate.check(node.engine).problems)
        report = node.verify_ledger()
        problems.extend(f"verify_ledger: {p}" for p in report.problems)
        with node.engine.connect() as conn:
            rows = conn.execute(text("SELECT id, idempotency_key FROM journal")).all()
            events = conn.execute(
                text("SELECT payload FROM outbox WHERE type = 'ledger.entry_posted'")
            ).scalars().all()
    finally:
        node.close()
    keys: Counter[str] = Counter(key for _, key in rows)
    problems.extend(f"key {k} appears {n} times in the journal" for k, n in keys.items() if n > 1)
    missing = sorted(acked - keys.keys())
    if missing:
        problems.append(f"{len(missing)} acknowledged keys are not in the journal: {missing[:5]}")
    entry_ids = Counter(entry_id for entry_id, _ in rows)
    event_ids = Counter(json.loads(payload)["entryId"] for payload in events)
    if len(events) != len(rows):
        problems.append(f"{len(rows)} journal entries but {len(events)} entry_posted events")
    if entry_ids != event_ids:
        lost = sorted((entry_ids - event_ids).keys())[:5]
        extra = sorted((event_ids - entry_ids).keys())[:5]
        problems.append(f"outbox mismatch: entries without event {lost}, events without entry "
                        f"{extra}")
    return problems, Snapshot(keys, len(rows))


def check_replays(cycle: Cycle, committed_before: Counter[str]) -> list[str]:
    """A key committed before this run must come back ``replayed``: exactly once."""
    return [
        f"key {key} ({kind}) was committed before this run but came back {status}"
        for key, kind, status in cycle.statuses()
        if key in committed_before and status != "replayed"
    ]


def progress(statuses: list[tuple[str, str, str]]) -> int:
    """Highest op index any thread got an answer for (keys are ``crash-S-TT-IIIII-step``)."""
    return max((int(key.split("-")[3]) for key, _, _ in statuses), default=-1)


@dataclass
class SeedReport:
    """Summary of one seed: kills, acks, entries, and every problem found."""

    seed: int
    kills: int = 0
    cycles: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    acked: int = 0
    entries: int = 0


@dataclass
class _State:
    """What the parent knows across the cycles of one seed."""

    acked: set[str] = field(default_factory=set)
    committed: Counter[str] = field(default_factory=Counter)
    furthest: int = -1


def run_seed(data_dir: Path, seed: int, kills: int, *, log: bool = True) -> SeedReport:
    """``kills`` kill cycles with seed ``seed`` on ``data_dir``, then a clean resubmitting run."""
    rng = random.Random(seed)
    report = SeedReport(seed)
    state = _State()
    with Zygote() as zygote:
        for number in range(kills + 1):
            final = number == kills
            delay = None if final else rng.uniform(KILL_MIN_MS, KILL_MAX_MS)
            wal = 0 if final or rng.random() < 0.5 else 1
            # The final run resubmits every op any earlier run may have sent (one past the
            # furthest answered op: a thread sends op i+1 only after op i was answered).
            ops = state.furthest + 2 if final else 2_000
            cycle = run_child(zygote, data_dir, seed, number, kill_after_ms=delay,
                              wal_autocheckpoint=wal, ops=max(ops, 1))
            report.cycles.append(cycle.describe())
            if log:
                print(f"[crash] {cycle.describe()}", flush=True)
            problems = _check_cycle(cycle, final, state, data_dir)
            report.kills += cycle.killed
            if problems:
                report.problems.extend(f"[{cycle.describe()}] {p}" for p in problems)
                break
    report.acked = len(state.acked)
    report.entries = sum(state.committed.values())
    return report


def _check_cycle(cycle: Cycle, final: bool, state: _State, data_dir: Path) -> list[str]:
    """Every check of one finished cycle; updates ``state``."""
    problems = [f"child error: {line}" for line in cycle.errors()]
    if not cycle.ready.startswith("READY wal 2"):
        problems.append(f"child pragmas not WAL + synchronous=FULL: {cycle.ready!r}")
    if final and cycle.returncode != 0:
        problems.append(f"final run exited {cycle.returncode}: {cycle.stderr[-2000:]}")
    if not final and cycle.returncode not in (-signal.SIGKILL, 0):
        problems.append(f"child exited {cycle.returncode}: {cycle.stderr[-2000:]}")
    statuses = cycle.statuses()
    state.furthest = max(state.furthest, progress(statuses))
    problems.extend(check_replays(cycle, state.committed))
    if final:
        resubmitted = {key for key, _, _ in statuses}
        skipped = sorted(set(state.committed) - resubmitted)
        if skipped:
            problems.append(f"final run did not resubmit {len(skipped)} keys: {skipped[:5]}")
    state.acked.update(key for key, _, status in statuses if status != "refused")
    found, snapshot = check_after_kill(data_dir, state.acked)
    problems.extend(found)
    state.committed = snapshot.keys
    return problems
