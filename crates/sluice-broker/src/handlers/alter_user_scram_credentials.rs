//! AlterUserScramCredentials (API key 51, v0; KIP-554): adds, replaces and removes SCRAM
//! credentials. The client sends `Hi(password, salt, iterations)`, never the password; the
//! broker keeps only the derived StoredKey and ServerKey. Needs Alter on the cluster.
//!
//! One result per user, in order of first mention; a user whose changes include an invalid
//! one gets that error and none of its changes apply (as in Kafka). The valid users' changes
//! are persisted together.

use std::collections::{HashMap, HashSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use sluice_sasl::{ScramCredential, ScramMechanism};

use super::RequestContext;
use crate::auth::{CredentialChange, Operation};

type Refusal = (ResponseError, String);

/// The changes of one user, or why they are refused.
#[derive(Default)]
struct UserChanges {
    changes: Vec<CredentialChange>,
    refused: Option<Refusal>,
}

/// Handles an AlterUserScramCredentials request.
pub async fn handle(
    ctx: &RequestContext,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let mut order: Vec<String> = Vec::new();
    let mut users: HashMap<String, UserChanges> = HashMap::new();
    let mut seen: HashSet<(String, i8)> = HashSet::new();
    let store = &ctx.broker.sasl.credentials;
    let mut note = |user: String, mechanism: i8, change: Result<CredentialChange, Refusal>| {
        let entry = users.entry(user.clone()).or_insert_with(|| {
            order.push(user.clone());
            UserChanges::default()
        });
        if entry.refused.is_some() {
            return;
        }
        let change = if !seen.insert((user.clone(), mechanism)) {
            Err((
                ResponseError::DuplicateResource,
                format!("a credential of user {user} is altered twice in one request"),
            ))
        } else {
            change
        };
        match change {
            Ok(change) => entry.changes.push(change),
            Err(refusal) => entry.refused = Some(refusal),
        }
    };
    for deletion in &req.deletions {
        let user = deletion.name.to_string();
        let change = validate_user(&user)
            .and_then(|()| mechanism(deletion.mechanism))
            .and_then(|mechanism| {
                if store.has(&user, mechanism) {
                    Ok(CredentialChange::Delete {
                        user: user.clone(),
                        mechanism,
                    })
                } else {
                    Err((
                        ResponseError::ResourceNotFound,
                        format!(
                            "user {user} has no {} credential to delete",
                            mechanism.name()
                        ),
                    ))
                }
            });
        note(user, deletion.mechanism, change);
    }
    for upsertion in &req.upsertions {
        let user = upsertion.name.to_string();
        let change = validate_user(&user)
            .and_then(|()| mechanism(upsertion.mechanism))
            .and_then(|mechanism| {
                upsert(
                    user.clone(),
                    mechanism,
                    upsertion.iterations,
                    &upsertion.salt,
                    &upsertion.salted_password,
                )
            });
        note(user, upsertion.mechanism, change);
    }

    let results: Vec<(String, Option<Refusal>)> = if !ctx.authorize_cluster(Operation::Alter) {
        let refusal = (
            ResponseError::ClusterAuthorizationFailed,
            "altering SCRAM credentials needs ALTER on the cluster".to_owned(),
        );
        order
            .into_iter()
            .map(|u| (u, Some(refusal.clone())))
            .collect()
    } else {
        let changes: Vec<CredentialChange> = order
            .iter()
            .filter_map(|u| users.get(u))
            .filter(|c| c.refused.is_none())
            .flat_map(|c| c.changes.iter().cloned())
            .collect();
        let broker = ctx.broker.clone();
        let stored = tokio::task::spawn_blocking(move || broker.sasl.credentials.apply(changes))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        order
            .into_iter()
            .map(|user| {
                let refused = users.remove(&user).and_then(|c| c.refused);
                let refused = match (&stored, refused) {
                    (_, Some(refusal)) => Some(refusal),
                    (Err(e), None) => Some((ResponseError::UnknownServerError, e.clone())),
                    (Ok(()), None) => None,
                };
                (user, refused)
            })
            .collect()
    };
    AlterUserScramCredentialsResponse::default().with_results(
        results
            .into_iter()
            .map(|(user, refused)| {
                let result = AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user));
                match refused {
                    None => result,
                    Some((error, message)) => result
                        .with_error_code(error.code())
                        .with_error_message(Some(StrBytes::from_string(message))),
                }
            })
            .collect(),
    )
}

fn validate_user(user: &str) -> Result<(), Refusal> {
    if user.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "the user name must not be empty".to_owned(),
        ));
    }
    Ok(())
}

fn mechanism(code: i8) -> Result<ScramMechanism, Refusal> {
    ScramMechanism::from_code(code).ok_or((
        ResponseError::UnsupportedSaslMechanism,
        format!("unknown SCRAM mechanism {code}; 1 is SCRAM-SHA-256 and 2 SCRAM-SHA-512"),
    ))
}

fn upsert(
    user: String,
    mechanism: ScramMechanism,
    iterations: i32,
    salt: &[u8],
    salted_password: &[u8],
) -> Result<CredentialChange, Refusal> {
    let unacceptable = |message: String| (ResponseError::UnacceptableCredential, message);
    if !mechanism.valid_iterations(i64::from(iterations)) {
        return Err(unacceptable(format!(
            "{iterations} iterations is outside 4096..={} for {}",
            sluice_sasl::MAX_ITERATIONS,
            mechanism.name()
        )));
    }
    if salt.is_empty() {
        return Err(unacceptable("the salt must not be empty".to_owned()));
    }
    if salted_password.len() != mechanism.hash_len() {
        return Err(unacceptable(format!(
            "the salted password must be {} bytes for {}",
            mechanism.hash_len(),
            mechanism.name()
        )));
    }
    let iterations =
        u32::try_from(iterations).map_err(|_| unacceptable("negative iterations".into()))?;
    Ok(CredentialChange::Upsert {
        user,
        mechanism,
        credential: ScramCredential::from_salted_password(
            mechanism,
            salt.to_vec(),
            iterations,
            salted_password,
        ),
    })
}
