//! ACLs as code: the `acl.yml` model, the plan that converges a cluster to it, applying the plan
//! with DescribeAcls/CreateAcls/DeleteAcls, and drift detection.

mod apply;
pub(crate) mod drift;
mod model;
mod plan;

pub use apply::{apply, compute_plan};
pub use drift::DriftReport;
pub use model::{AclFile, AclFileError, RawAcl, ServiceAcls, DEFAULT_PRINCIPAL};
pub use plan::Plan;
