"""Checks of the hand-made JWTs in jwt_helper.py with `cryptography`'s verifiers, so an OAUTHBEARER
test that fails points at the broker, not at a token the broker was right to refuse. No broker."""

from __future__ import annotations

import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

import jwt_helper

KEYS = {"RS256": jwt_helper.rsa_key, "ES256": jwt_helper.ec_key, "EdDSA": jwt_helper.ed25519_key}


@pytest.mark.parametrize("alg", KEYS)
def test_signed_token_verifies_and_carries_the_claims(alg):
    key = KEYS[alg]()
    body = jwt_helper.claims("orders-svc", lifetime_s=60, aud="sluice", iss="test-issuer")
    token = jwt_helper.encode(body, key, kid=f"{alg}-1")
    assert "=" not in token and "+" not in token and "/" not in token, f"not base64url without padding: {token}"
    head, decoded, signature = jwt_helper.decode_unverified(token)
    assert head == {"alg": alg, "typ": "JWT", "kid": f"{alg}-1"}
    assert decoded == body and decoded["exp"] - decoded["iat"] == 60
    if alg == "ES256":
        assert len(signature) == 64, "ES256 signatures are raw r||s, not DER"
    assert jwt_helper.verify(token, key.public_key()) == body


@pytest.mark.parametrize("alg", KEYS)
def test_jwk_and_pem_describe_the_same_public_key(alg):
    key = KEYS[alg]()
    jwk = jwt_helper.public_jwk(key, "k1")
    assert jwk["alg"] == alg and jwk["kid"] == "k1" and "d" not in jwk, jwk
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    expected = key.public_key().public_bytes(serialization.Encoding.DER, raw)
    assert jwt_helper.public_key_from_jwk(jwk).public_bytes(serialization.Encoding.DER, raw) == expected
    pem = jwt_helper.public_pem(key)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert serialization.load_pem_public_key(pem).public_bytes(serialization.Encoding.DER, raw) == expected
    token = jwt_helper.encode(jwt_helper.claims("x"), key, kid="k1")
    jwt_helper.verify(token, jwt_helper.public_key_from_jwk(jwk))
    document = json.loads(json.dumps(jwt_helper.jwks({"k1": key})))
    assert document == {"keys": [jwk]}


@pytest.mark.parametrize("alg", KEYS)
def test_foreign_key_under_the_same_kid_fails_verification(alg):
    trusted, foreign = KEYS[alg](), KEYS[alg]()
    token = jwt_helper.encode(jwt_helper.claims("x"), foreign, kid="trusted")
    with pytest.raises(InvalidSignature):
        jwt_helper.verify(token, trusted.public_key())


def test_tampered_claims_fail_verification():
    key = jwt_helper.ec_key()
    head, _, signature = jwt_helper.encode(jwt_helper.claims("alice"), key).split(".")
    forged = f"{head}.{jwt_helper.json_part(jwt_helper.claims('admin'))}.{signature}"
    with pytest.raises(InvalidSignature):
        jwt_helper.verify(forged, key.public_key())


def test_unsigned_token_has_alg_none_and_no_signature():
    token = jwt_helper.unsigned(jwt_helper.claims("x"), kid="rsa-1")
    head, _, signature = jwt_helper.decode_unverified(token)
    assert head["alg"] == "none" and signature == b"" and token.endswith(".")
    with pytest.raises(ValueError, match="does not match"):
        jwt_helper.verify(token, jwt_helper.rsa_key().public_key())


def test_claims_drop_none_and_expire_in_the_past():
    body = jwt_helper.claims("x", lifetime_s=-120, now=1_000_000, aud=None, nbf=999_000)
    assert body == {"sub": "x", "iat": 1_000_000, "exp": 999_880, "nbf": 999_000}


def test_oauthbearer_initial_response():
    assert jwt_helper.oauthbearer_message("a.b.c") == b"n,,\x01auth=Bearer a.b.c\x01\x01"
