//! The fetch planner: which byte ranges of which partitions answer a fetch, decided from the
//! logs' indexes under their locks without reading any record data. The connection writes
//! what was planned straight from the segment files.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, PartitionData};
use kafka_protocol::messages::ProducerId;
use sluice_log::{Isolation, LogError, ReadResult};
use tracing::debug;

use crate::partition::{log_error_code, Partition};

/// One requested partition, resolved once per request.
pub(super) struct Wanted {
    /// The partition, or the error to report for it.
    pub(super) partition: Result<Arc<Partition>, ResponseError>,
    pub(super) index: i32,
    pub(super) offset: i64,
    pub(super) max_bytes: usize,
    pub(super) isolation: Isolation,
}

/// One partition's part of a fetch: the response without its records, and what to read.
pub(super) struct PartitionPlan {
    pub(super) data: PartitionData,
    pub(super) read: Option<ReadResult>,
}

/// The outcome of one planning pass over the requested partitions.
pub(super) struct Plan {
    pub(super) partitions: Vec<PartitionPlan>,
    pub(super) bytes: usize,
    /// Some partition has an error: answer at once, as Kafka does.
    pub(super) error: bool,
}

/// Plans every wanted partition within the response budget, without reading data.
pub(super) fn plan_all(wanted: &[Wanted], max_bytes: usize) -> Plan {
    let mut plan = Plan {
        partitions: Vec::with_capacity(wanted.len()),
        bytes: 0,
        error: false,
    };
    for w in wanted {
        let planned = plan_one(w, max_bytes.saturating_sub(plan.bytes), plan.bytes == 0);
        if planned.data.error_code != 0 {
            plan.error = true;
        }
        plan.bytes += planned.read.as_ref().map_or(0, ReadResult::len);
        plan.partitions.push(planned);
    }
    plan
}

/// Plans one partition. `budget` is what is left of the response's `max_bytes`; `first` says
/// no data precedes this partition, in which case one batch is returned even if larger than the
/// limits (so consumers always make progress, as in Kafka).
fn plan_one(w: &Wanted, budget: usize, first: bool) -> PartitionPlan {
    let data = PartitionData::default().with_partition_index(w.index);
    let partition = match &w.partition {
        Ok(partition) => partition,
        Err(error) => {
            return PartitionPlan {
                data: data.with_error_code(error.code()),
                read: None,
            }
        }
    };
    let limit = w.max_bytes.min(budget);
    let plan = match partition.plan_read(w.offset, limit, w.isolation) {
        Ok(plan) => plan,
        Err(e) => {
            let (hw, lso, start) = partition.with_log(|log| {
                (
                    log.high_watermark(),
                    log.last_stable_offset(),
                    log.log_start_offset(),
                )
            });
            if !matches!(e, LogError::OffsetOutOfRange { .. }) {
                debug!(topic = %partition.topic, partition = w.index, error = %e, "fetch read failed");
            }
            return PartitionPlan {
                data: data
                    .with_error_code(log_error_code(&e).code())
                    .with_high_watermark(hw)
                    .with_last_stable_offset(lso)
                    .with_log_start_offset(start),
                read: None,
            };
        }
    };
    // read_committed consumers drop the batches of these producers' aborted transactions.
    let aborted = plan.aborted_transactions.as_ref().map(|list| {
        list.iter()
            .map(|a| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(a.producer_id))
                    .with_first_offset(a.first_offset)
            })
            .collect()
    });
    let data = data
        .with_high_watermark(plan.high_watermark)
        .with_last_stable_offset(plan.last_stable_offset)
        .with_log_start_offset(plan.log_start_offset)
        .with_aborted_transactions(aborted);
    let skip = plan.is_empty() || (!first && plan.len() > limit) || limit == 0 && !first;
    PartitionPlan {
        data,
        read: (!skip).then_some(plan),
    }
}
