"""HSM-keyed backups on a real SoftHSM2 token, through ``dpg`` (in-process CliRunner).

The node encrypts to the public half only (``backup-key.pem``); verify and restore ask the
token for the ECDH secret. A token without that key, or a replaced public key file, cannot
quietly produce or open backups.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner, Result

from dpgnode.cli.errors import EXIT_FAILED
from dpgnode.cli.main import app
from dpgnode.errors import ValidationError
from dpgnode.maintenance.keys import passphrase_key
from dpgnode.settings import load_settings
from tests.support.softhsm import require_softhsm

pytestmark = pytest.mark.integration

Invoke = Callable[..., Result]
HSM_KEYED = {"DPG_BACKUP__KEY_SOURCE": "hsm"}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    require_softhsm()
    for name in list(os.environ):
        if name.startswith("DPG_") or name == "SOFTHSM2_CONF":
            monkeypatch.delenv(name)


def runner_for(data_dir: Path) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, env: Mapping[str, str] | None = None, input: str | None = None
               ) -> Result:
        environment = {"DPG_DATA_DIR": str(data_dir), **HSM_KEYED, **(env or {})}
        return runner.invoke(app, list(args), env=environment, input=input)

    return invoke


def ok(result: Result) -> dict[str, object]:
    assert result.exit_code == 0, result.output
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    dpg = runner_for(data_dir)
    ok(dpg("hsm", "init", "--json"))
    assert dpg("init").exit_code == 0
    for index in range(3):
        result = dpg("ledger", "post", "--key", f"k{index}", "--memo", "m",
                     "--posting", "operator:op:BTC:world=-1",
                     "--posting", "operator:op:BTC:inventory=1")
        assert result.exit_code == 0, result.output
    return data_dir


def test_hsm_keyed_backup_round_trips_and_its_key_never_leaves_the_token(
    node_dir: Path, tmp_path: Path
) -> None:
    dpg = runner_for(node_dir)
    key = ok(dpg("backup", "key", "create", "--json"))
    assert key["created"] is True
    assert ok(dpg("backup", "key", "create", "--json"))["created"] is False  # idempotent
    public = Path(str(key["publicKeyFile"]))
    assert public == node_dir / "backup-key.pem"
    assert b"PRIVATE" not in public.read_bytes()

    from dpgnode.signer import build_signer  # the test process may load the HSM

    with build_signer(load_settings(node_dir)) as signer:
        protection = signer.key_protection("dpg-backup-1")
    assert protection["sensitive"] is True
    assert protection["extractable"] is False
    assert protection["never_extractable"] is True

    made = ok(dpg("backup", "create", "--json"))
    manifest = made["manifest"]
    assert isinstance(manifest, dict)
    assert manifest["keySource"] == "hsm"
    path = str(made["path"])
    assert ok(dpg("backup", "verify", path, "--json"))["ok"] is True
    restored = ok(dpg("backup", "restore", path, "--data-dir", str(tmp_path / "back"), "--yes",
                      "--json"))
    assert restored["check"]["entries"] == 3  # type: ignore[index]
    # A passphrase cannot open an HSM-keyed slot.
    with pytest.raises(ValidationError, match="keyed by 'hsm'"):
        passphrase_key("correct horse battery staple").open(
            {"kind": "hsm", "keyLabel": "dpg-backup-1"})


def test_another_token_cannot_open_the_backup(node_dir: Path, tmp_path: Path) -> None:
    dpg = runner_for(node_dir)
    ok(dpg("backup", "key", "create", "--json"))
    path = str(ok(dpg("backup", "create", "--json"))["path"])
    # A second node with its own token and its own backup key of the same label.
    other = runner_for(tmp_path / "other")
    ok(other("hsm", "init", "--json"))
    ok(other("backup", "key", "create", "--json"))
    result = other("backup", "verify", path)
    assert result.exit_code == EXIT_FAILED
    assert "does not open this backup" in result.output


def test_doctor_fails_when_the_public_key_file_is_not_the_tokens(node_dir: Path) -> None:
    dpg = runner_for(node_dir)
    ok(dpg("backup", "key", "create", "--json"))
    healthy = json.loads(dpg("doctor", "--json").stdout)
    hsm = [f for f in healthy["findings"] if f["check"] == "hsm"]
    assert [f["status"] for f in hsm] == ["ok"], hsm
    # Someone swaps the public key: new backups would go to their key.
    from cryptography.hazmat.primitives import serialization

    forged = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (node_dir / "backup-key.pem").write_bytes(forged)
    result = dpg("doctor", "--json")
    assert result.exit_code == EXIT_FAILED
    hsm = [f for f in json.loads(result.stdout)["findings"] if f["check"] == "hsm"]
    assert any(f["status"] == "fail" and "not the HSM's backup key" in f["summary"] for f in hsm)
    # Re-running key create repairs the file from the token.
    ok(dpg("backup", "key", "create", "--json"))
    assert (node_dir / "backup-key.pem").read_bytes() != forged
