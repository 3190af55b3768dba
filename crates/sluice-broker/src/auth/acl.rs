//! The ACL model, from the leaf crate `sluice-acl` it shares with admin clients and KSS.

pub use sluice_acl::*;
