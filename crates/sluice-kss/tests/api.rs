//! The HTTP API against a real KSS on a loopback port.

use std::time::Duration;

use sluice_kss::api::types::{CertificateRequest, CertificateResponse, ErrorResponse};
use sluice_kss::identity::jwt::{mint, MintOptions};
use sluice_kss::identity::keys::load_issuer_key;
use sluice_kss::service::ServiceId;
use sluice_kss::{start, KssConfig};

fn config(dir: &std::path::Path) -> KssConfig {
    KssConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ca_dir: dir.join("ca"),
        lifetime: Default::default(),
        trusted_keys: Vec::new(),
        dev_issuer_key: Some(dir.join("issuer.key")),
        trust_bundle: None,
        disabled_services: vec![ServiceId::parse("retired-svc").unwrap()],
        reserved_services: vec!["User:CN=admin".into()],
        state_dir: Some(dir.join("state")),
        acl_file: None,
        admin: None,
        sync_interval: Duration::from_secs(1),
        prune_unmanaged: false,
    }
}

fn csr() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["ignored.example".to_owned()])
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap()
}

#[tokio::test]
async fn issues_to_valid_tokens_and_explains_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let kss = start(config(dir.path())).await.unwrap();
    let base = format!("http://{}", kss.local_addr());
    let key = load_issuer_key(&dir.path().join("issuer.key"), false).unwrap();
    let client = reqwest::Client::new();
    let post = |token: Option<String>, body: serde_json::Value| {
        let mut req = client.post(format!("{base}/v1/certificates")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let token = |service: &str| {
        mint(
            &key,
            &ServiceId::parse(service).unwrap(),
            &MintOptions::default(),
        )
        .unwrap()
    };
    let body = serde_json::to_value(CertificateRequest {
        csr: csr(),
        lifetime_secs: None,
    })
    .unwrap();

    let ok = post(Some(token("orders-svc")), body.clone()).await.unwrap();
    assert_eq!(ok.status(), 200);
    let issued: CertificateResponse = ok.json().await.unwrap();
    assert_eq!(issued.service, "orders-svc");
    assert!(issued.not_after - issued.not_before >= 24 * 3600);
    let ca = client
        .get(format!("{base}/v1/ca.pem"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(issued.ca, ca);

    let missing = post(None, body.clone()).await.unwrap();
    assert_eq!(missing.status(), 401);
    assert!(missing
        .json::<ErrorResponse>()
        .await
        .unwrap()
        .error
        .contains("missing"));

    let disabled = post(Some(token("retired-svc")), body.clone())
        .await
        .unwrap();
    assert_eq!(disabled.status(), 403);
    assert!(disabled
        .json::<ErrorResponse>()
        .await
        .unwrap()
        .error
        .contains("disabled"));

    let reserved = post(Some(token("admin")), body.clone()).await.unwrap();
    assert_eq!(reserved.status(), 403);
    assert!(reserved
        .json::<ErrorResponse>()
        .await
        .unwrap()
        .error
        .contains("reserved"));

    let bad_csr = post(
        Some(token("orders-svc")),
        serde_json::json!({"csr": "nope"}),
    )
    .await
    .unwrap();
    assert_eq!(bad_csr.status(), 400);

    let drift = client
        .get(format!("{base}/v1/acls/drift"))
        .send()
        .await
        .unwrap();
    assert_eq!(drift.status(), 404, "no acl.yml managed");
    kss.shutdown().await.unwrap();
}
