"""Backup and restore times for a large SQLite database (RELIABILITY.md R7, issue 7).

Run: ``.venv/bin/python bench/backup.py [--size-mb 1024] [--no-cache]``

The database is built once through the node's real writer (seeded transfers between 10,000
accounts, two postings each, with their outbox events), until the file reaches
``--size-mb``; it is cached under ``bench/.cache/`` keyed by size and schema revision and
copied per run. Then, timed per step through the progress reports the CLI draws bars from:

1. ``dpg backup create`` with checks: online-backup copy, integrity check + full ledger
   verification of the copy, encryption (AES-256-GCM, scrypt passphrase key), read-back;
2. ``dpg backup verify``: decrypt to a temporary directory, integrity, ledger verification;
3. ``dpg backup restore`` into a new data directory: decrypt, the same checks, rename.

R7's target is a restore of a 1 GB database in 5 minutes or less. The benchmark prints a
table and, last, one JSON line with every figure; it never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, OwnerType, Posting
from dpgnode.maintenance.backups import create_backup
from dpgnode.maintenance.keys import passphrase_key
from dpgnode.maintenance.restore import restore_backup, verify_backup
from dpgnode.node import Node, build_node
from dpgnode.ports.uow import Hints
from dpgnode.services.ledger import post_command
from dpgnode.settings import Settings, load_settings

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
ACCOUNTS = 10_000
SEED = 20250107
PASSPHRASE = "bench passphrase, not a secret"
MIB = 1 << 20
WORLD = AccountRef(OwnerType.OPERATOR, "bench", "ETH", AccountKind.WORLD)


class Timings:
    """A ``Progress`` that times each reported step and counts its bytes."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float, int]] = []
        self._current: tuple[str, float] | None = None
        self._bytes = 0

    def stage(self, description: str, total: int | None = None) -> None:
        self.close()
        self._current, self._bytes = (description, time.perf_counter()), 0

    def advance(self, amount: int) -> None:
        self._bytes += amount

    def close(self) -> None:
        if self._current is not None:
            name, started = self._current
            self.steps.append((name, time.perf_counter() - started, self._bytes))
            self._current = None


def _submit(node: Node, draft: EntryDraft) -> Future[Any]:
    hints = Hints((draft.idempotency_key,), tuple(p.account for p in draft.postings))
    return node.writer.submit(post_command(draft), hints)


