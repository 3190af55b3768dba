//! Client quotas (KIP-13, KIP-55, KIP-124, KIP-546): byte rates and request-time shares per
//! user, client id, or both, with Kafka's defaults and precedence, persisted in
//! `<data_dir>/meta/client-quotas.json`, and enforced the way Kafka enforces them: the response
//! says how long the client is throttled and the connection reads nothing more until then.
//!
//! With no quota configured every check returns at once; with some, a request costs a handful
//! of map lookups to find the entity whose quota applies (most specific first, as Kafka's
//! `/config/users/<user>/clients/<client-id>` … `/config/clients/<default>` order), and one
//! short lock to take the amount out of that entity's token bucket.

mod store;

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub use crate::rate::TokenBucket;
pub use store::{
    EntityName, EntityPart, QuotaEntity, QuotaError, QuotaOp, QuotaStore, QuotaValues,
};

/// `producer_byte_rate`: bytes per second a user/client may produce.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
/// `consumer_byte_rate`: bytes per second a user/client may fetch.
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// `request_percentage`: share of one request-handling thread, in percent, over the window.
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
/// Every quota key accepted for user and client-id entities.
pub const QUOTA_KEYS: [&str; 3] = [PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE, REQUEST_PERCENTAGE];

/// Most rate sensors kept; beyond it, the longest idle ones are dropped (client ids are chosen
/// by clients, so their number must not grow without bound).
const MAX_SENSORS: usize = 100_000;
/// A sensor idle this long is dropped (Kafka's inactive sensor expiration is one hour).
const SENSOR_IDLE: Duration = Duration::from_secs(3600);

/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// Produced bytes.
    Produce,
    /// Fetched bytes.
    Fetch,
    /// Time spent handling requests.
    Request,
}

impl QuotaKind {
    /// The quota's config key.
    pub fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => PRODUCER_BYTE_RATE,
            QuotaKind::Fetch => CONSUMER_BYTE_RATE,
            QuotaKind::Request => REQUEST_PERCENTAGE,
        }
    }
}

/// Whose usage a sensor counts: the quota entity that matched, with defaults replaced by the
/// client's own names (a default quota limits each user separately, as in Kafka).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SensorKey {
    kind: QuotaKind,
    user: Option<String>,
    client_id: Option<String>,
}

/// The broker's quotas and the usage measured against them.
#[derive(Debug)]
pub struct QuotaManager {
    /// The configured quotas.
    pub store: QuotaStore,
    sensors: parking_lot::Mutex<HashMap<SensorKey, TokenBucket>>,
}

impl QuotaManager {
    /// Wraps a loaded store.
    pub fn new(store: QuotaStore) -> Self {
        QuotaManager {
            store,
            sensors: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// Records `amount` (bytes, or seconds of handling time for [`QuotaKind::Request`]) for the
    /// client `user`/`client_id` and returns how long it must now be throttled (zero when no
    /// quota applies or it is within its quota).
    pub fn record(&self, kind: QuotaKind, user: &str, client_id: &str, amount: f64) -> Duration {
        let Some((quota, key)) = self.applicable(kind, user, client_id) else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        let mut sensors = self.sensors.lock();
        if sensors.len() >= MAX_SENSORS && !sensors.contains_key(&key) {
            evict_idle(&mut sensors, now);
        }
        sensors.entry(key).or_default().record(amount, quota, now)
    }

    /// How long the client must still wait off earlier usage (zero when it owes nothing).
    pub fn debt(&self, kind: QuotaKind, user: &str, client_id: &str) -> Duration {
        let Some((quota, key)) = self.applicable(kind, user, client_id) else {
            return Duration::ZERO;
        };
        match self.sensors.lock().get_mut(&key) {
            Some(bucket) => bucket.record(0.0, quota, Instant::now()),
            None => Duration::ZERO,
        }
    }

    /// The quota (per second; percent for request time) that applies to the client, and the
    /// sensor that counts against it.
    fn applicable(&self, kind: QuotaKind, user: &str, client_id: &str) -> Option<(f64, SensorKey)> {
        let (quota, entity) = self.store.resolve(kind.key(), user, client_id)?;
        let quota = match kind {
            // Percent of one thread's time per second, measured in seconds per second.
            QuotaKind::Request => quota / 100.0,
            QuotaKind::Produce | QuotaKind::Fetch => quota,
        };
        let key = SensorKey {
            kind,
            user: entity.user.map(|_| user.to_owned()),
            client_id: entity.client_id.map(|_| client_id.to_owned()),
        };
        Some((quota, key))
    }
}

/// Drops sensors idle for an hour; if none is, the longest idle tenth.
fn evict_idle(sensors: &mut HashMap<SensorKey, TokenBucket>, now: Instant) {
    let idle = |b: &TokenBucket| {
        b.last_used()
            .map_or(Duration::MAX, |t| now.saturating_duration_since(t))
    };
    sensors.retain(|_, r| idle(r) < SENSOR_IDLE);
    if sensors.len() >= MAX_SENSORS {
        let mut ages: Vec<Duration> = sensors.values().map(idle).collect();
        let cut = (ages.len() - ages.len() / 10).min(ages.len().saturating_sub(1));
        ages.select_nth_unstable(cut);
        let threshold = ages.get(cut).copied().unwrap_or(Duration::ZERO);
        sensors.retain(|_, r| idle(r) < threshold);
    }
}

#[cfg(test)]
mod tests;
