//! Incremental fetch sessions (KIP-227): a consumer of many partitions names them once, and
//! later fetches send only what changed while responses carry only partitions with news.
//!
//! Protocol, by the request's `(session_id, session_epoch)`:
//! - `(0, -1)`: a full fetch without a session (also every Fetch before v7);
//! - `(0, 0)`: a full fetch that opens a session; the response names its id (or 0 when the
//!   cache is full, and the client goes on with full fetches);
//! - `(id, n > 0)`: an incremental fetch; `n` must be the epoch the session expects next.
//!   Requested partitions are added or updated (new fetch offset), forgotten ones removed,
//!   and the fetch covers every partition of the session;
//! - `(id, 0)` closes `id` and opens a new session, `(id, -1)` closes it and fetches
//!   sessionless.
//!
//! An incremental response lists a partition only if it has records, an error, or a high
//! watermark, last stable offset or log start offset the client has not been told yet.
//! Partitions that were listed move to the end of the session's order, so with a response
//! size limit every partition gets its turn. Sessions belong to the principal that opened
//! them. The cache is bounded in sessions and in partitions; when full, the least recently
//! used session idle for [`SessionLimits::eviction_idle`] makes room, otherwise the new
//! session is refused (id 0), which costs the client only the savings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::TopicName;

use crate::auth::KafkaPrincipal;

/// `session_epoch` of a full fetch that wants no session.
const FINAL_EPOCH: i32 = -1;
/// `session_epoch` of a full fetch that opens a session.
const INITIAL_EPOCH: i32 = 0;

/// Bounds of the session cache.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Most sessions at once (Kafka's `max.incremental.fetch.session.cache.slots`).
    pub max_sessions: usize,
    /// Most partitions summed over all sessions: what bounds the cache's memory.
    pub max_partitions: usize,
    /// How long a session must have been idle before a new one may evict it (Kafka's
    /// `min.incremental.fetch.session.eviction.ms`).
    pub eviction_idle: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_sessions: 1000,
            max_partitions: 200_000,
            eviction_idle: Duration::from_secs(120),
        }
    }
}

/// One partition a fetch asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// Its topic.
    pub topic: TopicName,
    /// Its index.
    pub partition: i32,
    /// Where to read from.
    pub fetch_offset: i64,
    /// Most bytes to return for it.
    pub max_bytes: usize,
}

/// What the client was last told about a session partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported {
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset.
    pub last_stable_offset: i64,
    /// Log start offset.
    pub log_start_offset: i64,
}

#[derive(Debug, Clone)]
struct Cached {
    fetch_offset: i64,
    max_bytes: usize,
    reported: Option<Reported>,
    /// Listed in the response being finished: goes to the back of the order.
    listed: bool,
}

#[derive(Debug)]
struct Session {
    owner: Arc<KafkaPrincipal>,
    /// The epoch the next incremental fetch must carry.
    next_epoch: i32,
    partitions: IndexMap<(TopicName, i32), Cached>,
    last_used: Instant,
}

/// How a fetch relates to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A full fetch; the response lists every partition and carries `session_id` (0 = none).
    Full {
        /// The session opened, or 0.
        session_id: i32,
    },
    /// An incremental fetch of session `session_id`: the response lists changed partitions.
    Incremental {
        /// The session.
        session_id: i32,
    },
}

impl Kind {
    /// The session id the response carries.
    pub fn session_id(self) -> i32 {
        match self {
            Kind::Full { session_id } | Kind::Incremental { session_id } => session_id,
        }
    }
}

/// The partitions a fetch covers, in the order to serve them.
#[derive(Debug)]
pub struct Begun {
    /// Full or incremental.
    pub kind: Kind,
    /// What to fetch.
    pub partitions: Vec<Requested>,
}

#[derive(Debug, Default)]
struct Cache {
    sessions: HashMap<i32, Session>,
    partitions: usize,
}

/// The broker's fetch session cache.
#[derive(Debug)]
pub struct FetchSessions {
    limits: SessionLimits,
    cache: parking_lot::Mutex<Cache>,
}

