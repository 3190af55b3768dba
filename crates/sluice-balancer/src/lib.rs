//! Partition rebalancing for any Kafka cluster (Cruise Control's job): a [`model`] of the
//! cluster built from the standard admin protocol, [`goals`] in a priority order the user can
//! change, an [`optimizer`] that prefers few and small moves, and the resulting
//! [`proposal`].
//!
//! The optimizer keeps every aggregate a goal reads up to date per action ([`state`]), so a
//! proposal for 100,000 partitions takes seconds, not the hours Cruise Control needs on its
//! largest reported clusters.

pub mod baseline;
pub mod collect;
pub mod execute;
pub mod goals;
pub mod model;
pub mod optimizer;
pub mod proposal;
mod search;
pub mod state;

pub use goals::{GoalKind, GoalSettings};
pub use model::ClusterModel;
pub use optimizer::{optimize, OptimizationError};
pub use proposal::Proposal;
