//! Interop with confluent-kafka-python's Protobuf serializers, both directions, against a real
//! in-process broker and registry (Python from the workspace's `.venv`).

mod support;

use std::path::PathBuf;
use std::process::Command;

use base64::Engine;
use prost_reflect::{DynamicMessage, Value};
use sluice_sdk::{Consumer, DynamicValue, Producer};
use support::{next, order, Env, Order};

fn python() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.venv/bin/python"
    ));
    p.exists().then_some(p)
}

fn run_python(env: &Env, mode: &str, topic: &str) -> String {
    let Some(py) = python() else {
        panic!(
            "interop needs the workspace venv (.venv with confluent-kafka[schemaregistry,protobuf]); \
             run ./scripts/test.sh once to create it"
        );
    };
    let fds = support::pool().encode_to_vec();
    let out = Command::new(py)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop.py"))
        .env("MODE", mode)
        .env("BOOTSTRAP", &env.bootstrap)
        .env("REGISTRY", &env.registry_url)
        .env("TOPIC", topic)
        .env("FDS", base64::engine::general_purpose::STANDARD.encode(fds))
        .output()
        .unwrap_or_else(|e| panic!("running python: {e}"));
    assert!(
        out.status.success(),
        "python {mode} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_serializer_to_rust_consumer_and_back() {
    let env = Env::full().await;

    // Python -> Rust: typed and dynamic decoding of ProtobufSerializer output.
    let py_env = &env;
    tokio::task::block_in_place(|| run_python(py_env, "produce", "from-python"));
    let c = Consumer::new(env.config("reader"), "g-from-py", &["from-python"]).unwrap();
    for i in 0..3 {
        let r = next(&c).await;
        let o: Order = c
            .decode(&r)
            .await
            .unwrap_or_else(|e| panic!("decode python record: {e}"));
        assert_eq!(o.id, format!("py{i}"));
        assert_eq!(o.total.as_ref().map(|t| t.cents), Some(100 + i));
        let DynamicValue::Protobuf(d) = c.decode_dynamic(&r).await.unwrap() else {
            panic!("expected protobuf")
        };
        let d: DynamicMessage = d;
        assert_eq!(
            d.get_field_by_name("id").as_deref(),
            Some(&Value::String(format!("py{i}")))
        );
        assert_eq!(r.provenance.event_type.as_deref(), Some("shop.Order"));
    }

    // Rust -> Python: ProtobufDeserializer reads SDK output; headers survive.
    let p = Producer::new(env.config("rs-svc")).unwrap();
    for i in 0..3 {
        let mut o = order(&format!("rs{i}"), 4);
        if let Some(t) = o.total.as_mut() {
            t.cents = 500 + i;
        }
        p.send("from-rust", None, &o).await.unwrap();
    }
    let out = tokio::task::block_in_place(|| run_python(&env, "consume", "from-rust"));
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["id"], format!("rs{i}"));
        assert_eq!(l["cents"], 500 + i as i64);
        assert_eq!(l["sku"], "sku-1");
        assert_eq!(l["event_type"], "shop.Order");
        assert_eq!(l["producer_seq"], i.to_string());
    }
    drop((c, p));
    env.stop().await;
}