def build_database(
    data_dir: Path, size_mb: int, round_entries: int = 50_000, accounts: int = ACCOUNTS
) -> int:
    """Post seeded transfers through the writer until the file holds ``size_mb``."""
    users = [AccountRef(OwnerType.USER, f"u{i}", "ETH", AccountKind.AVAILABLE)
             for i in range(accounts)]
    settings = load_settings(data_dir, overrides={
        "ledger": {"group_commit_max_batch": 5_000, "group_commit_max_wait_ms": 50},
        "backup": {"interval_minutes": 0},
    })
    node = build_node(settings, upgrade=True)
    database = data_dir / "dpg.sqlite3"
    rng = random.Random(SEED)
    window: deque[Future[Any]] = deque()
    try:
        funding = [Posting(user, 10**24) for user in users]
        _submit(node, EntryDraft("fund", (*funding, Posting(WORLD, -(10**24) * accounts)))).result()
        entries, started = 1, time.perf_counter()
        while True:
            for _ in range(round_entries):
                src, dst = rng.sample(range(accounts), 2)
                units = rng.randint(1, 10**18)
                draft = EntryDraft(f"b{entries:09d}",
                                   (Posting(users[src], -units), Posting(users[dst], units)))
                window.append(_submit(node, draft))
                entries += 1
                if len(window) >= 10_000:
                    window.popleft().result()
            while window:
                window.popleft().result()
            wal = database.with_name(database.name + "-wal")  # checkpointed at close
            size = database.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
            print(f"  {entries:,} entries, {size / MIB:,.0f} MiB, "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            if size >= size_mb * MIB:
                return entries
    finally:
        node.close()


def prepared(
    size_mb: int, work: Path, use_cache: bool, round_entries: int, accounts: int
) -> tuple[Path, int, float | None]:
    """A data directory holding the database; its entry count; seconds spent building."""
    from alembic.script import ScriptDirectory

    from dpgnode.adapters.storage.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    cached = CACHE_DIR / f"backup-{size_mb}mb-{accounts}-{head}"
    data_dir = work / "data"
    built = None
    if not use_cache or not (cached / "dpg.sqlite3").exists():
        target = cached if use_cache else data_dir
        building = target.with_name(target.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        print(f"building a {size_mb} MiB database in {building} ...", file=sys.stderr)
        started = time.perf_counter()
        entries = build_database(building, size_mb, round_entries, accounts)
        built = time.perf_counter() - started
        (building / "entries").write_text(str(entries))
        shutil.rmtree(target, ignore_errors=True)
        building.rename(target)
    if use_cache:
        data_dir.mkdir(parents=True)
        shutil.copyfile(cached / "dpg.sqlite3", data_dir / "dpg.sqlite3")
        shutil.copyfile(cached / "entries", data_dir / "entries")
    return data_dir, int((data_dir / "entries").read_text()), built


def timed(call: Any) -> tuple[Any, float, list[tuple[str, float, int]]]:
    timings = Timings()
    started = time.perf_counter()
    result = call(timings)
    timings.close()
    return result, time.perf_counter() - started, timings.steps


def run(
    size_mb: int, use_cache: bool, work: Path, round_entries: int, accounts: int
) -> dict[str, Any]:
    data_dir, entries, built = prepared(size_mb, work, use_cache, round_entries, accounts)
    settings: Settings = load_settings(data_dir, overrides={"backup": {"interval_minutes": 0}})
    database_bytes = (data_dir / "dpg.sqlite3").stat().st_size
    key = passphrase_key(PASSPHRASE)
    made, create_s, create_steps = timed(lambda p: create_backup(settings, key, progress=p))
    checked, verify_s, verify_steps = timed(lambda p: verify_backup(made.path, key, progress=p))
    target = work / "restored"
    restored, restore_s, restore_steps = timed(
        lambda p: restore_backup(made.path, key, data_dir=target, progress=p))
    ok = made.check.ok and checked.check.ok and restored.check.ok
    ok = ok and restored.manifest.ledger_seq == entries
    rows = [("create", create_s, create_steps), ("verify", verify_s, verify_steps),
            ("restore", restore_s, restore_steps)]
    return {
        "database_mib": round(database_bytes / MIB, 1), "entries": entries,
        "backup_mib": round(made.size / MIB, 1),
        "build_s": None if built is None else round(built, 1),
        "create_s": round(create_s, 2), "verify_s": round(verify_s, 2),
        "restore_s": round(restore_s, 2), "restore_target_s": 300, "checks_ok": ok,
        "steps": {name: {step: round(seconds, 2) for step, seconds, _ in steps}
                  for name, _, steps in rows},
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "_rows": rows,
    }


def print_table(out: dict[str, Any]) -> None:
    print(f"database {out['database_mib']} MiB, {out['entries']:,} entries; backup file "
          f"{out['backup_mib']} MiB; checks {'ok' if out['checks_ok'] else 'FAILED'}")
    print(f"{'operation':<10} {'step':<22} {'seconds':>9} {'MiB/s':>8}")
    for name, total, steps in out.pop("_rows"):
        for step, seconds, moved in steps:
            rate = f"{moved / MIB / seconds:8.0f}" if moved and seconds > 0 else f"{'':>8}"
            print(f"{name:<10} {step:<22} {seconds:9.2f} {rate}")
        print(f"{name:<10} {'total':<22} {total:9.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="database size to build")
    parser.add_argument("--no-cache", action="store_true", help="build the database afresh")
    parser.add_argument("--round", type=int, default=50_000,
                        help="entries posted between two size checks while building")
    parser.add_argument("--accounts", type=int, default=ACCOUNTS,
                        help="accounts the transfers move between")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dpg-bench-backup-"))
    try:
        out = run(args.size_mb, not args.no_cache, work, args.round, args.accounts)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(out)
    print(json.dumps(out))
    return 0 if out["checks_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
