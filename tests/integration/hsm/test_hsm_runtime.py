"""Process-wide PKCS#11 state: a SoftHSM2 configuration switch or a new token strands no signer."""

from __future__ import annotations

import os
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import KeyType, ObjectClass

from dpgnode.adapters.hsm import PinSource, Pkcs11Signer, TokenLocation
from dpgnode.adapters.hsm.runtime import LOCK, RUNTIME
from dpgnode.errors import AuthenticationError, ConfigError, NotFoundError, UnavailableError
from dpgnode.ports.signer import HotKeyRef
from tests.integration.hsm.tokens import KEK, write_pin
from tests.support.softhsm import SoftHsm

pytestmark = pytest.mark.integration


def test_signer_signs_again_when_another_softhsm_configuration_was_loaded_meanwhile(
    signer: Pkcs11Signer, label: str, tmp_path: Path
) -> None:
    public = signer.generate_hot_key(label)
    elsewhere = SoftHsm.create(tmp_path / "elsewhere")
    elsewhere.create_token("elsewhere", "elsewhere-pin")
    location = TokenLocation(elsewhere.module, "elsewhere", elsewhere.conf)
    pin = PinSource(file=write_pin(tmp_path / "pin", "elsewhere-pin"))
    with Pkcs11Signer(location, pin, kek_label=KEK) as other:
        assert other.status().token_label == "elsewhere"  # module re-initialised
        assert label not in {key.label for key in other.status().hot_keys}
    # The first signer's session went stale with the re-initialisation; it logs in anew.
    assert signer.public_key(HotKeyRef(label)) == public
    signer.sign_ecdsa(HotKeyRef(label), bytes(range(32)))


def test_token_created_after_loading_is_found_when_selected_by_label(
    signer: Pkcs11Signer, softhsm: SoftHsm, tmp_path: Path
) -> None:
    signer.status()  # the module is initialised before the token exists
    softhsm.create_token("late-token", "late-pin-0001")
    location = TokenLocation(softhsm.module, "late-token", softhsm.conf)
    pin = PinSource(file=write_pin(tmp_path / "pin", "late-pin-0001"))
    with Pkcs11Signer(location, pin, kek_label=KEK) as late:
        assert late.status().token_label == "late-token"
    assert signer.status().kek_present  # and the first signer still works


def test_missing_module_is_a_config_error(tmp_path: Path, pin_file: Path) -> None:
    location = TokenLocation(tmp_path / "nope.so", "dpg", None)
    with (
        Pkcs11Signer(location, PinSource(file=pin_file), kek_label=KEK) as signer,
        pytest.raises(ConfigError, match="no PKCS#11 module"),
    ):
        signer.status()


def test_file_that_is_no_module_is_a_config_error(tmp_path: Path, pin_file: Path) -> None:
    fake = tmp_path / "fake.so"
    fake.write_bytes(b"not a shared object")
    location = TokenLocation(fake, "dpg", None)
    with (
        Pkcs11Signer(location, PinSource(file=pin_file), kek_label=KEK) as signer,
        pytest.raises(ConfigError, match="cannot load"),
    ):
        signer.status()


def test_closed_signer_refuses_to_sign(location: TokenLocation, pin_file: Path) -> None:
    signer = Pkcs11Signer(location, PinSource(file=pin_file), kek_label=KEK)
    signer.status()
    signer.close()
    signer.close()  # idempotent
    with pytest.raises(UnavailableError, match="closed"):
        signer.status()


def test_softhsm_conf_environment_is_restored_when_module_initialised(
    signer: Pkcs11Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOFTHSM2_CONF", "/nonexistent/softhsm2.conf")
    with LOCK:
        RUNTIME.refresh(signer.location)
    assert os.environ["SOFTHSM2_CONF"] == "/nonexistent/softhsm2.conf"
    assert signer.status().kek_present


def test_pin_is_still_checked_when_a_cached_key_handle_went_stale(
    signer: Pkcs11Signer, raw_session: pkcs11.Session, label: str, tmp_path: Path
) -> None:
    signer.generate_hot_key(label)
    signer.sign_ecdsa(HotKeyRef(label), bytes(32))  # the signer now caches the key's handle
    with LOCK:  # deleted by other code: the cached handle is stale, the session is not
        raw_session.get_key(
            object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, label=label
        ).destroy()
    with pytest.raises(NotFoundError):
        signer.sign_ecdsa(HotKeyRef(label), bytes(32))
    # The reconnect must be a real login with the signer's PIN: were the stale session only
    # forgotten, the next C_Login would fail as already logged in, the runtime would fall
    # back to a plain session, and a signer with any PIN at all would be let in.
    wrong = PinSource(file=write_pin(tmp_path / "wrong.pin", "not-the-user-pin"))
    with (
        Pkcs11Signer(signer.location, wrong, kek_label=KEK) as second,
        pytest.raises(AuthenticationError, match="differs"),
    ):
        second.status()
    assert signer.status().kek_present  # and the first signer carries on
