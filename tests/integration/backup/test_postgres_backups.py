"""PostgreSQL backups: pg_dump from an exported snapshot, restore into an empty database.

Needs PostgreSQL (tests/support/postgres.py finds or starts one) and its client tools
(``pg_dump``, ``pg_restore``: Debian's ``postgresql-client``, which ``postgresql`` pulls in).
Outside CI a missing tool skips with that install hint; with ``CI`` set it fails.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dpgnode.adapters.backup.keys import PassphraseKey
from dpgnode.errors import ValidationError
from dpgnode.maintenance.backups import create_backup
from dpgnode.maintenance.restore import restore_backup, verify_backup
from dpgnode.node import build_node
from dpgnode.settings import Settings, load_settings
from tests.integration.backup.conftest import Writers, deposit
from tests.support.postgres import (
    create_database,
    drop_database,
    require_postgres,
    unique_database_name,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def _require_tools() -> None:
    missing = [name for name in ("pg_dump", "pg_restore") if shutil.which(name) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed: apt-get install postgresql-client"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this test may not skip)")
    pytest.skip(reason)


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """Three fresh databases: the node's, a scratch one for verify, a restore target."""
    _require_tools()
    admin = require_postgres()
    names = {role: unique_database_name(f"bk_{role}") for role in ("live", "scratch", "target")}
    urls = {role: create_database(admin, name) for role, name in names.items()}
    yield urls
    for name in names.values():
        drop_database(admin, name)


def _settings(tmp_path: Path, url: str) -> Settings:
    return load_settings(tmp_path / "data", overrides={
        "database": {"url": url}, "backup": {"interval_minutes": 0},
    })


def test_pg_backup_restores_every_entry_acknowledged_before_it_started(
    tmp_path: Path, databases: dict[str, str], key: PassphraseKey
) -> None:
    settings = _settings(tmp_path, databases["live"])
    node = build_node(settings, upgrade=True)
    for index in range(200):
        deposit(node, f"seed-{index}", f"s{index % 20}", 10**20 + index, "ETH")
    writers = Writers(node, threads=4)
    writers.start()
    try:
        while writers.count() < 100:
            time.sleep(0.01)
        before = writers.snapshot()
        made = create_backup(settings, key)
    finally:
        writers.stop()
        node.close()
    assert made.manifest.database == "postgresql"
    assert made.check is not None
    assert any("pg_restore --list" in note for note in made.check.notes)

    checked = verify_backup(made.path, key, scratch_database_url=databases["scratch"])
    assert checked.check.ok, checked.check.problems
    assert checked.check.ledger is not None
    assert checked.check.ledger.entries == made.manifest.ledger_seq

    restored = restore_backup(made.path, key, database_url=databases["target"],
                              data_dir=tmp_path / "restored")
    assert restored.check.ok
    assert restored.config_restored is False  # no dpg.toml in tmp data dir
    fresh = build_node(_settings(tmp_path, databases["target"]), upgrade=False)
    try:
        keys = {entry.idempotency_key for entry in fresh.queries.entries()}
        assert fresh.verify_ledger().ok
    finally:
        fresh.close()
    assert before <= keys
    assert len(keys) == made.manifest.ledger_seq


def test_pg_restore_refuses_a_database_that_is_not_empty(
    tmp_path: Path, databases: dict[str, str], key: PassphraseKey
) -> None:
    settings = _settings(tmp_path, databases["live"])
    node = build_node(settings, upgrade=True)
    deposit(node, "one", "alice", 1)
    node.close()
    made = create_backup(settings, key, verify=False)
    with pytest.raises(ValidationError, match="not empty"):
        restore_backup(made.path, key, database_url=databases["live"])
    with pytest.raises(ValidationError, match="--database-url"):
        restore_backup(made.path, key, data_dir=tmp_path / "elsewhere")
