//! DescribeUserScramCredentials (API key 50, v0; KIP-554): the mechanisms and iteration counts
//! of users' SCRAM credentials (never salts or keys). Needs Describe on the cluster. No user
//! list (or an empty one) describes every user, as in Kafka.

use std::collections::HashSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::Operation;

/// Handles a DescribeUserScramCredentials request.
pub async fn handle(
    ctx: &RequestContext,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let response = DescribeUserScramCredentialsResponse::default();
    if !ctx.authorize_cluster(Operation::Describe) {
        return response
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "describing SCRAM credentials needs DESCRIBE on the cluster",
            )));
    }
    let store = &ctx.broker.sasl.credentials;
    let named: Vec<String> = req
        .users
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    let describe_all = named.is_empty();
    let users = if describe_all { store.users() } else { named };
    let mut seen = HashSet::new();
    let duplicates: HashSet<&String> = users.iter().filter(|u| !seen.insert(*u)).collect();
    let mut reported = HashSet::new();
    let results = users
        .iter()
        .filter(|user| reported.insert(*user))
        .map(|user| {
            let result = DescribeUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user.clone()));
            if duplicates.contains(user) {
                return failure(
                    result,
                    ResponseError::DuplicateResource,
                    format!("user {user} is named more than once in the request"),
                );
            }
            let credentials = store.describe(user);
            if credentials.is_empty() {
                return failure(
                    result,
                    ResponseError::ResourceNotFound,
                    format!("user {user} has no SCRAM credentials"),
                );
            }
            result.with_credential_infos(
                credentials
                    .into_iter()
                    .map(|(mechanism, iterations)| {
                        CredentialInfo::default()
                            .with_mechanism(mechanism.code())
                            .with_iterations(i32::try_from(iterations).unwrap_or(i32::MAX))
                    })
                    .collect(),
            )
        })
        .collect();
    response.with_results(results)
}

fn failure(
    result: DescribeUserScramCredentialsResult,
    error: ResponseError,
    message: String,
) -> DescribeUserScramCredentialsResult {
    result
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}