impl FetchSessions {
    /// An empty cache with these bounds.
    pub fn new(limits: SessionLimits) -> Self {
        FetchSessions {
            limits,
            cache: parking_lot::Mutex::new(Cache::default()),
        }
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.cache.lock().sessions.len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts serving a fetch of `owner` carrying `(session_id, epoch)`, the `requested`
    /// partitions and the `forgotten` ones. Errors are the top-level codes to answer with.
    pub fn begin(
        &self,
        session_id: i32,
        epoch: i32,
        owner: &Arc<KafkaPrincipal>,
        requested: Vec<Requested>,
        forgotten: &[(TopicName, i32)],
    ) -> Result<Begun, ResponseError> {
        let mut cache = self.cache.lock();
        let now = Instant::now();
        if session_id == 0 {
            return Ok(match epoch {
                INITIAL_EPOCH => self.open(&mut cache, owner, requested, now),
                // FINAL_EPOCH, and anything else a sessionless client sends.
                _ => Begun {
                    kind: Kind::Full { session_id: 0 },
                    partitions: requested,
                },
            });
        }
        let Some(session) = cache
            .sessions
            .get_mut(&session_id)
            .filter(|s| s.owner == *owner)
        else {
            return Err(ResponseError::FetchSessionIdNotFound);
        };
        match epoch {
            FINAL_EPOCH | INITIAL_EPOCH => {
                close(&mut cache, session_id);
                Ok(if epoch == INITIAL_EPOCH {
                    self.open(&mut cache, owner, requested, now)
                } else {
                    Begun {
                        kind: Kind::Full { session_id: 0 },
                        partitions: requested,
                    }
                })
            }
            n if n != session.next_epoch => Err(ResponseError::InvalidFetchSessionEpoch),
            _ => {
                let before = session.partitions.len();
                if !forgotten.is_empty() {
                    // One pass, however many are forgotten (a request may name thousands).
                    let forgotten: std::collections::HashSet<_> = forgotten.iter().collect();
                    session.partitions.retain(|key, _| !forgotten.contains(key));
                }
                for r in requested {
                    let entry =
                        session
                            .partitions
                            .entry((r.topic, r.partition))
                            .or_insert(Cached {
                                fetch_offset: r.fetch_offset,
                                max_bytes: r.max_bytes,
                                reported: None,
                                listed: false,
                            });
                    entry.fetch_offset = r.fetch_offset;
                    entry.max_bytes = r.max_bytes;
                }
                let after = session.partitions.len();
                cache.partitions = cache.partitions - before + after;
                if after > before && cache.partitions > self.limits.max_partitions {
                    // The session grew past the cache's bound: end it; the client starts over
                    // with a full fetch (and gets no session if still too large).
                    close(&mut cache, session_id);
                    return Err(ResponseError::FetchSessionIdNotFound);
                }
                let Some(session) = cache.sessions.get_mut(&session_id) else {
                    return Err(ResponseError::FetchSessionIdNotFound);
                };
                session.next_epoch = next_epoch(session.next_epoch);
                session.last_used = now;
                Ok(Begun {
                    kind: Kind::Incremental { session_id },
                    partitions: session
                        .partitions
                        .iter()
                        .map(|((topic, partition), c)| Requested {
                            topic: topic.clone(),
                            partition: *partition,
                            fetch_offset: c.fetch_offset,
                            max_bytes: c.max_bytes,
                        })
                        .collect(),
                })
            }
        }
    }

    /// Finishes a fetch begun with `kind`: given, per partition fetched (in the order
    /// [`Self::begin`] returned), what the response would say and whether it carries records,
    /// returns which partitions the response lists, and remembers what the client was told.
    pub fn finish(&self, kind: Kind, fetched: &[(&Requested, Reported, bool)]) -> Vec<bool> {
        let session_id = kind.session_id();
        if session_id == 0 {
            // Sessionless: everything is listed, and the cache is not touched.
            return vec![true; fetched.len()];
        }
        let mut cache = self.cache.lock();
        let Some(session) = cache.sessions.get_mut(&session_id) else {
            // The session vanished meanwhile (evicted or closed): everything is listed.
            return vec![true; fetched.len()];
        };
        let incremental = matches!(kind, Kind::Incremental { .. });
        let mut listed = Vec::with_capacity(fetched.len());
        let mut moved = false;
        for (requested, reported, has_news) in fetched {
            let key = (requested.topic.clone(), requested.partition);
            let Some(cached) = session.partitions.get_mut(&key) else {
                listed.push(!incremental);
                continue;
            };
            let list = !incremental || *has_news || cached.reported != Some(*reported);
            if list {
                cached.reported = Some(*reported);
                cached.listed = incremental;
                moved |= incremental;
            }
            listed.push(list);
        }
        if moved {
            // Listed partitions go to the back (in their order), so the next fetch serves the
            // others first; one pass over the session.
            let all = std::mem::take(&mut session.partitions);
            let (mut front, back): (IndexMap<_, _>, IndexMap<_, _>) =
                all.into_iter().partition(|(_, c)| !c.listed);
            front.extend(back.into_iter().map(|(key, mut c)| {
                c.listed = false;
                (key, c)
            }));
            session.partitions = front;
        }
        listed
    }

    /// Opens a session with `requested`, making room if the cache is full.
    fn open(
        &self,
        cache: &mut Cache,
        owner: &Arc<KafkaPrincipal>,
        requested: Vec<Requested>,
        now: Instant,
    ) -> Begun {
        let size = requested.len();
        let mut partitions = IndexMap::with_capacity(size);
        for r in &requested {
            partitions.insert(
                (r.topic.clone(), r.partition),
                Cached {
                    fetch_offset: r.fetch_offset,
                    max_bytes: r.max_bytes,
                    reported: None,
                    listed: false,
                },
            );
        }
        let fits = |cache: &Cache| {
            cache.sessions.len() < self.limits.max_sessions
                && cache.partitions + partitions.len() <= self.limits.max_partitions
        };
        while !fits(cache) {
            let idle = cache
                .sessions
                .iter()
                .filter(|(_, s)| now.duration_since(s.last_used) >= self.limits.eviction_idle)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id);
            match idle {
                Some(id) => close(cache, id),
                None => break,
            }
        }
        if partitions.len() > self.limits.max_partitions || !fits(cache) {
            return Begun {
                kind: Kind::Full { session_id: 0 },
                partitions: requested,
            };
        }
        let session_id = loop {
            let id = rand_session_id();
            if !cache.sessions.contains_key(&id) {
                break id;
            }
        };
        cache.partitions += partitions.len();
        cache.sessions.insert(
            session_id,
            Session {
                owner: owner.clone(),
                next_epoch: 1,
                partitions,
                last_used: now,
            },
        );
        Begun {
            kind: Kind::Full { session_id },
            partitions: requested,
        }
    }
}

fn close(cache: &mut Cache, session_id: i32) {
    if let Some(session) = cache.sessions.remove(&session_id) {
        cache.partitions -= session.partitions.len();
    }
}

/// The epoch after `epoch`: it wraps to 1, since 0 and -1 have their own meanings.
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

/// A random positive session id (hard to guess, so sessions are not easily hijacked even
/// before the owner check).
fn rand_session_id() -> i32 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let n = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) & i32::MAX;
    n.max(1)
}

#[cfg(test)]
mod tests;
