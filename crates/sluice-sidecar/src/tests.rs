use super::*;

#[test]
fn renews_at_two_thirds_with_bounded_jitter() {
    let at = |j| {
        renewal_time(1000, 1000 + 3000, j)
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    assert_eq!(at(0.0), 3000);
    assert!((2849..=3151).contains(&at(0.05)) && (2849..=3151).contains(&at(-0.05)));
    // A hostile or broken not_after must not panic the clock arithmetic.
    assert!(renewal_time(u64::MAX, u64::MAX, 0.05) >= UNIX_EPOCH);
    assert!(renewal_time(0, u64::MAX, 0.05) > UNIX_EPOCH);
    let expired = renewal_time(1000, 900, 0.0)
        .duration_since(UNIX_EPOCH)
        .unwrap();
    assert_eq!(
        expired,
        Duration::from_secs(1001),
        "never sooner than the minimum delay"
    );
    for _ in 0..100 {
        assert!(jitter_fraction().abs() <= 0.05);
    }
}

/// A token for orders-svc (signed by a throwaway key: the sidecar only reads its subject).
fn token() -> String {
    let key = ring::signature::Ed25519KeyPair::from_pkcs8(
        &sluice_kss::identity::keys::generate_pkcs8().unwrap(),
    )
    .unwrap();
    let service = sluice_kss::service::ServiceId::parse("orders-svc").unwrap();
    sluice_kss::identity::jwt::mint(&key, &service, &Default::default()).unwrap()
}

fn config(url: String, dir: &std::path::Path) -> SidecarConfig {
    SidecarConfig {
        kss_url: url,
        kss_ca: None,
        allow_insecure_http: true,
        out_dir: dir.into(),
        token: TokenSource::Value(token()),
        lifetime: None,
        bootstrap: None,
        once_deadline: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn an_unreachable_kss_is_retried_until_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let config = config("http://127.0.0.1:1".into(), dir.path());
    let deadline = Instant::now() + Duration::from_secs(2);
    let err = obtain_with_retry(&config, Some(deadline))
        .await
        .unwrap_err();
    assert!(matches!(err, SidecarError::Unavailable { .. }), "{err}");
    assert!(!dir.path().join("key.pem").exists());
}

#[tokio::test]
async fn the_deadline_bounds_a_kss_that_accepts_but_never_answers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = config(format!("http://{addr}"), dir.path());
    let started = Instant::now();
    let err = obtain_with_retry(&config, Some(started + Duration::from_secs(2)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    assert!(err.to_string().contains("deadline"), "{err}");
    held.abort();
}

#[tokio::test]
async fn plain_http_needs_the_explicit_flag_and_https_needs_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config("http://127.0.0.1:1".into(), dir.path());
    config.allow_insecure_http = false;
    let err = obtain_once(&config).await.unwrap_err();
    assert!(
        matches!(&err, SidecarError::Config(m) if m.contains("plain HTTP")),
        "{err}"
    );
    config.kss_url = "https://127.0.0.1:1".into();
    let err = obtain_once(&config).await.unwrap_err();
    assert!(
        matches!(&err, SidecarError::Config(m) if m.contains("--kss-ca")),
        "{err}"
    );
}
