//! End-to-end REST API tests against an in-process Sluice broker: registration, lookups,
//! compatibility, deletes, configs and modes, restart recovery and write forwarding.

use std::net::SocketAddr;

use serde_json::{json, Value};
use sluice_broker::BrokerConfig;
use sluice_registry::http_client::exchange;
use sluice_registry::{ElectionConfig, RegistryConfig, RegistryHandle};

struct Cluster {
    broker: Option<sluice_broker::BrokerHandle>,
    bootstrap: String,
    _dir: tempfile::TempDir,
}

async fn cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let config = BrokerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().to_path_buf(),
        ..BrokerConfig::default()
    };
    let broker = sluice_broker::start(config)
        .await
        .unwrap_or_else(|e| panic!("broker: {e}"));
    let bootstrap = broker.local_addr().to_string();
    Cluster {
        broker: Some(broker),
        bootstrap,
        _dir: dir,
    }
}

impl Cluster {
    async fn registry(&self, leader: Option<&RegistryHandle>) -> RegistryHandle {
        self.registry_with(leader, None).await
    }

    async fn registry_with(
        &self,
        leader: Option<&RegistryHandle>,
        election: Option<ElectionConfig>,
    ) -> RegistryHandle {
        let mut config = RegistryConfig::new(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            self.bootstrap.clone(),
        );
        config.leader_url = leader.map(|l| format!("http://{}", l.local_addr()));
        config.election = election;
        sluice_registry::start(config)
            .await
            .unwrap_or_else(|e| panic!("registry: {e}"))
    }

    async fn stop(mut self) {
        if let Some(b) = self.broker.take() {
            let _ = b.shutdown().await;
        }
    }
}

async fn call(r: &RegistryHandle, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, bytes) = exchange(&r.local_addr().to_string(), method, path, body.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status.as_u16(), value)
}

