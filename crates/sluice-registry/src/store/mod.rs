//! The registry's durable state: records in the `_schemas` topic and the in-memory state
//! machine they are applied to.

pub mod log;
pub mod records;
pub mod state;
