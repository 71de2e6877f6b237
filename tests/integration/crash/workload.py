"""The crash harness's child: a seeded ledger workload that reports every acknowledgement.

Run as ``python -m tests.integration.crash.workload --data-dir D --seed S`` (or ``--serve``
for the fork server the harness uses, see :func:`serve`). It builds a node
on the SQLite file in ``D`` (WAL, ``synchronous=FULL``), prints ``READY <journal_mode>
<synchronous> <wal_autocheckpoint>`` and then runs ``--threads`` threads; thread ``t`` runs
the ops ``0 .. --ops - 1`` of its own seeded sequence, one after the other, so many commands
are in flight at once and group commit forms batches.

Every op is drawn in full from ``random.Random(f"{seed}:{t}")`` before it runs, so a restart
with the same seed resubmits exactly the same keys with exactly the same content, whatever
happened before (refused ops consume the same draws as accepted ones). Ops: deposits from
the operator's world account, transfers between ~50 store and user accounts (some would
overdraw and are refused), holds with capture and/or release, and transfers that are then
reversed. Two assets, one of them with amounts beyond 2**63.

After each service call returns, one line goes to stdout with a single ``os.write`` (atomic
on a pipe, unbuffered, so it is out before the next command starts): ``<key> <kind>
<created|replayed|refused>``. That is the ack pipe: a ``created`` or ``replayed`` line means
the caller was told the entry is durable. An unexpected exception writes ``ERROR ...`` and
exits with status 3; a finished run writes ``DONE`` and exits 0.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event

from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, OwnerType, Posting
from dpgnode.errors import InsufficientFundsError
from dpgnode.node import Node, build_node
from dpgnode.settings import load_settings

ASSETS = ("BTC", "ETH")
# Typical deposit per asset; ETH amounts (wei) go past 2**63 to exercise exact big integers.
SCALE = {"BTC": 1_000_000, "ETH": 10**21}
OWNERS = [(OwnerType.STORE, f"st{i}") for i in range(10)] + [
    (OwnerType.USER, f"u{i}") for i in range(40)
]


def available(index: int, asset: str) -> AccountRef:
    owner_type, owner_id = OWNERS[index]
    return AccountRef(owner_type, owner_id, asset, AccountKind.AVAILABLE)


def world(asset: str) -> AccountRef:
    return AccountRef(OwnerType.OPERATOR, "op", asset, AccountKind.WORLD)


@dataclass(frozen=True)
class Op:
    """One drawn op; ``key`` is the prefix of the idempotency keys of its steps."""

    kind: str
    key: str
    asset: str
    src: int
    dst: int
    amount: int
    part: int
    mode: str


def draw_op(rng: random.Random, seed: int, thread: int, index: int) -> Op:
    """Draw op ``index`` of a thread; always consumes the same number of draws."""
    r = rng.random()
    asset = ASSETS[rng.randrange(len(ASSETS))]
    src = rng.randrange(len(OWNERS))
    dst = rng.randrange(len(OWNERS) - 1)
    dst = dst + 1 if dst >= src else dst
    kind = "deposit" if r < 0.25 else "transfer" if r < 0.6 else "hold" if r < 0.8 else "reverse"
    amount = rng.randint(1, 2 * SCALE[asset])
    if kind != "deposit":  # smaller than deposits, yet large enough that some overdraw
        amount = amount // 4 + 1
    part = rng.randint(1, amount)
    mode = ("capture", "split", "release")[rng.randrange(3)]
    key = f"crash-{seed}-{thread:02d}-{index:05d}"
    return Op(kind, key, asset, src, dst, amount, part, mode)


class Acks:
    """Writes ack lines to fd 1, each with one ``os.write`` (no buffering, no interleaving)."""

    def write(self, key: str, kind: str, status: str) -> None:
        os.write(1, f"{key} {kind} {status}\n".encode())

    def ok(self, key: str, kind: str, created: bool) -> None:
        self.write(key, kind, "created" if created else "replayed")


def run_op(node: Node, op: Op, acks: Acks) -> None:
    ledger = node.ledger
    src, dst = available(op.src, op.asset), available(op.dst, op.asset)
    if op.kind == "deposit":
        posted = ledger.post(EntryDraft(f"{op.key}-dep", _pair(world(op.asset), dst, op.amount)))
        acks.ok(f"{op.key}-dep", "deposit", posted.created)
        return
    if op.kind in ("transfer", "reverse"):
        key = f"{op.key}-tr"
        try:
            posted = ledger.post(EntryDraft(key, _pair(src, dst, op.amount)))
        except InsufficientFundsError:
            acks.write(key, "transfer", "refused")
            return
        acks.ok(key, "transfer", posted.created)
        if op.kind == "reverse":
            _step(acks, f"{op.key}-rev", "reversal",
                  lambda k: ledger.reverse(posted.entry.id, k).created)
        return
    _hold(node, op, src, dst, acks)


def _hold(node: Node, op: Op, src: AccountRef, dst: AccountRef, acks: Acks) -> None:
    ledger = node.ledger
    key = f"{op.key}-hold"
    try:
        held = ledger.reserve(src, op.amount, key)
    except InsufficientFundsError:
        acks.write(key, "hold", "refused")
        return
    acks.ok(key, "hold", held.created)
    hold_id = held.hold.id
    if op.mode in ("capture", "split"):
        units = op.amount if op.mode == "capture" else op.part
        _step(acks, f"{op.key}-cap", "capture",
              lambda k: ledger.capture(hold_id, units, dst, k).created)
    if op.mode in ("split", "release") and not (op.mode == "split" and op.part == op.amount):
        _step(acks, f"{op.key}-rel", "release", lambda k: ledger.release(hold_id, k).created)


def _step(acks: Acks, key: str, kind: str, call: Callable[[str], bool]) -> None:
    try:
        created = call(key)
    except InsufficientFundsError:
        acks.write(key, kind, "refused")
        return
    acks.ok(key, kind, created)


def _pair(debit: AccountRef, credit: AccountRef, units: int) -> tuple[Posting, ...]:
    return (Posting(debit, -units), Posting(credit, units))


def run_thread(node: Node, seed: int, thread: int, ops: int, acks: Acks) -> None:
    rng = random.Random(f"{seed}:{thread}")
    try:
        for index in range(ops):
            run_op(node, draw_op(rng, seed, thread, index), acks)
    except BaseException as exc:  # any surprise is a harness failure the parent must see
        os.write(1, f"ERROR thread {thread}: {type(exc).__name__}: {exc}\n".encode())
        os._exit(3)


def open_node(data_dir: Path, *, max_batch: int, wal_autocheckpoint: int) -> Node:
    settings = load_settings(
        data_dir,
        overrides={
            "ledger": {"group_commit_max_batch": max_batch, "group_commit_max_wait_ms": 2.0}
        },
    )
    node = build_node(settings, upgrade=True)
    if wal_autocheckpoint:
        # A tiny autocheckpoint makes (nearly) every commit run a checkpoint, so kills land
        # inside checkpoints too. The setting is per connection: drop pooled connections.
        node.writer_engine.dispose()

        @event.listens_for(node.writer_engine, "connect")
        def _checkpoint_often(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={int(wal_autocheckpoint)}")

    return node


def pragmas(node: Node) -> Sequence[str]:
    with node.writer_engine.connect() as conn:
        return [
            str(conn.exec_driver_sql(f"PRAGMA {name}").scalar())
            for name in ("journal_mode", "synchronous", "wal_autocheckpoint")
        ]


def serve() -> int:
    """Fork server: one child per ``argv`` line read from stdin, its acks relayed to stdout.

    Importing the node takes most of a fresh interpreter's start-up (~0.4 s); forking this
    already-imported, single-threaded process instead makes each kill cycle that much
    shorter. Each child is a separate process with its own database connections (none is
    open here when it forks) and is killed by the parent with SIGKILL, exactly like a child
    started with ``python -m``. Protocol: ``PID <pid>``, the child's lines, ``EXIT <code>``.
    """
    for request in sys.stdin:
        argv = shlex.split(request)
        if not argv:
            continue
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: acks go to the pipe, never back to the parent's stdin
            os.close(read_end)
            os.dup2(write_end, 1)
            os.close(write_end)
            code = 3
            try:
                code = main(argv)
            except BaseException as exc:
                os.write(1, f"ERROR child: {type(exc).__name__}: {exc}\n".encode())
            os._exit(code)
        os.close(write_end)
        os.write(1, f"PID {pid}\n".encode())
        while chunk := os.read(read_end, 65536):
            os.write(1, chunk)
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        os.write(1, f"EXIT {os.waitstatus_to_exitcode(status)}\n".encode())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and sys.argv[1:] == ["--serve"]:
        return serve()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--threads", type=int, default=24)
    parser.add_argument("--ops", type=int, default=2_000, help="ops per thread")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--wal-autocheckpoint", type=int, default=0,
                        help="pages; 0 keeps SQLite's default")
    args = parser.parse_args(argv)
    node = open_node(args.data_dir, max_batch=args.max_batch,
                     wal_autocheckpoint=args.wal_autocheckpoint)
    os.write(1, ("READY " + " ".join(pragmas(node)) + "\n").encode())
    acks = Acks()
    threads = [
        threading.Thread(target=run_thread, args=(node, args.seed, t, args.ops, acks),
                         name=f"crash-{t}", daemon=True)
        for t in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    node.close()
    os.write(1, b"DONE\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
