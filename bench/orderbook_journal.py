"""Our engine behind the durable command journal, for bench/orderbook.py's ``ours-journal``.

Each command is appended to ``FileExchangeJournal`` (as the ``(method, *args)`` tuple a
recovering matcher replays) and then applied; throughput counts a run as done only when its
last command is ``fdatasync``'d, and the acknowledgement latency of a command is the time
from its append to the flusher's durable notification covering it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from orderbook_engines import (
    CANCEL,
    LIMIT,
    Ops,
    latency_figures,
    ours_book,
    ours_setup,
)


def open_journal(directory: Path) -> Any:
    """The node's journal adapter, storing commands as ``(method, *args)`` tuples."""
    from dpgnode.adapters.exchange import (
        FileExchangeJournal,
        MsgpackBatchCodec,
        MsgpackStateCodec,
    )

    return FileExchangeJournal(
        directory, MsgpackBatchCodec(tuple[Any, ...]), MsgpackStateCodec(dict[str, Any])
    )


class JournalRun:
    """Our engine behind ``FileExchangeJournal``: every command journaled before it is applied."""

    def __init__(self, prefill: Ops, directory: Path) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        self.directory = directory
        self.journal = open_journal(directory)
        self.journal.recover()
        self.acks: list[tuple[int, int]] = []
        self.journal.subscribe(self._on_durable)
        for _, oid, side, price, qty in prefill:
            self.journal.append(("limit", oid, None, side, price, qty))
        self.journal.wait_durable(self.journal.last_seq)
        self.base_seq = self.journal.last_seq
        self.engine = ours_setup(prefill, freeze=True)
        self.acks.clear()
        self.groups_before = self.journal.groups

    def _on_durable(self, durable: int) -> None:
        self.acks.append((durable, time.perf_counter_ns()))

    def timed(self, ops: Ops) -> float:
        engine, journal = self.engine, self.journal
        limit, cancel, market, events = engine.limit, engine.cancel, engine.market, engine.events
        append = journal.append
        start = time.perf_counter()
        for op in ops:
            kind = op[0]
            if kind == LIMIT:
                append(("limit", op[1], None, op[2], op[3], op[4]))
                limit(op[1], None, op[2], op[3], op[4])
            elif kind == CANCEL:
                append(("cancel", op[1]))
                cancel(op[1])
            else:
                append(("market", op[1], None, op[2], op[3]))
                market(op[1], None, op[2], op[3])
            if len(events) > 4096:
                events.clear()
        journal.wait_durable(journal.last_seq)  # throughput counts only durable commands
        return time.perf_counter() - start

    def ack_latency(self, ops: Ops) -> tuple[list[int], list[int]]:
        """Per op: the time from append to the durable notification covering it."""
        engine, journal = self.engine, self.journal
        limit, cancel, market, events = engine.limit, engine.cancel, engine.market, engine.events
        append = journal.append
        pc = time.perf_counter_ns
        stamps = [0] * len(ops)
        for i, op in enumerate(ops):
            kind = op[0]
            stamps[i] = pc()
            if kind == LIMIT:
                append(("limit", op[1], None, op[2], op[3], op[4]))
                limit(op[1], None, op[2], op[3], op[4])
            elif kind == CANCEL:
                append(("cancel", op[1]))
                cancel(op[1])
            else:
                append(("market", op[1], None, op[2], op[3]))
                market(op[1], None, op[2], op[3])
            if len(events) > 4096:
                events.clear()
        journal.wait_durable(journal.last_seq)
        latencies: list[int] = []
        groups: list[int] = []
        covered = self.base_seq
        for durable, at in list(self.acks):
            if durable <= covered:
                continue
            groups.append(durable - covered)
            latencies.extend(at - stamps[seq - self.base_seq - 1]
                             for seq in range(covered + 1, durable + 1))
            covered = durable
        return latencies, groups

    def replay_book(self) -> tuple[int, int]:
        """Close, recover the journal as a restarting matcher would, replay, read the book."""
        from dpgnode.domain.exchange import MatchingEngine

        self.journal.close()
        again = open_journal(self.directory)
        recovered = again.recover()
        again.close()
        engine = MatchingEngine()
        for cmd in recovered.commands:
            getattr(engine, cmd[0])(*cmd[1:])
            engine.events.clear()
        return ours_book(engine)

    def close(self) -> None:
        self.journal.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def disk_floor(directory: Path, rounds: int = 300, size: int = 8_192) -> dict[str, float]:
    """One synced write of ``size`` bytes, ``rounds`` times, alone: the journal's floor."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "floor.probe"
    block = os.urandom(size)
    samples = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for i in range(rounds):
            t0 = time.perf_counter_ns()
            os.pwrite(fd, block, i * size)
            os.fdatasync(fd)
            samples.append(time.perf_counter_ns() - t0)
    finally:
        os.close(fd)
        path.unlink()
    return latency_figures(samples, unit=1_000)


def journal_worker(args: argparse.Namespace, prefill: Ops, ops: Ops) -> dict[str, Any]:
    sys.setswitchinterval(args.switch_interval)
    root = Path(args.journal_dir) if args.journal_dir else Path(tempfile.gettempdir())
    directory = root / f"dpg-bench-journal-{os.getpid()}"
    out: dict[str, Any] = {"switch_interval_s": sys.getswitchinterval(), "journal_dir": str(root)}
    if args.phase == "latency":
        out["disk_floor_ms"] = disk_floor(directory)
    journaled = JournalRun(prefill, directory)
    try:
        if args.phase == "run":
            groups0 = journaled.journal.groups
            seconds = journaled.timed(ops)
            out["ops_per_s"] = round(len(ops) / seconds)
            out["groups"] = journaled.journal.groups - groups0
            out["book"] = ours_book(journaled.engine)
            if args.replay:
                out["replayed_book"] = list(journaled.replay_book())
        else:
            latencies, groups = journaled.ack_latency(ops)
            out["book"] = ours_book(journaled.engine)
            out["ack_ms"] = latency_figures(latencies, unit=1_000)
            out["ack_groups"] = len(groups)
            out["ack_mean_group"] = round(statistics.fmean(groups), 1) if groups else 0
    finally:
        journaled.close()
    return out
