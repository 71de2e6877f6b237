"""The PIN comes from the environment or a 0600 file; a refused PIN is a clear error without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dpgnode.adapters.hsm import PinSource, Pkcs11Signer, TokenLocation
from dpgnode.errors import AuthenticationError, ConfigError
from tests.integration.hsm.tokens import KEK, PIN_TOKEN, PINS_PIN, TOKEN, USER_PIN, write_pin
from tests.support.softhsm import SoftHsm

pytestmark = pytest.mark.integration

ENV = "DPG_TEST_HSM_PIN"


def _message_chain(exc: BaseException) -> str:
    parts = []
    current: BaseException | None = exc
    while current is not None:
        parts.append(f"{type(current).__name__}: {current} {getattr(current, 'details', '')}")
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


class TestPinSources:
    def test_signer_logs_in_when_pin_comes_from_environment(
        self, location: TokenLocation, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(ENV, USER_PIN)
        with Pkcs11Signer(location, PinSource(env_var=ENV), kek_label=KEK) as signer:
            assert signer.status().token_label == TOKEN

    def test_signer_logs_in_when_pin_comes_from_file(
        self, location: TokenLocation, tmp_path: Path
    ) -> None:
        pin = PinSource(file=write_pin(tmp_path / "pin", USER_PIN))
        with Pkcs11Signer(location, pin, kek_label=KEK) as signer:
            assert signer.status().token_label == TOKEN

    def test_unset_variable_is_a_config_error_naming_it(
        self, location: TokenLocation, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(ENV, raising=False)
        with (
            Pkcs11Signer(location, PinSource(env_var=ENV), kek_label=KEK) as signer,
            pytest.raises(ConfigError, match=ENV),
        ):
            signer.status()

    def test_pin_file_readable_by_others_is_refused(self, tmp_path: Path) -> None:
        path = write_pin(tmp_path / "pin", USER_PIN)
        path.chmod(0o644)
        with pytest.raises(ConfigError, match="chmod 600") as caught:
            PinSource(file=path).read()
        assert USER_PIN not in _message_chain(caught.value)

    def test_missing_pin_file_is_a_config_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            PinSource(file=tmp_path / "absent").read()

    def test_empty_pin_is_a_config_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(ENV, "")
        with pytest.raises(ConfigError, match="empty"):
            PinSource(env_var=ENV).read()
        with pytest.raises(ConfigError, match="empty"):
            PinSource(file=write_pin(tmp_path / "pin", "")).read()

    def test_source_names_exactly_one_place(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError):
            PinSource()
        with pytest.raises(ConfigError):
            PinSource(env_var=ENV, file=tmp_path / "pin")

    def test_source_repr_reveals_no_pin_when_logged(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(ENV, USER_PIN)
        source = PinSource(env_var=ENV)
        assert USER_PIN not in repr(source)
        assert USER_PIN not in source.describe()


class TestRefusedPin:
    def test_wrong_pin_is_an_authentication_error_without_the_pin(
        self, softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        wrong = "wrong-pin-5e3a9c"
        monkeypatch.setenv(ENV, wrong)
        location = TokenLocation(softhsm.module, PIN_TOKEN, softhsm.conf)
        with (
            Pkcs11Signer(location, PinSource(env_var=ENV), kek_label=KEK) as signer,
            pytest.raises(AuthenticationError) as caught,
        ):
            signer.status()
        text = _message_chain(caught.value)
        assert "refused the user PIN" in caught.value.message
        assert PIN_TOKEN in caught.value.message
        assert ENV in caught.value.message  # says where the PIN came from
        assert wrong not in text
        assert PINS_PIN not in text

    def test_right_pin_logs_in_when_a_wrong_one_was_refused_before(
        self, softhsm: SoftHsm, tmp_path: Path
    ) -> None:
        location = TokenLocation(softhsm.module, PIN_TOKEN, softhsm.conf)
        bad = PinSource(file=write_pin(tmp_path / "bad", "not-the-pin"))
        with (
            Pkcs11Signer(location, bad, kek_label=KEK) as signer,
            pytest.raises(AuthenticationError),
        ):
            signer.status()
        good = PinSource(file=write_pin(tmp_path / "good", PINS_PIN))
        with Pkcs11Signer(location, good, kek_label=KEK) as signer:
            assert signer.status().token_label == PIN_TOKEN

    def test_second_signer_with_other_pin_is_refused_when_token_is_logged_in(
        self, signer: Pkcs11Signer, location: TokenLocation, tmp_path: Path
    ) -> None:
        signer.status()  # the process is now logged in to the token
        wrong = "another-pin-11aa"
        other = PinSource(file=write_pin(tmp_path / "other", wrong))
        with (
            Pkcs11Signer(location, other, kek_label=KEK) as second,
            pytest.raises(AuthenticationError, match="differs") as caught,
        ):
            second.status()
        assert wrong not in _message_chain(caught.value)
        assert USER_PIN not in _message_chain(caught.value)
        assert signer.status().token_label == TOKEN  # the first signer is unaffected

    def test_pin_never_appears_in_environment_of_children_when_read_from_file(
        self, signer: Pkcs11Signer
    ) -> None:
        signer.status()
        assert USER_PIN not in os.environ.values()
