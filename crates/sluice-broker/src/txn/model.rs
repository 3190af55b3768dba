//! A transactional id's state, as Kafka's transaction coordinator keeps it.

use std::collections::BTreeSet;

use super::records::TxnLogValue;

/// The states of Kafka's transaction state machine (codes as stored in
/// `__transaction_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    /// No transaction open (after InitProducerId).
    Empty,
    /// Partitions were added; records may be written.
    Ongoing,
    /// Commit decided and durable; markers being written.
    PrepareCommit,
    /// Abort decided and durable; markers being written.
    PrepareAbort,
    /// Every marker of the commit is written.
    CompleteCommit,
    /// Every marker of the abort is written.
    CompleteAbort,
    /// The transactional id expired.
    Dead,
    /// Kafka's intermediate state while a newer producer fences an older one.
    PrepareEpochFence,
}

impl TxnState {
    /// The status byte stored in `__transaction_state`.
    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// The state of a stored status byte.
    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name ListTransactions / DescribeTransactions report (Kafka's `TransactionState`).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// A decision was made and its markers are (being) written.
    pub fn is_prepare(self) -> bool {
        matches!(
            self,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }
}

/// Everything the coordinator knows about one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The transactional id.
    pub transactional_id: String,
    /// Current producer id.
    pub producer_id: i64,
    /// Current producer epoch.
    pub producer_epoch: i16,
    /// The epoch before the last bump by the coordinator itself (a fence or timeout), so a
    /// producer that retries InitProducerId with it is answered instead of fenced; -1 if none.
    pub last_producer_epoch: i16,
    /// `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// Current state.
    pub state: TxnState,
    /// Partitions of the current (or last) transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the current transaction began, or -1.
    pub start_ms: i64,
    /// When the state last changed.
    pub last_update_ms: i64,
    /// For `Prepare*` states: the decision is known to be durable (markers may be written).
    pub prepare_durable: bool,
    /// Markers are written and their durability is being awaited.
    pub completing: bool,
}

impl TxnMetadata {
    /// The stored form.
    pub fn to_value(&self) -> TxnLogValue {
        TxnLogValue {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions: self.partitions.clone(),
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
        }
    }

    /// Rebuilds the state from its stored form (replay); what replay reads is durable.
    pub fn from_value(transactional_id: &str, v: TxnLogValue) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_owned(),
            producer_id: v.producer_id,
            producer_epoch: v.producer_epoch,
            last_producer_epoch: -1,
            timeout_ms: v.timeout_ms,
            state: v.state,
            partitions: v.partitions,
            start_ms: v.start_ms,
            last_update_ms: v.last_update_ms,
            prepare_durable: true,
            completing: false,
        }
    }
}
