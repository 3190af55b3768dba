//! `/compatibility`: testing a schema against a subject without registering it.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;

use super::{flag, json, JsonBody, Query, Shared};
use crate::error::RegistryError;
use crate::registry::{SchemaRequest, VersionSpec};

#[derive(Serialize)]
struct Verdict {
    is_compatible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<String>>,
}

fn verdict(problems: Vec<String>, verbose: bool) -> Response {
    json(&Verdict {
        is_compatible: problems.is_empty(),
        messages: verbose.then_some(problems),
    })
}

/// `POST /compatibility/subjects/{subject}/versions` (`verbose`): against the versions the
/// subject's level names.
pub async fn against_all(
    State(app): State<Shared>,
    Path(subject): Path<String>,
    q: Query,
    JsonBody(req): JsonBody<SchemaRequest>,
) -> Result<Response, RegistryError> {
    let problems = app.registry.test_compatibility(&subject, None, &req)?;
    Ok(verdict(problems, flag(&q, "verbose")))
}

/// `POST /compatibility/subjects/{subject}/versions/{version}` (`verbose`).
pub async fn against_version(
    State(app): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
    q: Query,
    JsonBody(req): JsonBody<SchemaRequest>,
) -> Result<Response, RegistryError> {
    let spec = VersionSpec::parse(&version)?;
    let problems = app
        .registry
        .test_compatibility(&subject, Some(spec), &req)?;
    Ok(verdict(problems, flag(&q, "verbose")))
}
