//! `/schemas`: schemas by id, and the supported types.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{json, raw, Query, Shared};
use crate::error::RegistryError;
use crate::formats::SchemaType;
use crate::store::records::SchemaReference;

/// `GET /schemas/types`.
pub async fn types() -> Response {
    json(&["JSON", "PROTOBUF", "AVRO"])
}

fn parse_id(id: &str) -> Result<i64, RegistryError> {
    id.parse()
        .map_err(|_| RegistryError::SchemaNotFound(id.to_string()))
}

#[derive(Serialize)]
struct ByIdBody<'a> {
    schema: &'a str,
    #[serde(rename = "schemaType")]
    schema_type: SchemaType,
    #[serde(skip_serializing_if = "<[SchemaReference]>::is_empty")]
    references: &'a [SchemaReference],
}

/// `GET /schemas/ids/{id}` (`format`): served from a pre-rendered body unless a PROTOBUF
/// schema is asked for in another format.
pub async fn by_id(
    State(app): State<Shared>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, RegistryError> {
    let id = parse_id(&id)?;
    let entry = app
        .registry
        .state()
        .schemas
        .get(&id)
        .cloned()
        .ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))?;
    let format = q.get("format").map(String::as_str);
    if entry.schema_type != SchemaType::Protobuf || format.is_none() {
        return Ok(raw(StatusCode::OK, entry.by_id_body.clone()));
    }
    let schema =
        app.registry
            .render(entry.schema_type, &entry.schema, &entry.references, format)?;
    Ok(json(&ByIdBody {
        schema: &schema,
        schema_type: entry.schema_type,
        references: &entry.references,
    }))
}

/// `GET /schemas/ids/{id}/schema`: the schema text alone.
pub async fn by_id_schema(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, RegistryError> {
    let id = parse_id(&id)?;
    let text = app
        .registry
        .state()
        .schemas
        .get(&id)
        .map(|s| s.schema.clone())
        .ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))?;
    Ok(raw(StatusCode::OK, Bytes::from(text)))
}

/// `GET /schemas/ids/{id}/subjects`.
pub async fn by_id_subjects(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, RegistryError> {
    let id = parse_id(&id)?;
    let state = app.registry.state();
    let users = state
        .id_users
        .get(&id)
        .ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))?;
    let mut subjects: Vec<&str> = users.iter().map(|(s, _)| s.as_str()).collect();
    subjects.dedup();
    Ok(json(&subjects))
}

#[derive(Serialize)]
struct SubjectVersion<'a> {
    subject: &'a str,
    version: i32,
}

/// `GET /schemas/ids/{id}/versions`.
pub async fn by_id_versions(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, RegistryError> {
    let id = parse_id(&id)?;
    let state = app.registry.state();
    let users = state
        .id_users
        .get(&id)
        .ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))?;
    let out: Vec<SubjectVersion<'_>> = users
        .iter()
        .map(|(s, v)| SubjectVersion {
            subject: s,
            version: *v,
        })
        .collect();
    Ok(json(&out))
}
