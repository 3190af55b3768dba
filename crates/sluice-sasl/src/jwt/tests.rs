use super::*;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

const NOW: u64 = 1_800_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum Signer {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
}

impl Signer {
    fn ed() -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Signer::Ed(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
    }

    fn ec() -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Signer::Ec(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap(),
        )
    }

    fn alg(&self) -> &'static str {
        match self {
            Signer::Ed(_) => "EdDSA",
            Signer::Ec(_) => "ES256",
        }
    }

    fn jwk(&self, kid: &str) -> serde_json::Value {
        match self {
            Signer::Ed(k) => json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
                                    "x": b64(k.public_key().as_ref())}),
            Signer::Ec(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
                       "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
        }
    }

    fn pem(&self) -> String {
        let Signer::Ed(k) = self else {
            panic!("PEM only for Ed25519 here")
        };
        let der = [
            &[
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ][..],
            k.public_key().as_ref(),
        ]
        .concat();
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")
    }

    fn token(&self, header: serde_json::Value, claims: serde_json::Value) -> String {
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = match self {
            Signer::Ed(k) => k.sign(signed.as_bytes()).as_ref().to_vec(),
            Signer::Ec(k) => k
                .sign(&SystemRandom::new(), signed.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
        };
        format!("{signed}.{}", b64(&sig))
    }

    fn good(&self, kid: &str) -> String {
        self.token(
            json!({"alg": self.alg(), "kid": kid, "typ": "JWT"}),
            json!({"sub": "alice", "exp": NOW + 60, "iat": NOW, "aud": ["kafka"], "iss": "idp"}),
        )
    }
}

fn validator(config: JwtValidatorConfig, jwks: &[serde_json::Value]) -> JwtValidator {
    let mut v = JwtValidator::new(config);
    v.add_jwks(json!({ "keys": jwks }).to_string().as_bytes())
        .unwrap();
    v
}

#[test]
fn accepts_tokens_of_trusted_keys() {
    let (ed, ec) = (Signer::ed(), Signer::ec());
    let v = validator(JwtValidatorConfig::default(), &[ed.jwk("k1"), ec.jwk("k2")]);
    for (signer, kid) in [(&ed, "k1"), (&ec, "k2")] {
        let identity = v.validate(&signer.good(kid), now()).unwrap();
        assert_eq!(identity.principal, "alice");
        assert_eq!(
            identity.expires_at,
            UNIX_EPOCH + Duration::from_secs(NOW + 60)
        );
    }
    // A PEM key (the KSS issuer's) verifies tokens without a kid.
    let mut pem = JwtValidator::new(JwtValidatorConfig::default());
    assert_eq!(pem.add_pem(&ed.pem()).unwrap(), 1);
    let token = ed.token(
        json!({"alg": "EdDSA"}),
        json!({"sub": "svc", "exp": NOW + 5}),
    );
    assert_eq!(pem.validate(&token, now()).unwrap().principal, "svc");
}

#[test]
fn refuses_what_it_must() {
    let (ed, ec, foreign) = (Signer::ed(), Signer::ec(), Signer::ec());
    let config = JwtValidatorConfig {
        expected_audience: Some("kafka".into()),
        expected_issuer: Some("idp".into()),
        ..JwtValidatorConfig::default()
    };
    let v = validator(config, &[ed.jwk("k1"), ec.jwk("k2")]);
    let check = |token: &str| v.validate(token, now());
    // Signed by a key that is not trusted, under a trusted kid.
    assert_eq!(check(&foreign.good("k2")), Err(JwtError::Signature));
    // Unknown kid.
    assert_eq!(
        check(&ec.good("k9")),
        Err(JwtError::UnknownKey(Some("k9".into())))
    );
    // alg none and HMAC are never accepted; an EdDSA header cannot use the EC key.
    let claims = json!({"sub": "alice", "exp": NOW + 60, "aud": "kafka", "iss": "idp"});
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims.to_string().as_bytes())
    );
    assert_eq!(check(&none), Err(JwtError::Algorithm("none".into())));
    let hs = ec.token(json!({"alg": "HS256", "kid": "k2"}), claims.clone());
    assert_eq!(check(&hs), Err(JwtError::Algorithm("HS256".into())));
    let confused = ec.token(json!({"alg": "EdDSA", "kid": "k2"}), claims.clone());
    assert_eq!(
        check(&confused),
        Err(JwtError::UnknownKey(Some("k2".into())))
    );
    // Claims.
    let with = |extra: serde_json::Value| {
        let mut c = claims.clone();
        for (k, val) in extra.as_object().unwrap() {
            c[k] = val.clone();
        }
        ed.token(json!({"alg": "EdDSA", "kid": "k1"}), c)
    };
    assert_eq!(
        check(&with(json!({"exp": NOW - 31}))),
        Err(JwtError::Expired)
    );
    assert!(
        check(&with(json!({"exp": NOW - 29}))).is_ok(),
        "within the clock skew"
    );
    assert_eq!(
        check(&with(json!({"exp": "soon"}))),
        Err(JwtError::Claim("exp".into()))
    );
    assert_eq!(
        check(&with(json!({"nbf": NOW + 100}))),
        Err(JwtError::NotYetValid)
    );
    assert_eq!(
        check(&with(json!({"aud": ["other"]}))),
        Err(JwtError::Audience)
    );
    assert_eq!(check(&with(json!({"iss": "evil"}))), Err(JwtError::Issuer));
    assert_eq!(
        check(&with(json!({"sub": ""}))),
        Err(JwtError::Claim("sub".into()))
    );
    let no_exp = ed.token(
        json!({"alg": "EdDSA"}),
        json!({"sub": "a", "aud": "kafka", "iss": "idp"}),
    );
    assert_eq!(check(&no_exp), Err(JwtError::Claim("exp".into())));
    // Tampering with the payload breaks the signature.
    let good = ed.good("k1");
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged = b64(
        json!({"sub": "admin", "exp": NOW + 60, "aud": "kafka", "iss": "idp"})
            .to_string()
            .as_bytes(),
    );
    parts[1] = &forged;
    assert_eq!(check(&parts.join(".")), Err(JwtError::Signature));
    for garbage in ["", "a.b", "a.b.c.d", "!!.!!.!!", &"x".repeat(70_000)] {
        assert!(
            matches!(check(garbage), Err(JwtError::Malformed(_))),
            "{garbage:.20}"
        );
    }
}

#[test]
fn jwks_documents_are_checked() {
    let mut v = JwtValidator::new(JwtValidatorConfig::default());
    assert!(v.add_jwks(b"[]").is_err());
    assert!(
        v.add_jwks(br#"{"keys":[{"kty":"RSA","n":"AQAB"}]}"#)
            .is_err(),
        "RSA without e"
    );
    // Encryption keys, HMAC keys and unknown algorithms are skipped, not trusted.
    let skipped = br#"{"keys":[{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},
        {"kty":"oct","k":"c2VjcmV0"},{"kty":"RSA","alg":"PS256","n":"AQAB","e":"AQAB"}]}"#;
    assert_eq!(v.add_jwks(skipped).unwrap(), 0);
    assert_eq!(v.key_count(), 0);
}
