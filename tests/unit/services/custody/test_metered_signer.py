"""The metered signer counts every call by operation and outcome, and changes nothing else."""

from __future__ import annotations

import hashlib

import pytest
from coincurve import PublicKey
from prometheus_client.parser import text_string_to_metric_families

from dpgnode.adapters.metrics import PrometheusMetrics
from dpgnode.errors import IntegrityError, NotFoundError, ValidationError
from dpgnode.ports.signer import HdKeyRef, HotKeyRef, SealedSeed
from dpgnode.services.custody.metered_signer import MeteredSigner
from tests.support.memory_signer import MemorySigner

DIGEST = hashlib.sha256(b"payout").digest()


def calls(metrics: PrometheusMetrics) -> dict[tuple[str, str], float]:
    body, _ = metrics.render(None)
    return {
        (s.labels["operation"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples if s.name == "dpg_signer_calls_total"
    }


@pytest.fixture
def metered() -> tuple[MeteredSigner, PrometheusMetrics]:
    metrics = PrometheusMetrics()
    return MeteredSigner(MemorySigner(), metrics), metrics


def test_signature_is_the_inner_signers_and_counted_ok_when_signing_succeeds(
    metered: tuple[MeteredSigner, PrometheusMetrics],
) -> None:
    signer, metrics = metered
    public = signer.generate_hot_key("hot:BTC:regtest")
    signature = signer.sign_ecdsa(HotKeyRef("hot:BTC:regtest"), DIGEST)
    assert PublicKey(public).verify(signature.to_der(), DIGEST, hasher=None)
    assert calls(metrics) == {("generate_hot_key", "ok"): 1, ("sign_ecdsa", "ok"): 1}


def test_each_failure_is_counted_by_its_error_code_when_the_signer_refuses(
    metered: tuple[MeteredSigner, PrometheusMetrics],
) -> None:
    signer, metrics = metered
    with pytest.raises(NotFoundError):
        signer.sign_ecdsa(HotKeyRef("hot:missing"), DIGEST)
    with pytest.raises(ValidationError):
        signer.seal_seed(b"short", aad=b"w1")
    sealed = signer.seal_seed(bytes(32), aad=b"w1")
    tampered = SealedSeed(sealed.kek_label, sealed.nonce, sealed.ciphertext, b"w2")
    with pytest.raises(IntegrityError):
        signer.sign_schnorr(HdKeyRef(tampered, "m/86'/1'/0'/0/0"), DIGEST)
    assert calls(metrics) == {
        ("sign_ecdsa", "not_found"): 1,
        ("seal_seed", "validation_failed"): 1,
        ("seal_seed", "ok"): 1,
        ("sign_schnorr", "integrity_violation"): 1,
    }
