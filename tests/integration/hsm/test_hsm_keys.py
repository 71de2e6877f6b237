"""R23: keys generated in the HSM stay in it; tokens are chosen by label."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pkcs11
import pkcs11.exceptions as p11
import pytest
from coincurve import PublicKey
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.types import WrapMixin

from dpgnode.adapters.hsm import PinSource, Pkcs11Signer, TokenLocation
from dpgnode.adapters.hsm.objects import SECP256K1_PARAMS
from dpgnode.errors import ConflictError, NotFoundError, UnavailableError, ValidationError
from dpgnode.ports.signer import HotKeyRef, Signer
from tests.integration.hsm.tokens import KEK, OTHER_PIN, OTHER_TOKEN, TOKEN, write_pin
from tests.support.softhsm import SoftHsm

pytestmark = pytest.mark.integration


def _private(session: pkcs11.Session, label: str) -> pkcs11.PrivateKey:
    key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, label=label)
    assert isinstance(key, pkcs11.PrivateKey)
    return key


def test_signer_satisfies_the_port_when_type_checked(signer: Pkcs11Signer) -> None:
    port: Signer = signer  # mypy checks the structural match; this checks it at run time
    assert port.status().token_label == TOKEN


class TestGeneratedKeys:
    def test_private_half_reads_back_sensitive_and_never_extractable_when_generated(
        self, signer: Pkcs11Signer, raw_session: pkcs11.Session, label: str
    ) -> None:
        signer.generate_hot_key(label)
        attributes = _private(raw_session, label).get_attributes(
            [
                Attribute.SENSITIVE,
                Attribute.EXTRACTABLE,
                Attribute.NEVER_EXTRACTABLE,
                Attribute.ALWAYS_SENSITIVE,
                Attribute.TOKEN,
                Attribute.PRIVATE,
                Attribute.EC_PARAMS,
            ]
        )
        assert attributes[Attribute.SENSITIVE] is True
        assert attributes[Attribute.EXTRACTABLE] is False
        assert attributes[Attribute.NEVER_EXTRACTABLE] is True
        assert attributes[Attribute.ALWAYS_SENSITIVE] is True
        assert attributes[Attribute.TOKEN] is True
        assert attributes[Attribute.PRIVATE] is True
        assert bytes(attributes[Attribute.EC_PARAMS]) == SECP256K1_PARAMS

    def test_reading_the_private_value_fails_when_key_is_sensitive(
        self, signer: Pkcs11Signer, raw_session: pkcs11.Session, label: str
    ) -> None:
        signer.generate_hot_key(label)
        with pytest.raises(p11.AttributeSensitive):
            _private(raw_session, label)[Attribute.VALUE]

    @pytest.mark.parametrize("mechanism", [Mechanism.AES_KEY_WRAP_PAD, Mechanism.AES_KEY_WRAP])
    def test_wrapping_the_private_key_fails_when_key_is_non_extractable(
        self,
        signer: Pkcs11Signer,
        raw_session: pkcs11.Session,
        label: str,
        mechanism: Mechanism,
    ) -> None:
        signer.generate_hot_key(label)
        wrapper = cast(
            WrapMixin,
            raw_session.generate_key(
                KeyType.AES, 256, capabilities=MechanismFlag.WRAP | MechanismFlag.UNWRAP
            ),
        )
        with pytest.raises(p11.KeyUnextractable):
            wrapper.wrap_key(_private(raw_session, label), mechanism=mechanism)
        # Control: the same wrapper does export a key that was made extractable.
        exportable = raw_session.generate_key(
            KeyType.AES, 256, template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False}
        )
        assert len(wrapper.wrap_key(exportable, mechanism=mechanism)) >= 40

    def test_kek_cannot_be_read_or_wrapped_when_created(
        self, signer: Pkcs11Signer, raw_session: pkcs11.Session
    ) -> None:
        kek = raw_session.get_key(object_class=ObjectClass.SECRET_KEY, label=KEK)
        assert signer.key_protection(KEK) == {
            "token": True,
            "private": True,
            "sensitive": True,
            "always_sensitive": True,
            "extractable": False,
            "never_extractable": True,
        }
        with pytest.raises(p11.AttributeSensitive):
            kek[Attribute.VALUE]
        wrapper = cast(
            WrapMixin, raw_session.generate_key(KeyType.AES, 256, capabilities=MechanismFlag.WRAP)
        )
        with pytest.raises(p11.KeyUnextractable):
            wrapper.wrap_key(kek, mechanism=Mechanism.AES_KEY_WRAP)

    def test_public_key_is_the_tokens_point_when_generated(
        self, signer: Pkcs11Signer, raw_session: pkcs11.Session, label: str
    ) -> None:
        public = signer.generate_hot_key(label)
        point = raw_session.get_key(
            object_class=ObjectClass.PUBLIC_KEY, key_type=KeyType.EC, label=label
        )[Attribute.EC_POINT]
        assert len(public) == 33
        assert PublicKey(public).format(compressed=False) == bytes(point)[-65:]
        assert signer.public_key(HotKeyRef(label)) == public

    def test_existing_label_is_refused_when_generating(
        self, signer: Pkcs11Signer, label: str
    ) -> None:
        first = signer.generate_hot_key(label)
        with pytest.raises(ConflictError, match="already holds"):
            signer.generate_hot_key(label)
        with pytest.raises(ConflictError):
            signer.generate_hot_key(KEK)
        assert signer.public_key(HotKeyRef(label)) == first  # the first key is untouched

    @pytest.mark.parametrize("bad", ["", " hot", "hot key", "x" * 65, "hot:BTC\n", "é"])
    def test_malformed_label_is_refused_when_generating(
        self, signer: Pkcs11Signer, bad: str
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            signer.generate_hot_key(bad)
        assert caught.value.field == "label"

    def test_unknown_label_is_not_found_when_signing(self, signer: Pkcs11Signer) -> None:
        with pytest.raises(NotFoundError):
            signer.sign_ecdsa(HotKeyRef("hot:NOPE:none"), bytes(32))

    def test_status_lists_hot_keys_with_public_keys_when_present(
        self, signer: Pkcs11Signer, label: str
    ) -> None:
        public = signer.generate_hot_key(label)
        report = signer.status()
        assert (label, public) in {(key.label, key.public_key) for key in report.hot_keys}
        assert report.can_sign
        assert report.kek_present
        assert KEK in report.keks
        assert {"ECDSA", "EC_KEY_PAIR_GEN", "AES_GCM", "AES_KEY_GEN"} <= set(report.mechanisms)
        assert report.module == str(signer.location.module)


class TestTokenSelection:
    def test_signer_uses_the_token_with_its_label_when_several_exist(
        self, signer: Pkcs11Signer, softhsm: SoftHsm, tmp_path: Path, label: str
    ) -> None:
        signer.generate_hot_key(label)
        other_location = TokenLocation(softhsm.module, OTHER_TOKEN, softhsm.conf)
        pin = PinSource(file=write_pin(tmp_path / "other.pin", OTHER_PIN))
        with Pkcs11Signer(other_location, pin, kek_label="other-kek") as other:
            report = other.status()
            assert report.token_label == OTHER_TOKEN
            assert label not in {key.label for key in report.hot_keys}
            with pytest.raises(NotFoundError):
                other.public_key(HotKeyRef(label))
            other_public = other.generate_hot_key(label)  # same label, other token: allowed
        assert signer.public_key(HotKeyRef(label)) != other_public
        assert {TOKEN, OTHER_TOKEN} <= set(softhsm.token_labels())

    def test_missing_token_is_unavailable_when_label_matches_none(
        self, softhsm: SoftHsm, pin_file: Path
    ) -> None:
        location = TokenLocation(softhsm.module, "no-such-token", softhsm.conf)
        with (
            Pkcs11Signer(location, PinSource(file=pin_file), kek_label=KEK) as missing,
            pytest.raises(UnavailableError, match="no-such-token"),
        ):
            missing.status()
