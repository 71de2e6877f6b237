"""HD keys from an opened seed: derive, use, wipe, all within one call.

The seed arrives as the HSM's plaintext; :func:`with_child_key` derives the node at ``path``
one level at a time with the domain's BIP32 (``dpgnode.domain.custody.bip32``), wiping each
parent's scalar and chain code as soon as its child exists, hands the child's private key to
``use`` and wipes it afterwards, whatever ``use`` does. See :mod:`.wipe` for what wiping can
and cannot reach in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from coincurve import PrivateKey

from dpgnode.domain.custody.bip32 import ExtendedPrivateKey, master_from_seed, parse_path
from dpgnode.domain.custody.networks import KEY_VERSIONS_BY_INT, KeyVersion, Network
from dpgnode.errors import ValidationError

from .wipe import wipe

T = TypeVar("T")


def parse_hd_path(path: str) -> tuple[int, ...]:
    """Child indices of ``path`` (``ValidationError`` naming ``path`` when malformed)."""
    if not isinstance(path, str) or not path.startswith("m"):
        raise ValidationError("an HD key path starts at the master key: m/...", field="path")
    return parse_path(path, field="path")


def key_version(version: bytes) -> KeyVersion:
    """The SLIP-132 public version for 4 version bytes (xpub, zpub, tpub, vpub ...)."""
    if not isinstance(version, bytes) or len(version) != 4:
        raise ValidationError("an extended key version is 4 bytes", field="version")
    known = KEY_VERSIONS_BY_INT.get(int.from_bytes(version, "big"))
    if known is None:
        raise ValidationError("unknown extended key version", field="version")
    if known.private:
        raise ValidationError(
            f"{known.prefix} is a private key version; the signer exports public keys only",
            field="version",
        )
    return known


def derive(seed: bytes, path: Sequence[int], network: Network) -> ExtendedPrivateKey:
    """The node at ``path``; every ancestor's secret and chain code is wiped on the way."""
    node = master_from_seed(seed, network)
    for index in path:
        try:
            child = node.child(index)
        finally:
            wipe(node.secret, node.chain_code)
        node = child
    return node


def with_child_key(seed: bytes, path: Sequence[int], use: Callable[[PrivateKey], T]) -> T:
    """Call ``use`` with the private key at ``path`` of ``seed``, then wipe that key.

    The network only picks default serialisation versions, so mainnet is as good as any here.
    """
    node = derive(seed, path, Network.MAINNET)
    try:
        return use(PrivateKey(node.secret))
    finally:
        wipe(node.secret, node.chain_code)


def account_xpub(seed: bytes, path: Sequence[int], version: KeyVersion) -> str:
    """The extended public key at ``path``, serialised with ``version``."""
    network = Network.TESTNET if version.test else Network.MAINNET
    node = derive(seed, path, network)
    try:
        return node.public().serialize(version)
    finally:
        wipe(node.secret, node.chain_code)
