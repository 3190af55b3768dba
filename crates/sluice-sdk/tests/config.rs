//! Credentials directory and platform defaults, plus mTLS against a real TLS broker.

// Test code: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use sluice_sdk::SdkConfig;

#[test]
fn credentials_dir_overrides_and_defaults_apply() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::write(dir.path().join(f), "x").unwrap();
    }
    let p = |f: &str| dir.path().join(f).display().to_string();
    std::fs::write(
        dir.path().join("client.properties"),
        format!(
            "# written by the sidecar\nbootstrap.servers=tls:9093\nsecurity.protocol=ssl\nssl.ca.location={}\nssl.certificate.location={}\nssl.key.location={}\n",
            p("ca.pem"), p("cert.pem"), p("key.pem")
        ),
    )
    .unwrap();
    let c = SdkConfig::new("plain:9092", "http://r", "svc")
        .set("linger.ms", "20")
        .with_credentials_dir(dir.path())
        .unwrap();
    let props: BTreeMap<String, String> = c.producer_properties();
    assert_eq!(props["bootstrap.servers"], "tls:9093");
    assert_eq!(props["security.protocol"], "ssl");
    assert_eq!(props["acks"], "all");
    assert_eq!(props["enable.idempotence"], "true");
    assert_eq!(props["compression.type"], "lz4");
    assert_eq!(props["linger.ms"], "20", "the application's setting wins");
    assert_eq!(c.consumer_properties("g")["auto.offset.reset"], "earliest");

    std::fs::remove_file(dir.path().join("key.pem")).unwrap();
    let err = SdkConfig::new("b", "http://r", "svc")
        .with_credentials_dir(dir.path())
        .unwrap_err();
    assert!(err.to_string().contains("ssl.key.location"), "{err}");
    let missing = tempfile::tempdir().unwrap();
    let err = SdkConfig::new("b", "http://r", "svc")
        .with_credentials_dir(missing.path())
        .unwrap_err();
    assert!(err.to_string().contains("client.properties"), "{err}");
}

mod mtls {
    use std::net::SocketAddr;
    use std::path::Path;

    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    use sluice_broker::auth::AuthorizerConfig;
    use sluice_broker::config::ListenerConfig;
    use sluice_broker::net::tls::{ClientAuth, TlsSettings};
    use sluice_sdk::{Consumer, Error, Producer, SdkConfig};

    use crate::support::{next, order, Env, Order};

    struct Ca {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    impl Ca {
        fn new() -> Self {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, "test-ca");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            Ca {
                cert: params.self_signed(&key).unwrap(),
                key,
            }
        }

        fn issue(&self, cn: &str, sans: &[&str]) -> (String, String) {
            let key = KeyPair::generate().unwrap();
            let mut params =
                CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .unwrap();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, cn);
            let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
            (cert.pem(), key.serialize_pem())
        }

        /// A credentials directory laid out like the sidecar's.
        fn credentials(&self, dir: &Path, cn: &str, bootstrap: &str) {
            std::fs::create_dir_all(dir).unwrap();
            let (cert, key) = self.issue(cn, &[]);
            std::fs::write(dir.join("cert.pem"), cert).unwrap();
            std::fs::write(dir.join("key.pem"), key).unwrap();
            std::fs::write(dir.join("ca.pem"), self.cert.pem()).unwrap();
            let d = dir.display();
            std::fs::write(
                dir.join("client.properties"),
                format!("bootstrap.servers={bootstrap}\nsecurity.protocol=ssl\nssl.ca.location={d}/ca.pem\nssl.certificate.location={d}/cert.pem\nssl.key.location={d}/key.pem\n"),
            )
            .unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mtls_from_credentials_dir_and_authorization_errors() {
        let ca = Ca::new();
        let pki = tempfile::tempdir().unwrap();
        let (cert, key) = ca.issue("broker", &["localhost", "127.0.0.1"]);
        std::fs::write(pki.path().join("server.pem"), cert).unwrap();
        std::fs::write(pki.path().join("server.key"), key).unwrap();
        std::fs::write(pki.path().join("ca.pem"), ca.cert.pem()).unwrap();
        let p = pki.path().to_path_buf();
        let env = Env::start_with(|c| {
            c.listeners = vec![ListenerConfig {
                name: "SSL".into(),
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                advertised: None,
                tls: Some(TlsSettings {
                    cert: p.join("server.pem"),
                    key: p.join("server.key"),
                    ca: Some(p.join("ca.pem")),
                    client_auth: ClientAuth::Required,
                }),
                sasl: false,
            }];
            // The registry uses the plaintext listener (ANONYMOUS); only orders-svc may use TLS.
            c.authorizer = Some(AuthorizerConfig {
                super_users: vec!["User:ANONYMOUS".into(), "User:CN=orders-svc".into()],
                allow_everyone_if_no_acl_found: false,
            });
        })
        .await;
        let plain = env.bootstrap.clone();
        let env = env.with_registry(&plain).await;
        let ssl = env
            .broker
            .as_ref()
            .and_then(|b| b.listener_addr("SSL"))
            .unwrap()
            .to_string();
        let creds = env.dir.path().join("creds");
        ca.credentials(&creds.join("orders"), "orders-svc", &ssl);
        ca.credentials(&creds.join("intruder"), "intruder-svc", &ssl);

        let config = |svc: &str, dir: &str| {
            SdkConfig::new("unused:1", &env.registry_url, svc)
                .with_credentials_dir(&creds.join(dir))
                .unwrap()
        };
        let producer = Producer::new(config("orders-svc", "orders")).unwrap();
        producer
            .send("secure", None, &order("tls", 3))
            .await
            .unwrap_or_else(|e| panic!("mTLS send: {e}"));
        let consumer = Consumer::new(config("orders-svc", "orders"), "g-tls", &["secure"]).unwrap();
        let r = next(&consumer).await;
        assert_eq!(consumer.decode::<Order>(&r).await.unwrap().id, "tls");

        let intruder = Producer::new(config("intruder-svc", "intruder")).unwrap();
        match intruder.send("secure", None, &order("x", 1)).await {
            Err(Error::Authorization { topic, principal }) => {
                assert_eq!(topic, "secure");
                assert_eq!(principal, "User:CN=intruder-svc");
            }
            other => panic!("expected Authorization, got {other:?}"),
        }
        drop((producer, consumer, intruder));
        env.stop().await;
    }
}
