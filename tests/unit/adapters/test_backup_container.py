"""The encrypted backup container: round trips, and every kind of damage detected.

In memory (``BytesIO``); the key slots use real scrypt (at its cheapest allowed cost) and
real ECDH, with the HSM's half played by a software P-256 key (the SoftHSM2 version of
this is in ``tests/integration/backup/test_hsm_backups.py``).
"""

from __future__ import annotations

import io
import struct
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from dpgnode.adapters.backup.archive import read_members, write_members
from dpgnode.adapters.backup.container import (
    MAGIC,
    TAG_BYTES,
    DecryptingReader,
    EncryptingWriter,
    Header,
    read_header,
)
from dpgnode.adapters.backup.keys import (
    Agreement,
    EcdhOpener,
    EcdhRecipient,
    KnownKey,
    PassphraseKey,
    new_data_key,
)
from dpgnode.errors import ConfigError, ValidationError

MANIFEST = {"format": 1, "note": "test"}
PASSPHRASE = "correct horse battery staple"


def seal(payload: bytes, *, chunk: int = 64, key: bytes | None = None) -> tuple[bytes, bytes]:
    """The container holding ``payload`` and its data key."""
    data_key = key or new_data_key()
    out = io.BytesIO()
    writer = EncryptingWriter(out, data_key, Header({"kind": "test"}, MANIFEST, chunk))
    for start in range(0, len(payload), 37):  # odd-sized writes cross chunk boundaries
        writer.write(payload[start:start + 37])
    writer.close()
    assert writer.plaintext_digest is not None
    return out.getvalue(), data_key


def open_all(blob: bytes, data_key: bytes) -> bytes:
    source = io.BytesIO(blob)
    header, digest = read_header(source)
    reader = DecryptingReader(source, data_key, header, digest)
    data = reader.read()
    assert reader.finished
    return data


def frames(blob: bytes) -> tuple[bytes, list[bytes]]:
    """Split a container into its header bytes and its framed chunks."""
    (length,) = struct.unpack(">I", blob[10:14])
    offset = 14 + length
    head, chunks = blob[:offset], []
    while offset < len(blob):
        (size,) = struct.unpack(">I", blob[offset:offset + 4])
        chunks.append(blob[offset:offset + 4 + size])
        offset += 4 + size
    return head, chunks


