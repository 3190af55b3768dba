"""Hand-made JSON Web Tokens and key sets for the OAUTHBEARER tests, with `cryptography` alone.

A token is JWS compact serialisation (RFC 7515): base64url without padding of the JSON header
and of the JSON claims, joined by a dot, then a dot and the base64url signature over those first
two parts. The signature depends on the key: RS256 is RSASSA-PKCS1-v1_5 with SHA-256, ES256 is
ECDSA on P-256 with SHA-256 written as the raw 64 bytes r||s (not DER), EdDSA is Ed25519
(RFC 7518, RFC 8037). A JWKS file lists the public keys as JWKs, each with a `kid` that tokens
name in their header. Tokens that must be refused are built by the same code: an expired one,
one signed by a foreign key under a trusted kid, an unsigned `alg: none` one.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey]
PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey]

P256_COORDINATE_BYTES = 32


def b64url(data: bytes) -> str:
    """base64url without padding, as JWS uses everywhere."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def json_part(value: dict) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


# ---------------------------------------------------------------------------------------------
# Keys


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def alg_of(key: PrivateKey | PublicKey) -> str:
    """The JWS algorithm a key signs with."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RS256"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"ES256 needs a P-256 key, not {key.curve.name}")
        return "ES256"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "EdDSA"
    raise TypeError(f"no JWS algorithm for {type(key).__name__}")


def _uint(value: int) -> bytes:
    """A JWK unsigned integer: big-endian, shortest form."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def public_jwk(key: PrivateKey | PublicKey, kid: str | None) -> dict:
    """The JWK of a key's public half (RFC 7517/7518/8037), with `alg` and `use: sig`."""
    public = key.public_key() if hasattr(key, "private_bytes") else key
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        jwk = {"kty": "RSA", "n": b64url(_uint(numbers.n)), "e": b64url(_uint(numbers.e))}
    elif isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        jwk = {"kty": "EC", "crv": "P-256",
               "x": b64url(numbers.x.to_bytes(P256_COORDINATE_BYTES, "big")),
               "y": b64url(numbers.y.to_bytes(P256_COORDINATE_BYTES, "big"))}
    elif isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    else:
        raise TypeError(f"no JWK for {type(public).__name__}")
    jwk.update({"alg": alg_of(public), "use": "sig"})
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def jwks(keys: dict[str, PrivateKey | PublicKey]) -> dict:
    """A JWK set {"keys": [...]} of the public halves of `keys`, keyed by kid."""
    return {"keys": [public_jwk(key, kid) for kid, key in keys.items()]}


def public_key_from_jwk(jwk: dict) -> PublicKey:
    """The inverse of public_jwk (used to check that helper, and as a verifier would)."""
    if jwk["kty"] == "RSA":
        n = int.from_bytes(b64url_decode(jwk["n"]), "big")
        e = int.from_bytes(b64url_decode(jwk["e"]), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if jwk["kty"] == "EC" and jwk["crv"] == "P-256":
        x = int.from_bytes(b64url_decode(jwk["x"]), "big")
        y = int.from_bytes(b64url_decode(jwk["y"]), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    if jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    raise ValueError(f"unsupported JWK {jwk.get('kty')}/{jwk.get('crv')}")


def public_pem(key: PrivateKey | PublicKey) -> bytes:
    """The public half as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo)."""
    public = key.public_key() if hasattr(key, "private_bytes") else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# ---------------------------------------------------------------------------------------------
# Tokens


def claims(sub: str, lifetime_s: float = 300, now: float | None = None, **extra) -> dict:
    """Registered claims for `sub`: issued now, expiring after `lifetime_s` (negative: already
    expired), plus `extra` (aud, iss, nbf...; a value of None drops that claim)."""
    now = time.time() if now is None else now
    body = {"sub": sub, "iat": int(now), "exp": int(now + lifetime_s), **extra}
    return {k: v for k, v in body.items() if v is not None}


def sign(key: PrivateKey, signing_input: bytes) -> bytes:
    """The JWS signature bytes of `signing_input` with `key` (its algorithm follows the key)."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg_of(key)  # P-256 only
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(P256_COORDINATE_BYTES, "big") + s.to_bytes(P256_COORDINATE_BYTES, "big")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(signing_input)
    raise TypeError(f"cannot sign with {type(key).__name__}")


def encode(body: dict, key: PrivateKey, kid: str | None = None, header: dict | None = None) -> str:
    """A signed compact JWS of `body`: header {"alg", "typ": "JWT", "kid"} plus `header`'s
    entries (which may override alg, to build a lying token)."""
    head = {"alg": alg_of(key), "typ": "JWT"}
    if kid is not None:
        head["kid"] = kid
    head.update(header or {})
    signing_input = f"{json_part(head)}.{json_part(body)}"
    return f"{signing_input}.{b64url(sign(key, signing_input.encode('ascii')))}"


def unsigned(body: dict, kid: str | None = None) -> str:
    """An `alg: none` token (RFC 7519 section 6): empty signature after the last dot."""
    head = {"alg": "none", "typ": "JWT"}
    if kid is not None:
        head["kid"] = kid
    return f"{json_part(head)}.{json_part(body)}."


def decode_unverified(token: str) -> tuple[dict, dict, bytes]:
    """(header, claims, signature) of a compact JWS, without checking anything."""
    head, body, signature = token.split(".")
    return json.loads(b64url_decode(head)), json.loads(b64url_decode(body)), b64url_decode(signature)


def verify(token: str, public: PublicKey) -> dict:
    """Checks the signature of `token` against `public` as a verifier must (the algorithm comes
    from the key, and the header must agree); returns the claims. Raises
    cryptography.exceptions.InvalidSignature or ValueError."""
    head, body, signature = decode_unverified(token)
    if head.get("alg") != alg_of(public):
        raise ValueError(f"header alg {head.get('alg')!r} does not match the {alg_of(public)} key")
    signing_input = token.rsplit(".", 1)[0].encode("ascii")
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(public, ec.EllipticCurvePublicKey):
        if len(signature) != 2 * P256_COORDINATE_BYTES:
            raise ValueError(f"ES256 signature is {len(signature)} bytes, not 64")
        r = int.from_bytes(signature[:P256_COORDINATE_BYTES], "big")
        s = int.from_bytes(signature[P256_COORDINATE_BYTES:], "big")
        public.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
    else:
        public.verify(signature, signing_input)
    return body


def oauthbearer_message(token: str) -> bytes:
    """The OAUTHBEARER client initial response (RFC 7628) that clients send in SaslAuthenticate."""
    return f"n,,\x01auth=Bearer {token}\x01\x01".encode()
