use super::*;
use x509_parser::prelude::{parse_x509_certificate, parse_x509_pem};

fn csr_asking_for_admin(key: &KeyPair) -> String {
    let mut params = CertificateParams::new(vec!["admin.example".to_owned()]).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "admin");
    // (rcgen cannot put a CA flag into a CSR; the compat test sends one made by `cryptography`.)
    params.serialize_request(key).unwrap().pem().unwrap()
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn policy() -> LifetimePolicy {
    LifetimePolicy {
        default: Duration::from_secs(3600),
        max: Duration::from_secs(7200),
    }
}

#[test]
fn issues_cn_of_the_service_whatever_the_csr_asks_for() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(dir.path(), policy()).unwrap();
    let key = KeyPair::generate().unwrap();
    let service = ServiceId::parse("orders-svc").unwrap();
    let issued = ca
        .issue(
            &csr_asking_for_admin(&key),
            &service,
            Some(Duration::from_secs(999_999)),
        )
        .unwrap();
    let (_, pem) = parse_x509_pem(issued.certificate_pem.as_bytes()).unwrap();
    let (_, cert) = parse_x509_certificate(&pem.contents).unwrap();
    assert_eq!(cert.subject().to_string(), "CN=orders-svc");
    assert_eq!(cert.issuer().to_string(), format!("CN={CA_COMMON_NAME}"));
    assert!(!cert.is_ca());
    assert!(
        cert.subject_alternative_name().unwrap().is_none(),
        "SANs are dropped"
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert_eq!(cert.public_key().raw, key.public_key_der().as_slice());
    assert_eq!(issued.serial.len(), 32, "128-bit serial");
    let lifetime = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert_eq!(
        lifetime as u64,
        7200 + BACKDATE.as_secs(),
        "capped at the maximum"
    );
    assert!(
        cert.validity().not_before.timestamp()
            < ::time::OffsetDateTime::now_utc().unix_timestamp() - 200
    );
    // Signed by the CA.
    let (_, ca_pem) = parse_x509_pem(ca.ca_pem().as_bytes()).unwrap();
    let (_, ca_cert) = parse_x509_certificate(&ca_pem.contents).unwrap();
    cert.verify_signature(Some(ca_cert.public_key())).unwrap();
    // Two issuances never share a serial.
    let again = ca
        .issue(&csr_asking_for_admin(&key), &service, None)
        .unwrap();
    assert_ne!(again.serial, issued.serial);
}

#[test]
fn a_tampered_csr_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(dir.path(), policy()).unwrap();
    let key = KeyPair::generate().unwrap();
    let pem = csr_asking_for_admin(&key);
    let (_, block) = parse_x509_pem(pem.as_bytes()).unwrap();
    let mut der = block.contents.clone();
    // Flip a byte inside the subject: the signature no longer covers what is there.
    let pos = der.windows(5).position(|w| w == b"admin").unwrap();
    der[pos] = b'b';
    let tampered = pem_encode("CERTIFICATE REQUEST", &der);
    let service = ServiceId::parse("orders-svc").unwrap();
    let err = ca.issue(&tampered, &service, None).unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");
    assert!(matches!(
        ca.issue("garbage", &service, None),
        Err(CaError::BadCsr(_))
    ));
}

#[test]
fn reloading_keeps_the_same_ca_and_refuses_a_mismatched_pair() {
    let dir = tempfile::tempdir().unwrap();
    let first = CertificateAuthority::load_or_create(dir.path(), policy()).unwrap();
    let second = CertificateAuthority::load_or_create(dir.path(), policy()).unwrap();
    assert_eq!(first.ca_pem(), second.ca_pem());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let other = tempfile::tempdir().unwrap();
    CertificateAuthority::load_or_create(other.path(), policy()).unwrap();
    std::fs::copy(other.path().join("ca.key"), dir.path().join("ca.key")).unwrap();
    assert!(matches!(
        CertificateAuthority::load_or_create(dir.path(), policy()),
        Err(CaError::BadCa { .. })
    ));
    std::fs::remove_file(dir.path().join("ca.key")).unwrap();
    assert!(CertificateAuthority::load_or_create(dir.path(), policy()).is_err());
}

#[test]
fn reserved_services_are_refused_before_the_csr_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(dir.path(), policy())
        .unwrap()
        .with_reserved(ReservedServices::new(["User:CN=admin", "ops"]));
    let admin = ServiceId::parse("admin").unwrap();
    let err = ca.issue("garbage", &admin, None).unwrap_err();
    assert!(matches!(err, CaError::Reserved(_)), "{err}");
    assert!(err.to_string().contains("reserved"), "{err}");
    let key = KeyPair::generate().unwrap();
    let orders = ServiceId::parse("orders-svc").unwrap();
    assert!(ca.issue(&csr_asking_for_admin(&key), &orders, None).is_ok());
}

#[test]
fn the_server_certificate_names_the_hosts_and_is_for_servers_only() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(dir.path(), policy()).unwrap();
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let server = ca
        .issue_server_certificate(&names, Duration::from_secs(3600))
        .unwrap();
    let (_, cert) = parse_x509_certificate(&server.certificate_der).unwrap();
    assert_eq!(
        cert.subject().to_string(),
        format!("CN={SERVER_COMMON_NAME}")
    );
    assert!(
        ServiceId::parse(SERVER_COMMON_NAME).is_err(),
        "never a service id"
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    let sans = cert.subject_alternative_name().unwrap().unwrap().value;
    assert_eq!(sans.general_names.len(), 2);
    let key = KeyPair::try_from(server.key_der.as_slice()).unwrap();
    assert_eq!(cert.public_key().raw, key.public_key_der().as_slice());
    for bad in ["bad name!", "", "a..b", "-a.example", "a,b"] {
        assert!(
            matches!(
                ca.issue_server_certificate(&[bad.to_owned()], Duration::from_secs(60)),
                Err(CaError::BadServerName(_))
            ),
            "{bad:?}"
        );
    }
}
