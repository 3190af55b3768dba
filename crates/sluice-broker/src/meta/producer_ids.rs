//! Allocation of idempotent producer ids that are never handed out twice, even across restarts.
//!
//! Ids are reserved in blocks: the end of the current block is persisted before any id of the
//! block is used, so after a crash the broker continues after the block end.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::store::{read_json, write_json};
use super::MetaError;

/// How many ids one persisted reservation covers.
const BLOCK_SIZE: i64 = 1000;

/// Persisted form: every id below `block_end` may have been used.
#[derive(Debug, Serialize, Deserialize)]
struct Reservation {
    block_end: i64,
}

/// Next id and the end of the reserved block.
#[derive(Debug)]
struct State {
    next: i64,
    block_end: i64,
}

/// Hands out producer ids for InitProducerId.
#[derive(Debug)]
pub struct ProducerIdAllocator {
    path: PathBuf,
    state: parking_lot::Mutex<State>,
}

impl ProducerIdAllocator {
    /// Loads the reservation from `<data_dir>/meta/producer_ids.json`.
    pub fn open(data_dir: &Path) -> Result<Self, MetaError> {
        let path = data_dir.join("meta").join("producer_ids.json");
        let start = read_json::<Reservation>(&path)?.map_or(0, |r| r.block_end.max(0));
        Ok(ProducerIdAllocator {
            path,
            state: parking_lot::Mutex::new(State {
                next: start,
                block_end: start,
            }),
        })
    }

    /// A fresh producer id.
    pub fn allocate(&self) -> Result<i64, MetaError> {
        let mut state = self.state.lock();
        if state.next >= state.block_end {
            let block_end = state.next.saturating_add(BLOCK_SIZE);
            // Persisted under the lock: rare (once per block) and must precede handing out ids.
            write_json(&self.path, &Reservation { block_end })?;
            state.block_end = block_end;
        }
        let id = state.next;
        state.next += 1;
        Ok(id)
    }
}