class TestRoundTrip:
    @pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128, 129, 1000])
    def test_payload_comes_back_when_opened_with_its_key(self, size: int) -> None:
        payload = bytes(range(256)) * 4
        blob, key = seal(payload[:size])
        assert blob.startswith(MAGIC)
        assert open_all(blob, key) == payload[:size]

    @settings(max_examples=60, deadline=None)
    @given(payload=st.binary(max_size=700), chunk=st.integers(16, 200))
    def test_any_payload_and_chunk_size_round_trip(self, payload: bytes, chunk: int) -> None:
        blob, key = seal(payload, chunk=chunk)
        assert open_all(blob, key) == payload
        _, chunks = frames(blob)
        assert len(chunks) == max(1, -(-len(payload) // chunk))

    def test_tar_members_come_back_when_streamed_through(self, tmp_path: Path) -> None:
        database, config = tmp_path / "db", tmp_path / "cfg"
        database.write_bytes(b"\x00sqlite" * 5000)
        config.write_text("[api]\nport = 1\n")
        out = io.BytesIO()
        key = new_data_key()
        writer = EncryptingWriter(out, key, Header({}, MANIFEST, 1024))
        write_members(writer, [("database/dpg.sqlite3", database), ("config/dpg.toml", config)])
        writer.close()
        source = io.BytesIO(out.getvalue())
        header, digest = read_header(source)
        reader = DecryptingReader(source, key, header, digest)
        targets = {"database/dpg.sqlite3": tmp_path / "db2", "config/dpg.toml": tmp_path / "cfg2"}
        found = read_members(reader, targets)
        reader.drain()
        assert reader.finished
        assert found == ["database/dpg.sqlite3", "config/dpg.toml"]
        assert (tmp_path / "db2").read_bytes() == database.read_bytes()
        assert (tmp_path / "cfg2").stat().st_mode & 0o777 == 0o600

    def test_unexpected_tar_member_is_refused_when_extracted(self, tmp_path: Path) -> None:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo("../../etc/passwd")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
        raw.seek(0)
        with pytest.raises(ValidationError, match="unexpected entry"):
            read_members(raw, {"database/dpg.sqlite3": tmp_path / "db"})
        assert list(tmp_path.iterdir()) == []


class TestDamage:
    payload = bytes(range(256)) * 2  # 512 bytes: 8 chunks of 64

    def sealed(self) -> tuple[bytes, bytes]:
        return seal(self.payload)

    def test_flipped_bit_in_a_chunk_is_detected_when_opened(self) -> None:
        blob, key = self.sealed()
        head, chunks = frames(blob)
        damaged = bytearray(chunks[3])
        damaged[10] ^= 1
        with pytest.raises(ValidationError, match="chunk 3 does not authenticate"):
            open_all(head + b"".join(chunks[:3]) + bytes(damaged) + b"".join(chunks[4:]), key)

    def test_edited_manifest_is_detected_when_opened(self) -> None:
        blob, key = self.sealed()
        edited = blob.replace(b'"note":"test"', b'"note":"TEST"')
        assert edited != blob
        with pytest.raises(ValidationError, match="chunk 0 does not authenticate"):
            open_all(edited, key)

    def test_reordered_chunks_are_detected_when_opened(self) -> None:
        blob, key = self.sealed()
        head, chunks = frames(blob)
        chunks[1], chunks[2] = chunks[2], chunks[1]
        with pytest.raises(ValidationError, match="chunk 1"):
            open_all(head + b"".join(chunks), key)

    def test_duplicated_chunk_is_detected_when_opened(self) -> None:
        blob, key = self.sealed()
        head, chunks = frames(blob)
        with pytest.raises(ValidationError, match="damaged"):
            open_all(head + b"".join([*chunks[:3], chunks[2], *chunks[3:]]), key)

    @pytest.mark.parametrize("keep", [1, 4, 7])
    def test_truncation_at_a_chunk_boundary_is_detected_when_opened(self, keep: int) -> None:
        blob, key = self.sealed()
        head, chunks = frames(blob)
        with pytest.raises(ValidationError, match="last chunk does not authenticate"):
            open_all(head + b"".join(chunks[:keep]), key)

    @pytest.mark.parametrize("cut", [1, 3, 5, TAG_BYTES + 20])
    def test_truncation_inside_a_chunk_is_detected_when_opened(self, cut: int) -> None:
        blob, key = self.sealed()
        with pytest.raises(ValidationError, match=r"truncated|damaged"):
            open_all(blob[:-cut], key)

    def test_truncation_inside_header_is_detected_when_read(self) -> None:
        blob, _ = self.sealed()
        with pytest.raises(ValidationError, match="truncated inside its header"):
            read_header(io.BytesIO(blob[:20]))

    def test_trailing_bytes_are_detected_when_opened(self) -> None:
        blob, key = self.sealed()
        _, chunks = frames(blob)
        with pytest.raises(ValidationError, match=r"damaged|trailing"):
            open_all(blob + chunks[-1], key)
        with pytest.raises(ValidationError, match="trailing"):
            open_all(blob + b"\x00\x00", key)

    def test_wrong_data_key_is_refused_when_opened(self) -> None:
        blob, _ = self.sealed()
        with pytest.raises(ValidationError, match="chunk 0"):
            open_all(blob, new_data_key())

    @pytest.mark.parametrize(("offset", "value", "message"), [
        (0, b"\x00", "bad magic"), (8, b"\x00\x02", "version 2"),
        (10, b"\x7f\x00\x00\x00", "larger than 64 KiB"),
    ])
    def test_malformed_prefix_is_refused_when_read(
        self, offset: int, value: bytes, message: str
    ) -> None:
        blob = bytearray(self.sealed()[0])
        blob[offset:offset + len(value)] = value
        with pytest.raises(ValidationError, match=message):
            read_header(io.BytesIO(bytes(blob)))


class TestKeySlots:
    def test_passphrase_opens_its_slot_and_another_does_not(self) -> None:
        key = new_data_key()
        slot = PassphraseKey(PASSPHRASE, log_n=14).seal(key)
        assert slot["kind"] == "passphrase"
        assert PASSPHRASE not in repr(slot)
        assert PassphraseKey(PASSPHRASE).open(slot) == key
        with pytest.raises(ValidationError, match="passphrase does not open") as wrong:
            PassphraseKey(PASSPHRASE + "!").open(slot)
        assert wrong.value.details["field"] == "passphrase"

    @pytest.mark.parametrize(("name", "value"), [("logN", 30), ("r", 64), ("p", 0), ("logN", "x")])
    def test_costly_or_bad_scrypt_parameters_are_refused_when_opened(
        self, name: str, value: object
    ) -> None:
        slot = {**PassphraseKey(PASSPHRASE, log_n=14).seal(new_data_key()), name: value}
        with pytest.raises(ValidationError, match="out of range"):
            PassphraseKey(PASSPHRASE).open(slot)

    def test_short_passphrase_is_refused(self) -> None:
        with pytest.raises(ConfigError, match="at least 12"):
            PassphraseKey("short")

    def test_ecdh_slot_opens_only_with_the_recipients_private_key(self) -> None:
        recipient = ec.generate_private_key(ec.SECP256R1())
        stranger = ec.generate_private_key(ec.SECP256R1())
        key = new_data_key()
        slot = EcdhRecipient(recipient.public_key(), "dpg-backup-1").seal(key)

        def agree_with(private: ec.EllipticCurvePrivateKey) -> Agreement:  # the HSM's role
            def agree(label: str, point: bytes) -> bytes:
                assert label == "dpg-backup-1"
                peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
                return private.exchange(ec.ECDH(), peer)
            return agree

        assert EcdhOpener(agree_with(recipient)).open(slot) == key
        with pytest.raises(ValidationError, match="does not open this backup"):
            EcdhOpener(agree_with(stranger)).open(slot)
        with pytest.raises(ValidationError, match="keyed by 'hsm'"):
            PassphraseKey(PASSPHRASE).open(slot)

    def test_swapped_recipient_in_slot_is_detected_when_opened(self) -> None:
        recipient = ec.generate_private_key(ec.SECP256R1())
        slot = EcdhRecipient(recipient.public_key(), "dpg-backup-1").seal(new_data_key())
        other = EcdhRecipient(ec.generate_private_key(ec.SECP256R1()).public_key(), "x")
        forged = {**slot, "recipient": other.seal(new_data_key())["recipient"]}

        def agree(label: str, point: bytes) -> bytes:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
            return recipient.exchange(ec.ECDH(), peer)

        with pytest.raises(ValidationError):
            EcdhOpener(agree).open(forged)

    def test_known_key_never_shows_the_key(self) -> None:
        key = new_data_key()
        assert KnownKey(key).open({}) == key
        assert key.hex() not in repr(KnownKey(key))
