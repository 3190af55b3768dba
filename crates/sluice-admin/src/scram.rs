//! SCRAM user administration (KIP-554): DescribeUserScramCredentials and
//! AlterUserScramCredentials. Passwords are salted and hashed here, so only
//! `Hi(password, salt, iterations)` crosses the network, as with Kafka's own admin client.

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use sluice_sasl::ScramMechanism;

use crate::connection::AdminConnection;
use crate::error::check;
use crate::AdminError;

/// One SCRAM credential of a user, as described by the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// The user.
    pub user: String,
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

/// A change to one user's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramChange {
    /// Set the user's password for `mechanism` (salted and hashed before sending).
    Upsert {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
        /// PBKDF2 iterations (4096..=16384).
        iterations: i32,
        /// The password (never sent).
        password: String,
    },
    /// Remove the user's credential for `mechanism`.
    Delete {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
    },
}

/// The SCRAM credentials of `users` (every user when empty).
pub async fn describe_user_scram_credentials(
    conn: &mut AdminConnection,
    users: &[String],
) -> Result<Vec<ScramCredentialInfo>, AdminError> {
    let names = users
        .iter()
        .map(|u| UserName::default().with_name(StrBytes::from_string(u.clone())))
        .collect::<Vec<_>>();
    let request = DescribeUserScramCredentialsRequest::default()
        .with_users((!names.is_empty()).then_some(names));
    let response = conn.request(&request, 0).await?;
    check(response.error_code, response.error_message.as_ref(), || {
        "describing SCRAM credentials".to_owned()
    })?;
    let mut out = Vec::new();
    for result in response.results {
        let user = result.user.to_string();
        check(result.error_code, result.error_message.as_ref(), || {
            format!("describing the SCRAM credentials of {user}")
        })?;
        for info in result.credential_infos {
            if let Some(mechanism) = ScramMechanism::from_code(info.mechanism) {
                out.push(ScramCredentialInfo {
                    user: user.clone(),
                    mechanism,
                    iterations: info.iterations,
                });
            }
        }
    }
    Ok(out)
}

/// Applies `changes`; fails with the first user the broker refused.
pub async fn alter_user_scram_credentials(
    conn: &mut AdminConnection,
    changes: &[ScramChange],
) -> Result<(), AdminError> {
    let mut request = AlterUserScramCredentialsRequest::default();
    for change in changes {
        match change {
            ScramChange::Upsert {
                user,
                mechanism,
                iterations,
                password,
            } => {
                let rounds = u32::try_from(*iterations).map_err(|_| {
                    AdminError::Config(format!("invalid iteration count {iterations}"))
                })?;
                let salt = sluice_sasl::random_salt(*mechanism)
                    .map_err(|_| AdminError::Config("no randomness for a salt".into()))?;
                let salted =
                    sluice_sasl::salted_password(*mechanism, password.as_bytes(), &salt, rounds);
                request.upsertions.push(
                    ScramCredentialUpsertion::default()
                        .with_name(StrBytes::from_string(user.clone()))
                        .with_mechanism(mechanism.code())
                        .with_iterations(*iterations)
                        .with_salt(Bytes::from(salt))
                        .with_salted_password(Bytes::from(salted)),
                );
            }
            ScramChange::Delete { user, mechanism } => request.deletions.push(
                ScramCredentialDeletion::default()
                    .with_name(StrBytes::from_string(user.clone()))
                    .with_mechanism(mechanism.code()),
            ),
        }
    }
    let response = conn.request(&request, 0).await?;
    for result in response.results {
        check(result.error_code, result.error_message.as_ref(), || {
            format!("altering the SCRAM credentials of {}", result.user.as_str())
        })?;
    }
    Ok(())
}
