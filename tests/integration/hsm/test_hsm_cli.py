"""``dpg hsm`` through Typer's CliRunner, against a real SoftHSM2 token in a tmp data dir."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from coincurve import PublicKey
from typer.testing import CliRunner, Result

from dpgnode.cli.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE
from dpgnode.cli.main import app
from tests.support.softhsm import require_softhsm

pytestmark = pytest.mark.integration

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    require_softhsm()
    for name in list(os.environ):
        if name.startswith("DPG_") or name == "SOFTHSM2_CONF":
            monkeypatch.delenv(name)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def dpg(data_dir: Path) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, env: Mapping[str, str] | None = None) -> Result:
        environment = {"DPG_DATA_DIR": str(data_dir), **(env or {})}
        return runner.invoke(app, list(args), env=environment)

    return invoke


@pytest.fixture
def initialised(dpg: Invoke) -> str:
    """Runs ``dpg hsm init --json`` and returns the PIN from the file it names."""
    result = dpg("hsm", "init", "--json")
    assert result.exit_code == 0, result.output
    pin = Path(json.loads(result.stdout)["userPinFile"]).read_text().strip()
    assert pin
    assert pin not in result.output
    return pin


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestHsmInit:
    def test_init_creates_private_token_and_never_prints_the_pin(
        self, dpg: Invoke, data_dir: Path
    ) -> None:
        result = dpg("hsm", "init")
        assert result.exit_code == 0, result.output
        hsm = data_dir / "hsm"
        pin = (hsm / "user.pin").read_text().strip()
        assert pin not in result.output
        assert str(hsm / "user.pin") in result.stdout
        assert len(pin) >= 20
        assert _mode(hsm) == 0o700
        assert _mode(hsm / "tokens") == 0o700
        for name in ("user.pin", "so.pin", "softhsm2.conf"):
            assert _mode(hsm / name) == 0o600
        assert f"directories.tokendir = {hsm / 'tokens'}" in (hsm / "softhsm2.conf").read_text()
        assert "dpg-kek-1" in result.stdout

        again = dpg("hsm", "init")
        assert again.exit_code == 0, again.output
        assert "already initialised" in again.stdout
        assert pin not in again.output

    def test_init_json_reports_paths_not_the_pin(self, dpg: Invoke, data_dir: Path) -> None:
        result = dpg("hsm", "init", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["created"] is True
        assert report["kekCreated"] is True
        assert report["tokenLabel"] == "dpg"
        assert report["userPinFile"] == str(data_dir / "hsm" / "user.pin")
        assert (data_dir / "hsm" / "user.pin").read_text().strip() not in result.stdout
        again = json.loads(dpg("hsm", "init", "--json").stdout)
        assert again["created"] is False

    def test_init_uses_configured_labels(self, dpg: Invoke) -> None:
        env = {"DPG_HSM__TOKEN_LABEL": "shop-dev", "DPG_HSM__KEK_LABEL": "shop-kek-1"}
        assert dpg("hsm", "init", env=env).exit_code == 0
        status = dpg("hsm", "status", "--json", env=env)
        assert status.exit_code == 0, status.output
        report = json.loads(status.stdout)
        assert report["tokenLabel"] == "shop-dev"
        assert report["kekLabel"] == "shop-kek-1"
        assert report["kekPresent"] is True

    def test_init_refuses_a_module_that_is_not_softhsm(self, dpg: Invoke, tmp_path: Path) -> None:
        module = tmp_path / "vendor_pkcs11.so"
        module.write_bytes(b"")
        result = dpg("hsm", "init", env={"DPG_HSM__MODULE": str(module)})
        assert result.exit_code == EXIT_CONFIG
        assert "SoftHSM2" in result.output


class TestHsmStatus:
    def test_status_shows_token_kek_and_mechanisms(self, dpg: Invoke, initialised: str) -> None:
        result = dpg("hsm", "status", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["tokenLabel"] == "dpg"
        assert report["module"] == "/usr/lib/softhsm/libsofthsm2.so"
        assert report["canSign"] is True
        assert report["kekPresent"] is True
        assert report["keks"] == ["dpg-kek-1"]
        assert report["hotKeys"] == []
        assert "ECDSA" in report["mechanisms"]
        assert "AES_GCM" in report["mechanisms"]
        table = dpg("hsm", "status")
        assert table.exit_code == 0, table.output
        assert "dpg-kek-1 (present)" in table.stdout
        assert initialised not in table.output

    def test_status_reads_pin_from_environment_before_dev_file(
        self, dpg: Invoke, initialised: str
    ) -> None:
        ok = dpg("hsm", "status", "--json", env={"DPG_HSM_PIN": initialised})
        assert ok.exit_code == 0, ok.output

    def test_wrong_pin_fails_with_clear_message_without_the_pin(
        self, dpg: Invoke, initialised: str
    ) -> None:
        wrong = "definitely-not-the-pin-93b1"
        result = dpg("hsm", "status", env={"DPG_HSM_PIN": wrong})
        assert result.exit_code == EXIT_FAILED
        assert "refused the user PIN" in result.output
        assert "DPG_HSM_PIN" in result.output
        assert wrong not in result.output
        assert initialised not in result.output

    def test_custom_pin_variable_is_read_when_configured(
        self, dpg: Invoke, initialised: str
    ) -> None:
        env = {"DPG_HSM__PIN_ENV": "SHOP_HSM_PIN", "SHOP_HSM_PIN": initialised}
        assert dpg("hsm", "status", env=env).exit_code == 0

    def test_pin_file_setting_wins_when_set(
        self, dpg: Invoke, initialised: str, tmp_path: Path
    ) -> None:
        pin_file = tmp_path / "pin"
        pin_file.write_text("wrong-one\n")
        pin_file.chmod(0o600)
        env = {"DPG_HSM__PIN_FILE": str(pin_file), "DPG_HSM_PIN": initialised}
        result = dpg("hsm", "status", env=env)
        assert result.exit_code == EXIT_FAILED
        assert str(pin_file) in result.output

    def test_unknown_token_label_is_unavailable(self, dpg: Invoke, initialised: str) -> None:
        result = dpg("hsm", "status", env={"DPG_HSM__TOKEN_LABEL": "not-there"})
        assert result.exit_code == EXIT_UNAVAILABLE
        assert "not-there" in result.output

    def test_no_pin_anywhere_is_a_config_error(self, dpg: Invoke) -> None:
        result = dpg("hsm", "status")  # no token, no PIN file, no DPG_HSM_PIN
        assert result.exit_code == EXIT_CONFIG
        assert "no HSM PIN: set the environment variable DPG_HSM_PIN" in result.output

    def test_pin_is_never_a_command_line_option(self, dpg: Invoke, initialised: str) -> None:
        result = dpg("hsm", "status", "--pin", initialised)
        assert result.exit_code == EXIT_USAGE

    def test_pin_in_settings_is_refused(self, dpg: Invoke, initialised: str) -> None:
        result = dpg("hsm", "status", env={"DPG_HSM__PIN": initialised})
        assert result.exit_code == EXIT_CONFIG
        assert initialised not in result.output


class TestHsmKeys:
    def test_keygen_then_keys_lists_public_key_and_protection(
        self, dpg: Invoke, initialised: str
    ) -> None:
        created = dpg("hsm", "keygen", "hot:BTC:regtest", "--json")
        assert created.exit_code == 0, created.output
        public = json.loads(created.stdout)["publicKey"]
        PublicKey(bytes.fromhex(public))  # a valid compressed point
        listed = dpg("hsm", "keys", "--json")
        assert listed.exit_code == 0, listed.output
        assert json.loads(listed.stdout) == [
            {
                "label": "hot:BTC:regtest",
                "publicKey": public,
                "sensitive": True,
                "extractable": False,
                "neverExtractable": True,
            }
        ]
        table = dpg("hsm", "keys")
        assert "non-extractable" in table.stdout
        assert public in table.stdout
        status = json.loads(dpg("hsm", "status", "--json").stdout)
        assert status["hotKeys"] == ["hot:BTC:regtest"]

    def test_keygen_refuses_existing_label(self, dpg: Invoke, initialised: str) -> None:
        assert dpg("hsm", "keygen", "hot:ETH:anvil").exit_code == 0
        again = dpg("hsm", "keygen", "hot:ETH:anvil")
        assert again.exit_code == EXIT_FAILED
        assert "already holds" in again.output

    def test_keygen_refuses_malformed_label(self, dpg: Invoke, initialised: str) -> None:
        result = dpg("hsm", "keygen", "hot key")
        assert result.exit_code == EXIT_FAILED
        assert "label" in result.output

    def test_keys_says_none_when_token_is_empty(self, dpg: Invoke, initialised: str) -> None:
        result = dpg("hsm", "keys")
        assert result.exit_code == 0, result.output
        assert "no hot keys" in result.output
