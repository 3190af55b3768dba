use super::store::{EntityName, QuotaOp};
use super::*;

fn entity(user: Option<&str>, client: Option<&str>) -> QuotaEntity {
    let part = |p: Option<&str>| {
        p.map(|n| {
            if n == "<default>" {
                EntityName::Default
            } else {
                EntityName::Named(n.to_owned())
            }
        })
    };
    QuotaEntity {
        user: part(user),
        client_id: part(client),
    }
}

fn set(store: &QuotaStore, e: QuotaEntity, key: &str, value: f64) {
    store
        .apply(vec![(
            e,
            vec![QuotaOp {
                key: key.into(),
                value: Some(value),
            }],
        )])
        .unwrap();
}

#[test]
fn precedence_is_kafkas() {
    let store = QuotaStore::in_memory();
    assert_eq!(store.resolve(PRODUCER_BYTE_RATE, "alice", "app"), None);
    let levels = [
        (None, Some("<default>")),
        (None, Some("app")),
        (Some("<default>"), None),
        (Some("<default>"), Some("<default>")),
        (Some("<default>"), Some("app")),
        (Some("alice"), None),
        (Some("alice"), Some("<default>")),
        (Some("alice"), Some("app")),
    ];
    // Each more specific level wins over all set before it.
    for (i, (user, client)) in levels.into_iter().enumerate() {
        set(
            &store,
            entity(user, client),
            PRODUCER_BYTE_RATE,
            (i + 1) as f64,
        );
        let (value, matched) = store.resolve(PRODUCER_BYTE_RATE, "alice", "app").unwrap();
        assert_eq!(value, (i + 1) as f64);
        assert_eq!(matched, entity(user, client));
    }
    // Another user falls through to the user default; keys resolve independently.
    assert_eq!(
        store.resolve(PRODUCER_BYTE_RATE, "bob", "x").unwrap().0,
        3.0 + 1.0
    );
    assert_eq!(store.resolve(CONSUMER_BYTE_RATE, "alice", "app"), None);
}

#[test]
fn default_quotas_limit_each_user_separately() {
    let manager = QuotaManager::new(QuotaStore::in_memory());
    set(
        &manager.store,
        entity(Some("<default>"), None),
        PRODUCER_BYTE_RATE,
        1000.0,
    );
    // 20 kB in one go is 19 s over a 1 kB/s quota with a 1 s burst: throttled.
    assert!(manager.record(QuotaKind::Produce, "alice", "a", 20_000.0) > Duration::ZERO);
    // Bob has his own bucket and is not throttled for Alice's traffic.
    assert_eq!(
        manager.record(QuotaKind::Produce, "bob", "a", 500.0),
        Duration::ZERO
    );
    // Fetch has no quota here.
    assert_eq!(
        manager.record(QuotaKind::Fetch, "alice", "a", 1e9),
        Duration::ZERO
    );
}

#[test]
fn invalid_changes_are_refused() {
    let e = entity(Some("alice"), None);
    let op = |key: &str, value: Option<f64>| QuotaOp {
        key: key.into(),
        value,
    };
    assert!(QuotaStore::validate(&e, &[op(PRODUCER_BYTE_RATE, Some(1024.0))]).is_ok());
    assert!(QuotaStore::validate(&e, &[op(REQUEST_PERCENTAGE, Some(12.5))]).is_ok());
    for bad in [
        vec![op(PRODUCER_BYTE_RATE, Some(0.0))],
        vec![op(PRODUCER_BYTE_RATE, Some(-5.0))],
        vec![op(PRODUCER_BYTE_RATE, Some(1.5))],
        vec![op(REQUEST_PERCENTAGE, Some(f64::NAN))],
        vec![op("bogus", Some(1.0))],
        vec![
            op(PRODUCER_BYTE_RATE, None),
            op(PRODUCER_BYTE_RATE, Some(1.0)),
        ],
    ] {
        assert!(QuotaStore::validate(&e, &bad).is_err(), "{bad:?}");
    }
    assert!(QuotaStore::validate(&entity(None, None), &[]).is_err());
    assert!(QuotaStore::validate(&entity(Some(""), None), &[]).is_err());
}

#[test]
fn quotas_persist_and_removing_the_last_key_removes_the_entity() {
    let dir = tempfile::tempdir().unwrap();
    let store = QuotaStore::open(dir.path()).unwrap();
    set(
        &store,
        entity(Some("alice"), Some("app")),
        CONSUMER_BYTE_RATE,
        2048.0,
    );
    set(
        &store,
        entity(None, Some("<default>")),
        PRODUCER_BYTE_RATE,
        1024.0,
    );
    store
        .apply(vec![(
            entity(None, Some("<default>")),
            vec![QuotaOp {
                key: PRODUCER_BYTE_RATE.into(),
                value: None,
            }],
        )])
        .unwrap();
    let reopened = QuotaStore::open(dir.path()).unwrap();
    let entries = reopened.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, entity(Some("alice"), Some("app")));
    assert_eq!(entries[0].1.get(CONSUMER_BYTE_RATE), Some(&2048.0));
}