fn avro_record(fields: Value) -> Value {
    json!({"schema": json!({"type": "record", "name": "User", "fields": fields}).to_string()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_lookup_delete_and_restart() {
    let c = cluster().await;
    let r = c.registry(None).await;

    let v1 = avro_record(json!([{"name": "a", "type": "string"}]));
    let (s, body) = call(
        &r,
        "POST",
        "/subjects/users-value/versions",
        Some(v1.clone()),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let id1 = body["id"].as_i64().unwrap_or(-1);
    assert!(id1 >= 1);
    // The same schema again: same id, no new version.
    let (_, again) = call(
        &r,
        "POST",
        "/subjects/users-value/versions",
        Some(v1.clone()),
    )
    .await;
    assert_eq!(again["id"], body["id"]);

    // Backward-compatible: a new field with a default.
    let v2 = avro_record(
        json!([{"name": "a", "type": "string"}, {"name": "b", "type": "int", "default": 0}]),
    );
    let (s, body2) = call(
        &r,
        "POST",
        "/subjects/users-value/versions",
        Some(v2.clone()),
    )
    .await;
    assert_eq!(s, 200, "{body2}");
    assert!(body2["id"].as_i64().unwrap_or(0) > id1);

    // Incompatible: a new field without default.
    let bad = avro_record(json!([{"name": "a", "type": "string"}, {"name": "c", "type": "int"}]));
    let (s, err) = call(
        &r,
        "POST",
        "/subjects/users-value/versions",
        Some(bad.clone()),
    )
    .await;
    assert_eq!((s, err["error_code"].as_i64()), (409, Some(409)), "{err}");
    let (s, verdict) = call(
        &r,
        "POST",
        "/compatibility/subjects/users-value/versions/latest?verbose=True",
        Some(bad),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(verdict["is_compatible"], json!(false));
    assert!(
        !verdict["messages"]
            .as_array()
            .map(Vec::is_empty)
            .unwrap_or(true),
        "{verdict}"
    );

    // Invalid schema, unknown subject, bad version.
    let (s, err) = call(
        &r,
        "POST",
        "/subjects/x/versions",
        Some(json!({"schema": "{\"type\":\"record\"}"})),
    )
    .await;
    assert_eq!((s, err["error_code"].as_i64()), (422, Some(42201)), "{err}");
    let (s, err) = call(&r, "GET", "/subjects/nope/versions", None).await;
    assert_eq!((s, err["error_code"].as_i64()), (404, Some(40401)));
    let (_, err) = call(&r, "GET", "/subjects/users-value/versions/0", None).await;
    assert_eq!(err["error_code"].as_i64(), Some(42202));
    let (_, err) = call(&r, "GET", "/subjects/users-value/versions/9", None).await;
    assert_eq!(err["error_code"].as_i64(), Some(40402));

    // Lookup and reads.
    let (s, found) = call(&r, "POST", "/subjects/users-value", Some(v1.clone())).await;
    assert_eq!((s, found["version"].as_i64()), (200, Some(1)), "{found}");
    let (_, latest) = call(&r, "GET", "/subjects/users-value/versions/-1", None).await;
    assert_eq!(latest["version"], json!(2));
    let (_, by_id) = call(&r, "GET", &format!("/schemas/ids/{id1}"), None).await;
    assert!(by_id["schema"].as_str().unwrap_or("").contains("User"));
    let (_, subjects) = call(&r, "GET", &format!("/schemas/ids/{id1}/subjects"), None).await;
    assert_eq!(subjects, json!(["users-value"]));

    // Config and mode.
    let (s, _) = call(
        &r,
        "PUT",
        "/config/users-value",
        Some(json!({"compatibility": "NONE"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, err) = call(
        &r,
        "PUT",
        "/config",
        Some(json!({"compatibility": "SIDEWAYS"})),
    )
    .await;
    assert_eq!((s, err["error_code"].as_i64()), (422, Some(42203)));
    let (_, err) = call(&r, "GET", "/config/other", None).await;
    assert_eq!(err["error_code"].as_i64(), Some(40408));
    let (_, cfg) = call(&r, "GET", "/config/other?defaultToGlobal=TRUE", None).await;
    assert_eq!(cfg["compatibilityLevel"], json!("BACKWARD"));
    let (s, _) = call(&r, "PUT", "/mode/frozen", Some(json!({"mode": "READONLY"}))).await;
    assert_eq!(s, 200);
    let (s, err) = call(&r, "POST", "/subjects/frozen/versions", Some(v1.clone())).await;
    assert_eq!((s, err["error_code"].as_i64()), (422, Some(42205)), "{err}");

    // Deletes: permanent only after soft.
    let (_, err) = call(
        &r,
        "DELETE",
        "/subjects/users-value/versions/1?permanent=true",
        None,
    )
    .await;
    assert_eq!(err["error_code"].as_i64(), Some(40407));
    let (s, deleted) = call(&r, "DELETE", "/subjects/users-value/versions/1", None).await;
    assert_eq!((s, deleted), (200, json!(1)));
    let (_, err) = call(&r, "DELETE", "/subjects/users-value/versions/1", None).await;
    assert_eq!(err["error_code"].as_i64(), Some(40406));
    let (_, versions) = call(&r, "GET", "/subjects/users-value/versions", None).await;
    assert_eq!(versions, json!([2]));
    let (_, versions) = call(
        &r,
        "GET",
        "/subjects/users-value/versions?deleted=true",
        None,
    )
    .await;
    assert_eq!(versions, json!([1, 2]));

    // Restart: everything comes back from the topic.
    r.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    let r = c.registry(None).await;
    let (_, versions) = call(
        &r,
        "GET",
        "/subjects/users-value/versions?deleted=true",
        None,
    )
    .await;
    assert_eq!(versions, json!([1, 2]));
    let (_, versions) = call(&r, "GET", "/subjects/users-value/versions", None).await;
    assert_eq!(versions, json!([2]));
    let (_, cfg) = call(&r, "GET", "/config/users-value", None).await;
    assert_eq!(cfg["compatibilityLevel"], json!("NONE"));
    let (_, mode) = call(&r, "GET", "/mode/frozen", None).await;
    assert_eq!(mode["mode"], json!("READONLY"));
    let (_, again) = call(&r, "POST", "/subjects/users-value/versions", Some(v2)).await;
    assert_eq!(again["id"], body2["id"]);
    // New ids continue after the highest one.
    let (_, fresh) = call(
        &r,
        "POST",
        "/subjects/other/versions",
        Some(json!({"schema": "\"bytes\""})),
    )
    .await;
    assert!(
        fresh["id"].as_i64().unwrap_or(0) > body2["id"].as_i64().unwrap_or(0),
        "{fresh}"
    );

    r.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_forwards_writes_and_serves_reads() {
    let c = cluster().await;
    let leader = c.registry(None).await;
    let follower = c.registry(Some(&leader)).await;
    let (s, body) = call(
        &follower,
        "POST",
        "/subjects/t-value/versions",
        Some(json!({"schema": "\"string\""})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let id = body["id"].as_i64().unwrap_or(-1);
    // Read-your-writes on both: the follower answers once it has applied the leader's write.
    let (s, _) = call(&leader, "GET", &format!("/schemas/ids/{id}"), None).await;
    assert_eq!(s, 200);
    let (s, _) = call(&follower, "GET", &format!("/schemas/ids/{id}"), None).await;
    assert_eq!(
        s, 200,
        "the follower does not serve schema {id} right after the write"
    );
    follower.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    leader.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_election_picks_one_writer_and_others_forward() {
    let c = cluster().await;
    let election = || {
        Some(ElectionConfig {
            group: "schema-registry".into(),
            advertised_url: None,
        })
    };
    let a = c.registry_with(None, election()).await;
    let b = c.registry_with(None, election()).await;
    // Writes through either instance land once, with distinct increasing ids.
    let mut ids = Vec::new();
    for (i, r) in [&a, &b, &a, &b].iter().enumerate() {
        let schema =
            json!({"schema": format!("{{\"type\":\"fixed\",\"name\":\"F{i}\",\"size\":4}}")});
        let mut answer = (0, Value::Null);
        // The group may still be rebalancing right after the second instance joined.
        for _ in 0..100 {
            answer = call(
                r,
                "POST",
                &format!("/subjects/s{i}/versions"),
                Some(schema.clone()),
            )
            .await;
            if answer.0 == 200 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(answer.0, 200, "{}", answer.1);
        ids.push(answer.1["id"].as_i64().unwrap_or(-1));
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 4, "ids must be distinct: {ids:?}");
    for id in &ids {
        let mut seen = false;
        for _ in 0..50 {
            if call(&a, "GET", &format!("/schemas/ids/{id}"), None).await.0 == 200
                && call(&b, "GET", &format!("/schemas/ids/{id}"), None).await.0 == 200
            {
                seen = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(seen, "schema {id} not served by both instances");
    }
    b.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    a.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_mode_references_and_permanent_deletes() {
    let c = cluster().await;
    let r = c.registry(None).await;

    // IMPORT keeps caller-chosen ids and versions; later ids continue after them.
    let (s, body) = call(&r, "PUT", "/mode", Some(json!({"mode": "import"}))).await;
    assert_eq!((s, body), (200, json!({"mode": "IMPORT"})));
    let (s, body) = call(
        &r,
        "POST",
        "/subjects/imp/versions",
        Some(json!({"schema": "\"int\"", "id": 100, "version": 3})),
    )
    .await;
    assert_eq!((s, body), (200, json!({"id": 100})));
    let (_, v) = call(&r, "GET", "/subjects/imp/versions/3", None).await;
    assert_eq!(v["id"], json!(100));
    let (s, err) = call(&r, "PUT", "/mode", Some(json!({"mode": "SIDEWAYS"}))).await;
    assert_eq!((s, err["error_code"].as_i64()), (422, Some(42204)));
    call(&r, "PUT", "/mode", Some(json!({"mode": "READWRITE"}))).await;

    // References: a schema using another subject's named type.
    let address = json!({"schema": json!({"type": "record", "name": "Address", "namespace": "acme",
        "fields": [{"name": "city", "type": "string"}]}).to_string()});
    let (_, addr) = call(&r, "POST", "/subjects/addr/versions", Some(address)).await;
    assert_eq!(addr["id"], json!(101), "{addr}");
    let user = json!({
        "schema": json!({"type": "record", "name": "User", "namespace": "acme",
            "fields": [{"name": "home", "type": "Address"}]}).to_string(),
        "references": [{"name": "acme.Address", "subject": "addr", "version": 1}],
    });
    let (s, body) = call(&r, "POST", "/subjects/user/versions", Some(user)).await;
    assert_eq!(s, 200, "{body}");
    let (_, by) = call(&r, "GET", "/subjects/addr/versions/1/referencedby", None).await;
    assert_eq!(by, json!([body["id"]]));
    let (s, err) = call(&r, "DELETE", "/subjects/addr/versions/1", None).await;
    assert_eq!((s, err["error_code"].as_i64()), (422, Some(42206)), "{err}");
    let dangling = json!({"schema": "\"string\"", "references": [{"name": "x", "subject": "none", "version": 1}]});
    let (_, err) = call(&r, "POST", "/subjects/d/versions", Some(dangling)).await;
    assert_eq!(err["error_code"].as_i64(), Some(42201));

    // Permanent delete only after a soft delete; then the subject is gone entirely.
    let (_, err) = call(&r, "DELETE", "/subjects/imp?permanent=true", None).await;
    assert_eq!(err["error_code"].as_i64(), Some(40405));
    let (s, deleted) = call(&r, "DELETE", "/subjects/imp", None).await;
    assert_eq!((s, deleted), (200, json!([3])));
    let (_, err) = call(&r, "DELETE", "/subjects/imp", None).await;
    assert_eq!(err["error_code"].as_i64(), Some(40404));
    let (s, deleted) = call(&r, "DELETE", "/subjects/imp?permanent=TRUE", None).await;
    assert_eq!((s, deleted), (200, json!([3])));
    let (_, err) = call(&r, "GET", "/subjects/imp/versions?deleted=true", None).await;
    assert_eq!(err["error_code"].as_i64(), Some(40401));
    let (_, err) = call(&r, "GET", "/schemas/ids/100", None).await;
    assert_eq!(err["error_code"].as_i64(), Some(40403));

    // After a restart the permanently deleted id 100 stays unused and ids keep growing.
    r.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    let r = c.registry(None).await;
    let (_, fresh) = call(
        &r,
        "POST",
        "/subjects/n/versions",
        Some(json!({"schema": "\"long\""})),
    )
    .await;
    assert!(fresh["id"].as_i64().unwrap_or(0) > 101, "{fresh}");
    r.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    c.stop().await;
}

/// Hostile bodies get Confluent errors, and the registry keeps serving (each of these used to
/// overflow a worker's stack and abort the process, or got axum's plain-text rejection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_get_errors_not_a_crash() {
    let c = cluster().await;
    let r = c.registry(None).await;
    let deep_proto = format!(
        "syntax = \"proto3\";\n{}{}",
        "message A {\n".repeat(1000),
        "}".repeat(1000)
    );
    let deep_avro = format!(
        "{}\"int\"{}",
        r#"{"type":"array","items":"#.repeat(1000),
        "}".repeat(1000)
    );
    let deep_json = format!("{}true{}", r#"{"not":"#.repeat(1000), "}".repeat(1000));
    for (schema, ty) in [
        (deep_proto, "PROTOBUF"),
        (deep_avro, "AVRO"),
        (deep_json, "JSON"),
    ] {
        let req = json!({"schema": schema, "schemaType": ty});
        for path in [
            "/subjects/deep/versions",
            "/compatibility/subjects/deep/versions",
        ] {
            let (s, body) = call(&r, "POST", path, Some(req.clone())).await;
            assert_eq!(
                (s, body["error_code"].as_i64()),
                (422, Some(42201)),
                "{ty}: {body}"
            );
            let message = body["message"].as_str().unwrap_or_default();
            assert!(message.contains("limit of 64 levels"), "{ty}: {message}");
        }
    }
    // Too large both where it is handled and where a follower would forward it.
    let follower = c.registry(Some(&r)).await;
    let huge = vec![b' '; sluice_registry::formats::limits::MAX_BODY_BYTES + 1];
    // Under the body limit (and over axum's default 2 MB) but over the schema limit.
    let big_schema = json!({"schema": "x".repeat(3 << 20)});
    for instance in [&r, &follower] {
        let (s, body) = call(
            instance,
            "POST",
            "/subjects/big/versions",
            Some(big_schema.clone()),
        )
        .await;
        assert_eq!(
            (s, body["error_code"].as_i64()),
            (422, Some(42201)),
            "{body}"
        );
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("limit of 524288 bytes"), "{message}");
        let addr = instance.local_addr().to_string();
        let (status, bytes) = exchange(&addr, "POST", "/subjects/big/versions", &huge)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(
            (status.as_u16(), body["error_code"].as_i64()),
            (413, Some(413)),
            "{body}"
        );
    }
    let _ = follower.shutdown().await;
    let addr = r.local_addr().to_string();
    for bad in [&b"{not json"[..], br#"{"schema": 5}"#, b""] {
        let (status, bytes) = exchange(&addr, "POST", "/subjects/bad/versions", bad)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(
            (status.as_u16(), body["error_code"].as_i64()),
            (400, Some(400)),
            "{body}"
        );
    }
    let (s, body) = call(
        &r,
        "POST",
        "/subjects/fine/versions",
        Some(avro_record(json!([{"name": "a", "type": "string"}]))),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let _ = r.shutdown().await;
    c.stop().await;
}
