"""Shared by the journal tests: a seeded command stream and the SIGKILL child process.

Commands are stored in the journal as ``(method, *args)`` tuples of the real
:class:`~dpgnode.domain.exchange.MatchingEngine`; command ``seq`` of a stream depends only
on ``(seed, seq)``, so a restarted child continues exactly where the recovered journal
ends, and the parent can rebuild a reference engine for any prefix.

Run as ``python -m tests.integration.exchange.journal_workload DIR SEED TARGET`` (the
child of ``test_journal_kill.py``): it recovers the journal in ``DIR``, rebuilds the
engine from snapshot + replay, prints ``READY <last_seq>``, then appends and applies
commands up to ``TARGET``, checkpointing every few thousand; the flusher's listener writes
``ACK <durable_seq>`` once a group is on disk. ``DONE`` ends a run that was not killed.
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path
from typing import Any

from dpgnode.adapters.exchange import FileExchangeJournal, MsgpackBatchCodec, MsgpackStateCodec
from dpgnode.domain.exchange import BUY, SELL, MatchingEngine
from dpgnode.ports.exchange_journal import ExchangeJournal

Command = tuple[Any, ...]


def open_journal(directory: Path, **options: Any) -> FileExchangeJournal[Command, Any]:
    return FileExchangeJournal(
        directory, MsgpackBatchCodec(Command), MsgpackStateCodec(dict[str, Any]), **options
    )


def command(seed: int, seq: int) -> Command:
    """Command ``seq`` of the seeded stream: limits, markets, cancels, reductions, stops."""
    rng = random.Random(seed * 1_000_003 + seq)
    r = rng.random()
    side = rng.choice((BUY, SELL))
    account = rng.randrange(20)
    if r < 0.55:
        off = rng.randint(-5, 30)
        price = 1_000 - off if side == BUY else 1_000 + off
        tif = "GTC" if rng.random() < 0.9 else "IOC"
        return ("limit", seq, account, side, price, rng.randint(1, 50), tif)
    if r < 0.85:
        return ("cancel", rng.randint(max(1, seq - 400), seq))
    if r < 0.93:
        return ("market", seq, account, side, rng.randint(1, 80))
    if r < 0.97:
        return ("reduce", rng.randint(max(1, seq - 400), seq), rng.randint(1, 10))
    return ("stop", seq, account, side, rng.randint(985, 1_015), rng.randint(1, 30))


def apply(engine: MatchingEngine, cmd: Command) -> None:
    """Run one journaled command on the engine (the journal stores ``(method, *args)``)."""
    getattr(engine, cmd[0])(*cmd[1:])
    engine.events.clear()


def reference(seed: int, upto: int) -> MatchingEngine:
    engine = MatchingEngine()
    for seq in range(1, upto + 1):
        apply(engine, command(seed, seq))
    return engine


def rebuild(recovered: Any) -> MatchingEngine:
    engine = (
        MatchingEngine.restore(recovered.snapshot)
        if recovered.snapshot is not None
        else MatchingEngine()
    )
    for cmd in recovered.commands:
        apply(engine, cmd)
    return engine


def fill(journal: ExchangeJournal[Command, Any], seed: int, first: int, last: int) -> None:
    for seq in range(first, last + 1):
        assert journal.append(command(seed, seq)) == seq


def child(directory: Path, seed: int, target: int) -> None:
    """Recover, rebuild the engine, then journal and apply commands until ``target``."""
    journal = open_journal(directory, segment_bytes=64 << 10)
    recovered = journal.recover()
    engine = rebuild(recovered)
    seq = recovered.last_seq
    os.write(1, f"READY {seq}\n".encode())

    def acknowledge(durable: int) -> None:
        os.write(1, f"ACK {durable}\n".encode())  # one write: atomic on the pipe

    journal.subscribe(acknowledge)
    checkpoint_every = 1_000 + seed % 5_000
    while seq < target:
        seq += 1
        cmd = command(seed, seq)
        if journal.append(cmd) != seq:
            raise RuntimeError(f"append returned the wrong seq at {seq}")
        apply(engine, cmd)
        if seq % checkpoint_every == 0:
            journal.checkpoint(seq, engine.snapshot())
    journal.close()
    os.write(1, b"DONE\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=Path)
    parser.add_argument("seed", type=int)
    parser.add_argument("target", type=int)
    args = parser.parse_args()
    try:
        child(args.directory, args.seed, args.target)
    except Exception as exc:
        os.write(1, f"ERROR {type(exc).__name__}: {exc}\n".encode())
        raise
