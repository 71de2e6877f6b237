"""``dpg backup`` through the CLI on real data directories (SQLite)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import Result

from dpgnode.cli.errors import EXIT_CONFIG, EXIT_FAILED
from dpgnode.domain.backup import backup_file_name, parse_backup_file_name

Invoke = Callable[..., Result]
KEY = {"DPG_BACKUP_PASSPHRASE": "correct horse battery staple"}


def post(dpg: Invoke, key: str, amount: str = "0.5") -> None:
    result = dpg("ledger", "post", "--key", key, "--memo", "float",
                 "--posting", f"operator:op:BTC:world=-{amount}",
                 "--posting", f"operator:op:BTC:inventory={amount}")
    assert result.exit_code == 0, result.output


def create(dpg: Invoke, *args: str) -> dict[str, object]:
    result = dpg("backup", "create", "--json", *args, env=KEY)
    assert result.exit_code == 0, result.output
    made: dict[str, object] = json.loads(result.stdout)
    return made


@pytest.fixture
def with_entries(initialised: Invoke) -> Invoke:
    for index in range(3):
        post(initialised, f"adj-{index}")
    return initialised


class TestCreateVerifyRestore:
    def test_backup_restores_into_a_new_directory_with_every_entry_when_round_tripped(
        self, with_entries: Invoke, data_dir: Path, tmp_path: Path
    ) -> None:
        made = create(with_entries)
        path = Path(str(made["path"]))
        manifest = made["manifest"]
        assert isinstance(manifest, dict)
        assert path.parent == data_dir / "backups"
        assert parse_backup_file_name(path.name) is not None
        assert (path.stat().st_mode & 0o777) == 0o600
        assert manifest["ledgerSeq"] == 3
        assert manifest["database"] == "sqlite"
        assert made["check"] == {"ok": True, "problems": [], "notes": ["integrity_check: ok"],
                                 "entries": 3}
        # Nothing but the finished backup (and the lock) is left in the directory.
        assert sorted(p.name for p in path.parent.iterdir()) == [".lock", path.name]

        listed = json.loads(with_entries("backup", "list", "--json").stdout)
        assert [b["file"] for b in listed["backups"]] == [path.name]
        assert listed["backups"][0]["manifest"] == manifest

        verified = with_entries("backup", "verify", str(path), "--json", env=KEY)
        assert verified.exit_code == 0, verified.output
        assert json.loads(verified.stdout)["check"]["entries"] == 3
        assert json.loads(verified.stdout)["config"] is True

        target = tmp_path / "restored"
        restored = with_entries("backup", "restore", str(path), "--data-dir", str(target),
                                "--yes", "--json", env=KEY)
        assert restored.exit_code == 0, restored.output
        assert json.loads(restored.stdout)["configRestored"] is True
        assert (target / "dpg.toml").read_text() == (data_dir / "dpg.toml").read_text()
        again = with_entries("--data-dir", str(target), "ledger", "verify", "--json",
                             env={"DPG_DATA_DIR": str(target)})
        assert again.exit_code == 0, again.output
        assert json.loads(again.stdout)["entries"] == 3

    def test_restore_refuses_a_non_empty_directory(
        self, with_entries: Invoke, tmp_path: Path
    ) -> None:
        path = create(with_entries)["path"]
        target = tmp_path / "busy"
        target.mkdir()
        (target / "keep.txt").write_text("mine")
        result = with_entries("backup", "restore", str(path), "--data-dir", str(target),
                              "--yes", env=KEY)
        assert result.exit_code == EXIT_FAILED
        assert "not an empty directory" in result.output
        assert [p.name for p in target.iterdir()] == ["keep.txt"]

    def test_restore_does_nothing_when_not_confirmed(
        self, with_entries: Invoke, tmp_path: Path
    ) -> None:
        path = create(with_entries)["path"]
        result = with_entries("backup", "restore", str(path), "--data-dir",
                              str(tmp_path / "new"), env=KEY, input="n\n")
        assert result.exit_code == EXIT_FAILED
        assert not (tmp_path / "new").exists()

    def test_verify_refuses_a_wrong_passphrase(self, with_entries: Invoke) -> None:
        path = create(with_entries)["path"]
        result = with_entries("backup", "verify", str(path),
                              env={"DPG_BACKUP_PASSPHRASE": "not the passphrase at all"})
        assert result.exit_code == EXIT_FAILED
        assert "passphrase does not open this backup" in result.output

    def test_verify_fails_when_the_file_was_tampered_with(self, with_entries: Invoke) -> None:
        path = Path(str(create(with_entries)["path"]))
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 2] ^= 0x40
        path.write_bytes(bytes(blob))
        result = with_entries("backup", "verify", str(path), env=KEY)
        assert result.exit_code == EXIT_FAILED
        assert "backup file is damaged" in result.output

    def test_create_needs_a_key_when_none_is_configured(self, with_entries: Invoke) -> None:
        result = with_entries("backup", "create")
        assert result.exit_code == EXIT_CONFIG
        assert "DPG_BACKUP_PASSPHRASE" in result.output

    def test_create_refuses_to_overwrite_when_out_exists(
        self, with_entries: Invoke, tmp_path: Path
    ) -> None:
        out = tmp_path / "b.dpgbak"
        out.write_text("precious")
        result = with_entries("backup", "create", "--out", str(out), env=KEY)
        assert result.exit_code == EXIT_CONFIG
        assert out.read_text() == "precious"


class TestPrune:
    def test_prune_deletes_only_what_retention_lets_go_when_confirmed(
        self, with_entries: Invoke, data_dir: Path
    ) -> None:
        newest = Path(str(create(with_entries)["path"]))
        created = parse_backup_file_name(newest.name)
        assert created is not None
        older = [newest.with_name(backup_file_name(created - timedelta(minutes=m)))
                 for m in (1, 2)]
        for copy in older:
            shutil.copyfile(newest, copy)

        dry = json.loads(with_entries("backup", "prune", "--dry-run", "--json").stdout)
        assert sorted(dry["pruned"]) == sorted(str(p) for p in older)
        assert all(p.exists() for p in older)

        declined = with_entries("backup", "prune", input="n\n")
        assert declined.exit_code == EXIT_FAILED
        assert all(p.exists() for p in older)

        done = with_entries("backup", "prune", "--yes")
        assert done.exit_code == 0, done.output
        assert not any(p.exists() for p in older)
        assert newest.exists()
