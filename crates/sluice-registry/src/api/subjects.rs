//! `/subjects`: listing, registering, looking up and deleting subject versions.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{flag, json, raw, JsonBody, Query, Shared};
use crate::error::RegistryError;
use crate::registry::{SchemaRequest, VersionSpec};

/// `GET /subjects` (`deleted`, `subjectPrefix`).
pub async fn list(State(app): State<Shared>, q: Query) -> Response {
    let deleted = flag(&q, "deleted");
    let prefix = q.get("subjectPrefix").map(String::as_str).unwrap_or("");
    let state = app.registry.state();
    let subjects: Vec<&str> = state
        .subjects
        .iter()
        .filter(|(name, versions)| {
            name.starts_with(prefix) && (deleted || versions.values().any(|e| !e.deleted))
        })
        .map(|(name, _)| name.as_str())
        .collect();
    json(&subjects)
}

/// `GET /subjects/{subject}/versions` (`deleted`).
pub async fn list_versions(
    State(app): State<Shared>,
    Path(subject): Path<String>,
    q: Query,
) -> Result<Response, RegistryError> {
    let deleted = flag(&q, "deleted");
    let state = app.registry.state();
    let versions: Vec<i32> = state
        .subjects
        .get(&subject)
        .map(|vs| {
            vs.iter()
                .filter(|(_, e)| deleted || !e.deleted)
                .map(|(v, _)| *v)
                .collect()
        })
        .unwrap_or_default();
    if versions.is_empty() {
        return Err(RegistryError::SubjectNotFound(subject));
    }
    Ok(json(&versions))
}

#[derive(Serialize)]
struct IdBody {
    id: i64,
}

/// `POST /subjects/{subject}/versions` (`normalize`).
pub async fn register(
    State(app): State<Shared>,
    Path(subject): Path<String>,
    q: Query,
    JsonBody(req): JsonBody<SchemaRequest>,
) -> Result<Response, RegistryError> {
    let id = app
        .registry
        .register(&subject, &req, flag(&q, "normalize"))
        .await?;
    Ok(json(&IdBody { id }))
}

/// `POST /subjects/{subject}` (`normalize`, `deleted`): the version holding this schema.
pub async fn lookup(
    State(app): State<Shared>,
    Path(subject): Path<String>,
    q: Query,
    JsonBody(req): JsonBody<SchemaRequest>,
) -> Result<Response, RegistryError> {
    let view = app
        .registry
        .lookup(&subject, &req, flag(&q, "normalize"), flag(&q, "deleted"))?;
    Ok(json(&view))
}

/// `GET /subjects/{subject}/versions/{version}` (`deleted`).
pub async fn get_version(
    State(app): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
    q: Query,
) -> Result<Response, RegistryError> {
    let spec = VersionSpec::parse(&version)?;
    let mut view = app
        .registry
        .get_version(&subject, spec, flag(&q, "deleted"))?;
    view.schema = app.registry.render(
        view.schema_type,
        &view.schema,
        &view.references,
        q.get("format").map(String::as_str),
    )?;
    Ok(json(&view))
}

/// `GET /subjects/{subject}/versions/{version}/schema`: the schema text alone.
pub async fn get_version_schema(
    State(app): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
    q: Query,
) -> Result<Response, RegistryError> {
    let spec = VersionSpec::parse(&version)?;
    let view = app
        .registry
        .get_version(&subject, spec, flag(&q, "deleted"))?;
    Ok(raw(StatusCode::OK, Bytes::from(view.schema)))
}

/// `GET /subjects/{subject}/versions/{version}/referencedby`: ids of referencing schemas.
pub async fn referenced_by(
    State(app): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Response, RegistryError> {
    let spec = VersionSpec::parse(&version)?;
    let view = app.registry.get_version(&subject, spec, true)?;
    let ids = app.registry.state().referenced_by(&subject, view.version);
    Ok(json(&ids))
}

/// `DELETE /subjects/{subject}/versions/{version}` (`permanent`).
pub async fn delete_version(
    State(app): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
    q: Query,
) -> Result<Response, RegistryError> {
    let spec = VersionSpec::parse(&version)?;
    let deleted = app
        .registry
        .delete_version(&subject, spec, flag(&q, "permanent"))
        .await?;
    Ok(json(&deleted))
}

/// `DELETE /subjects/{subject}` (`permanent`).
pub async fn delete_subject(
    State(app): State<Shared>,
    Path(subject): Path<String>,
    q: Query,
) -> Result<Response, RegistryError> {
    let deleted = app
        .registry
        .delete_subject(&subject, flag(&q, "permanent"))
        .await?;
    Ok(json(&deleted))
}
