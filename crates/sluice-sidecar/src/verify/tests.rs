use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use rcgen::{CertificateParams, KeyPair};
use sluice_kss::ca::{CertificateAuthority, LifetimePolicy};

use super::*;

struct Fixture {
    anchors: TrustAnchors,
    key_spki: Vec<u8>,
    /// A correct answer for orders-svc and the fixture's key.
    good: CertificateResponse,
    /// Signed by another CA.
    foreign: CertificateResponse,
    /// For another key.
    other_key: CertificateResponse,
    /// For another service (the answer claims orders-svc).
    other_service: CertificateResponse,
}

fn service() -> ServiceId {
    ServiceId::parse("orders-svc").unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn ca() -> CertificateAuthority {
    let dir = tempfile::tempdir().unwrap();
    let policy = LifetimePolicy {
        default: Duration::from_secs(3600),
        max: Duration::from_secs(3600),
    };
    CertificateAuthority::load_or_create(dir.path(), policy).unwrap()
}

fn answer(ca: &CertificateAuthority, key: &KeyPair, service: &str) -> CertificateResponse {
    let csr = CertificateParams::default()
        .serialize_request(key)
        .unwrap()
        .pem()
        .unwrap();
    let issued = ca
        .issue(&csr, &ServiceId::parse(service).unwrap(), None)
        .unwrap();
    CertificateResponse {
        service: "orders-svc".into(),
        certificate: issued.certificate_pem,
        ca: ca.ca_pem().to_owned(),
        serial: issued.serial,
        not_before: 0,
        not_after: 0,
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let (ca, other_ca) = (ca(), ca());
        let (key, other) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
        Fixture {
            anchors: TrustAnchors::from_pem(ca.ca_pem().as_bytes()).unwrap(),
            key_spki: key.public_key_der(),
            good: answer(&ca, &key, "orders-svc"),
            foreign: answer(&other_ca, &key, "orders-svc"),
            other_key: answer(&ca, &other, "orders-svc"),
            other_service: answer(&ca, &key, "admin"),
        }
    })
}

fn check(answer: &CertificateResponse, at: u64) -> Result<u64, String> {
    let f = fixture();
    check_answer(
        answer,
        &Expected {
            public_key_der: &f.key_spki,
            service: &service(),
            anchors: Some(&f.anchors),
            now: at,
        },
    )
}

fn der_of(pem: &str) -> Vec<u8> {
    certificates(pem.as_bytes()).unwrap().remove(0)
}

fn with_certificate(der: &[u8]) -> CertificateResponse {
    CertificateResponse {
        certificate: sluice_kss::identity::keys::pem_encode("CERTIFICATE", der),
        ..fixture().good.clone()
    }
}

#[test]
fn a_correct_answer_passes_and_gives_the_certificates_not_after() {
    let not_after = check(&fixture().good, now()).unwrap();
    assert!((3000..=3700).contains(&(not_after - now())), "{not_after}");
}

#[test]
fn each_wrong_answer_is_refused_with_the_reason() {
    let f = fixture();
    let cases = [
        (&f.other_key, "not the key this sidecar generated"),
        (&f.foreign, "not signed by a CA in --kss-ca"),
        (&f.other_service, "expected exactly \"CN=orders-svc\""),
    ];
    for (answer, reason) in cases {
        let err = check(answer, now()).unwrap_err();
        assert!(err.contains(reason), "{err}");
    }
    let err = check(&f.good, now() + 7200).unwrap_err();
    assert!(err.contains("not valid now"), "{err}");
    let err = check(&f.good, now() - 3600).unwrap_err();
    assert!(err.contains("not valid now"), "{err}");
    let renamed = CertificateResponse {
        service: "admin".into(),
        ..f.good.clone()
    };
    assert!(check(&renamed, now())
        .unwrap_err()
        .contains("this sidecar's token is for"));
    let two = CertificateResponse {
        certificate: format!("{}{}", f.good.certificate, f.good.certificate),
        ..f.good.clone()
    };
    assert!(check(&two, now()).unwrap_err().contains("one is expected"));
    let bad_ca = CertificateResponse {
        ca: "junk".into(),
        ..f.good.clone()
    };
    assert!(check(&bad_ca, now()).unwrap_err().contains("CA bundle"));
}

#[test]
fn the_issuer_is_not_checked_without_anchors() {
    let f = fixture();
    let expected = Expected {
        public_key_der: &f.key_spki,
        service: &service(),
        anchors: None,
        now: now(),
    };
    assert!(check_answer(&f.foreign, &expected).is_ok());
    assert!(check_answer(&f.other_key, &expected).is_err());
}

proptest! {
    #[test]
    fn arbitrary_fields_never_panic_or_pass(
        certificate in proptest::collection::vec(any::<u8>(), 0..3000),
        ca in proptest::collection::vec(any::<u8>(), 0..300),
        as_pem in any::<bool>(),
    ) {
        let certificate = if as_pem {
            sluice_kss::identity::keys::pem_encode("CERTIFICATE", &certificate)
        } else {
            String::from_utf8_lossy(&certificate).into_owned()
        };
        let answer = CertificateResponse {
            certificate,
            ca: String::from_utf8_lossy(&ca).into_owned(),
            ..fixture().good.clone()
        };
        prop_assert!(check(&answer, now()).is_err());
    }

    #[test]
    fn arbitrary_anchor_bundles_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = TrustAnchors::from_pem(&bytes);
    }

    #[test]
    fn a_certificate_changed_where_its_signature_matters_is_refused(
        in_signature in any::<bool>(),
        offset in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let der = der_of(&fixture().good.certificate);
        let cert = parse_whole(&der).unwrap();
        let tbs = cert.tbs_certificate.as_ref();
        let tbs_start = tbs.as_ptr() as usize - der.as_ptr() as usize;
        // The signed part, or the last bytes of the ECDSA signature's `s`.
        let range = if in_signature { der.len() - 8..der.len() } else { tbs_start..tbs_start + tbs.len() };
        let mut mutated = der.clone();
        mutated[range.start + offset.index(range.len())] ^= flip;
        prop_assert!(check(&with_certificate(&mutated), now()).is_err());
    }

    #[test]
    fn a_truncated_certificate_is_refused(cut in any::<prop::sample::Index>()) {
        let der = der_of(&fixture().good.certificate);
        prop_assert!(check(&with_certificate(&der[..cut.index(der.len())]), now()).is_err());
    }

    #[test]
    fn the_json_answer_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        if let Ok(answer) = serde_json::from_slice::<CertificateResponse>(&bytes) {
            prop_assert!(check(&answer, now()).is_err());
        }
    }
}
