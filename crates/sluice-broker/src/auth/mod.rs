//! Authentication and authorization: who a client is and what it may do.
//!
//! - [`principal`]: the principal of a TLS client (RFC 2253 subject + mapping rules);
//! - [`acl`]: ACL bindings, filters and their validation;
//! - [`authorizer`]: the decision point with Kafka's semantics and the persisted ACL store;
//! - [`credentials`]: the SCRAM credential store;
//! - [`sasl`]: the SASL server (mechanisms, token keys, session lifetime).

pub mod acl;
pub mod authorizer;
pub mod credentials;
mod der;
pub mod principal;
pub mod sasl;

pub use acl::{
    AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType, CLUSTER_NAME,
    CLUSTER_OPERATIONS, GROUP_OPERATIONS, TOPIC_OPERATIONS,
};
pub use authorizer::{run_blocking, AclError, Authorizer, AuthorizerConfig};
pub use credentials::{CredentialChange, CredentialError, ScramStore};
pub use principal::{KafkaPrincipal, PrincipalMapper};
pub use sasl::{SaslServer, SaslSetupError};
