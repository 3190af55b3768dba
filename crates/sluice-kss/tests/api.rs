//! The HTTPS API against a real KSS on a loopback port.

// Test code: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use sluice_kss::api::types::{CertificateRequest, CertificateResponse, ErrorResponse};
use sluice_kss::identity::jwt::{mint, MintOptions};
use sluice_kss::identity::keys::load_issuer_key;
use sluice_kss::service::ServiceId;
use sluice_kss::{start, KssConfig, KssHandle, KssTls};

fn config(dir: &Path) -> KssConfig {
    KssConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: KssTls::default(),
        ca_dir: dir.join("ca"),
        lifetime: Default::default(),
        trusted_keys: Vec::new(),
        dev_issuer_key: Some(dir.join("issuer.key")),
        trust_bundle: None,
        disabled_services: vec![ServiceId::parse("retired-svc").unwrap()],
        reserved_services: vec!["User:CN=admin".into()],
        admin_services: vec![ServiceId::parse("kss-admin").unwrap()],
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

/// A client trusting only the KSS CA in `dir`.
fn client(dir: &Path) -> reqwest::Client {
    let ca = std::fs::read(dir.join("ca").join("ca.pem")).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap()
}

struct Api {
    kss: KssHandle,
    client: reqwest::Client,
    key: ring::signature::Ed25519KeyPair,
}

impl Api {
    async fn start(dir: &Path) -> Api {
        let kss = start(config(dir)).await.unwrap();
        Api {
            client: client(dir),
            key: load_issuer_key(&dir.join("issuer.key"), false).unwrap(),
            kss,
        }
    }

    fn token(&self, service: &str) -> String {
        mint(
            &self.key,
            &ServiceId::parse(service).unwrap(),
            &MintOptions::default(),
        )
        .unwrap()
    }

    async fn post(&self, token: Option<&str>, body: Vec<u8>) -> (u16, String) {
        let mut req = self
            .client
            .post(format!("{}/v1/certificates", self.kss.url()))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut req = self.client.get(format!("{}{path}", self.kss.url()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

fn body() -> Vec<u8> {
    serde_json::to_vec(&CertificateRequest {
        csr: csr(),
        lifetime_secs: None,
    })
    .unwrap()
}

fn error_of(text: &str) -> String {
    serde_json::from_str::<ErrorResponse>(text).unwrap().error
}

#[tokio::test]
async fn issues_to_valid_tokens_over_https_and_explains_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path()).await;
    assert!(api.kss.url().starts_with("https://"));

    let (status, text) = api.post(Some(&api.token("orders-svc")), body()).await;
    assert_eq!(status, 200, "{text}");
    let issued: CertificateResponse = serde_json::from_str(&text).unwrap();
    assert_eq!(issued.service, "orders-svc");
    assert!(issued.not_after - issued.not_before >= 24 * 3600);
    let (_, ca) = api.get("/v1/ca.pem", None).await;
    assert_eq!(issued.ca, ca);

    let (status, text) = api.post(None, body()).await;
    assert_eq!(status, 401);
    assert!(error_of(&text).contains("missing"));

    let (status, text) = api.post(Some(&api.token("retired-svc")), body()).await;
    assert_eq!(status, 403);
    assert!(error_of(&text).contains("disabled"));

    let (status, text) = api.post(Some(&api.token("admin")), body()).await;
    assert_eq!(status, 403);
    assert!(error_of(&text).contains("reserved"), "{text}");

    let bad_csr = serde_json::to_vec(&serde_json::json!({"csr": "nope"})).unwrap();
    let (status, _) = api.post(Some(&api.token("orders-svc")), bad_csr).await;
    assert_eq!(status, 400);
    api.kss.shutdown().await.unwrap();
}

#[tokio::test]
async fn garbage_and_oversized_bodies_are_refused_without_using_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path()).await;
    let token = api.token("orders-svc");
    let garbage: [&[u8]; 6] = [
        b"",
        b"not json",
        b"{}",
        b"[1,2]",
        b"{\"csr\": 5}",
        b"{\"csr\": \"x\", \"admin\": true}",
    ];
    for body in garbage {
        let (status, text) = api.post(Some(&token), body.to_vec()).await;
        assert_eq!(status, 400, "{body:?}: {text}");
        assert!(error_of(&text).contains("invalid request"), "{text}");
    }
    // Just over the limit, and well over it while the client is still sending: both get the
    // 413 (not a reset connection).
    for size in [sluice_kss::api::MAX_BODY_BYTES + 1, 512 * 1024] {
        let (status, text) = api.post(Some(&token), vec![b'x'; size]).await;
        assert_eq!(status, 413, "{text}");
        assert!(error_of(&text).contains("larger than"), "{text}");
    }
    let (status, text) = api.post(Some(&token), body()).await;
    assert_eq!(status, 200, "the token was not used up: {text}");
    let (status, text) = api.get("/v1/nope", None).await;
    assert_eq!(status, 404);
    assert!(error_of(&text).contains("no such endpoint"));
    api.kss.shutdown().await.unwrap();
}

#[tokio::test]
async fn drift_needs_an_admin_services_token() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path()).await;
    let (status, text) = api.get("/v1/acls/drift", None).await;
    assert_eq!(status, 401, "{text}");
    let (status, text) = api
        .get("/v1/acls/drift", Some(&api.token("orders-svc")))
        .await;
    assert_eq!(status, 403, "{text}");
    assert!(error_of(&text).contains("--admin-service"), "{text}");
    let (status, text) = api
        .get("/v1/acls/drift", Some(&api.token("kss-admin")))
        .await;
    assert_eq!(status, 404, "authorized; no acl.yml managed: {text}");
    api.kss.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_token_used_before_a_restart_is_refused_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path()).await;
    let token = api.token("orders-svc");
    assert_eq!(api.post(Some(&token), body()).await.0, 200);
    api.kss.shutdown().await.unwrap();
    let api = Api::start(dir.path()).await;
    let (status, text) = api.post(Some(&token), body()).await;
    assert_eq!(status, 401);
    assert!(error_of(&text).contains("replayed"), "{text}");
    api.kss.shutdown().await.unwrap();
}

#[tokio::test]
async fn plain_http_only_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let kss = start(KssConfig {
        tls: KssTls::InsecureHttp,
        ..config(dir.path())
    })
    .await
    .unwrap();
    assert!(kss.url().starts_with("http://"));
    let resp = reqwest::get(format!("{}/healthz", kss.url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    kss.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_silent_client_does_not_block_others() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path()).await;
    // Connects and never starts a TLS handshake.
    let _silent = tokio::net::TcpStream::connect(api.kss.local_addr())
        .await
        .unwrap();
    let (status, _) = tokio::time::timeout(Duration::from_secs(5), api.get("/healthz", None))
        .await
        .expect("answered while another client stalls");
    assert_eq!(status, 200);
    api.kss.shutdown().await.unwrap();
}
