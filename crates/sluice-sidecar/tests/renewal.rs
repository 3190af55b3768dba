//! The sidecar against a real KSS over HTTPS: files written, refusals final, renewal on
//! schedule, a KSS with another CA refused.

// Test code: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sluice_kss::identity::jwt::{mint, MintOptions};
use sluice_kss::identity::keys::load_issuer_key;
use sluice_kss::service::ServiceId;
use sluice_kss::{start, KssConfig, KssTls};
use sluice_sidecar::{obtain_once, run, SidecarConfig, SidecarError, TokenSource};

async fn kss(dir: &std::path::Path, lifetime: Duration) -> sluice_kss::KssHandle {
    start(KssConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: KssTls::default(),
        ca_dir: dir.join("ca"),
        lifetime: sluice_kss::ca::LifetimePolicy {
            default: lifetime,
            max: lifetime,
        },
        trusted_keys: Vec::new(),
        dev_issuer_key: Some(dir.join("issuer.key")),
        trust_bundle: None,
        disabled_services: vec![ServiceId::parse("retired-svc").unwrap()],
        reserved_services: Vec::new(),
        admin_services: Vec::new(),
        state_dir: None,
        acl_file: None,
        admin: None,
        sync_interval: Duration::from_secs(1),
        prune_unmanaged: false,
    })
    .await
    .unwrap()
}

fn token_file(dir: &std::path::Path, service: &str) -> std::path::PathBuf {
    let key = load_issuer_key(&dir.join("issuer.key"), false).unwrap();
    let token = mint(
        &key,
        &ServiceId::parse(service).unwrap(),
        &MintOptions::default(),
    )
    .unwrap();
    let path = dir.join(format!("{service}.token"));
    std::fs::write(&path, token).unwrap();
    path
}

fn sidecar(
    kss: &sluice_kss::KssHandle,
    out: &std::path::Path,
    token: std::path::PathBuf,
) -> SidecarConfig {
    let ca = out
        .parent()
        .expect("out has a parent")
        .join("ca")
        .join("ca.pem");
    SidecarConfig {
        kss_url: kss.url(),
        kss_ca: Some(ca),
        allow_insecure_http: false,
        out_dir: out.to_owned(),
        token: TokenSource::File(token),
        lifetime: None,
        bootstrap: None,
        once_deadline: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn refusal_is_final_and_leaves_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let kss = kss(dir.path(), Duration::from_secs(3600)).await;
    let out = dir.path().join("out");
    let err = obtain_once(&sidecar(&kss, &out, token_file(dir.path(), "retired-svc")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SidecarError::Refused { status: 403, .. }),
        "{err}"
    );
    assert!(!out.join("cert.pem").exists());
    kss.shutdown().await.unwrap();
}

#[tokio::test]
async fn renews_before_expiry_with_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let kss = kss(dir.path(), Duration::from_secs(10)).await;
    let out = dir.path().join("out");
    // Tokens are single-use: a helper rewrites the token file as a platform agent would.
    let token = token_file(dir.path(), "orders-svc");
    let config = sidecar(&kss, &out, token.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run(config, async move {
        let _ = stop_rx.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut first = None;
    let mut renewed = false;
    while tokio::time::Instant::now() < deadline {
        if let Ok(cert) = std::fs::read_to_string(out.join("cert.pem")) {
            match &first {
                None => {
                    first = Some((cert, std::fs::read_to_string(out.join("key.pem")).unwrap()));
                    token_file(dir.path(), "orders-svc");
                }
                Some((c, k)) if *c != cert => {
                    assert_ne!(
                        *k,
                        std::fs::read_to_string(out.join("key.pem")).unwrap(),
                        "a new key per renewal"
                    );
                    renewed = true;
                    break;
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(());
    task.await.unwrap().unwrap();
    assert!(
        renewed,
        "the certificate was renewed at about 2/3 of its 10 s lifetime"
    );
    kss.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_kss_with_another_ca_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let kss = kss(dir.path(), Duration::from_secs(3600)).await;
    let other = tempfile::tempdir().unwrap();
    sluice_kss::ca::CertificateAuthority::load_or_create(other.path(), Default::default()).unwrap();
    let out = dir.path().join("out");
    let mut config = sidecar(&kss, &out, token_file(dir.path(), "orders-svc"));
    config.kss_ca = Some(other.path().join("ca.pem"));
    let err = obtain_once(&config).await.unwrap_err();
    assert!(matches!(err, SidecarError::Untrusted(_)), "{err}");
    assert!(err.to_string().contains("--kss-ca"), "{err}");
    assert!(!out.join("key.pem").exists());
    kss.shutdown().await.unwrap();
}
