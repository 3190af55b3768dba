//! `/schemas`: schemas by id, and the supported types.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use std::sync::Arc;

use super::{flag, json, raw, Query, Shared};
use crate::error::RegistryError;
use crate::formats::SchemaType;
use crate::store::records::SchemaReference;

/// `GET /schemas/types`.
pub async fn types() -> Response {
    json(&["JSON", "PROTOBUF", "AVRO"])
}

/// The id of a `/schemas/ids/{id}` path; anything but a number matches no route in
/// Confluent's registry, so it gets the plain 404 an unknown path gets.
fn parse_id(id: &str) -> Result<i64, RegistryError> {
    id.parse().map_err(|_| RegistryError::NoSuchPath)
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
        .ok_or_else(|| RegistryError::SchemaNotFound(Some(id.to_string())))?;
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
        .ok_or_else(|| RegistryError::SchemaNotFound(Some(id.to_string())))?;
    Ok(raw(StatusCode::OK, Bytes::from(text)))
}

/// The subject versions using schema `id`, soft-deleted ones only when `deleted`: an id whose
/// users are all soft-deleted still exists (an empty list), one never assigned or permanently
/// deleted is 40403 without the id in the message, as in Confluent.
fn users_of(app: &Shared, id: &str, deleted: bool) -> Result<Vec<(String, i32)>, RegistryError> {
    let id = parse_id(id)?;
    let state = app.registry.state();
    let users = state
        .id_users
        .get(&id)
        .ok_or(RegistryError::SchemaNotFound(None))?;
    Ok(users
        .iter()
        .filter(|(s, v)| {
            deleted
                || state
                    .subjects
                    .get(s)
                    .and_then(|vs| vs.get(v))
                    .is_some_and(|e| !e.deleted)
        })
        .cloned()
        .collect())
}

/// `GET /schemas/ids/{id}/subjects` (`deleted`).
pub async fn by_id_subjects(
    State(app): State<Shared>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, RegistryError> {
    let users = users_of(&app, &id, flag(&q, "deleted"))?;
    let mut subjects: Vec<&str> = users.iter().map(|(s, _)| s.as_str()).collect();
    subjects.dedup();
    Ok(json(&subjects))
}

#[derive(Serialize)]
struct SubjectVersion<'a> {
    subject: &'a str,
    version: i32,
}

/// `GET /schemas/ids/{id}/versions` (`deleted`).
pub async fn by_id_versions(
    State(app): State<Shared>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, RegistryError> {
    let users = users_of(&app, &id, flag(&q, "deleted"))?;
    let out: Vec<SubjectVersion<'_>> = users
        .iter()
        .map(|(s, v)| SubjectVersion {
            subject: s,
            version: *v,
        })
        .collect();
    Ok(json(&out))
}

/// Most schemas one `GET /schemas` answers with, and the count when `limit` is absent or out
/// of range (Confluent's `schema.search.max.limit` and `schema.search.default.limit`).
const MAX_LISTED_SCHEMAS: usize = 1000;

/// An integer query parameter; one that is not a number is a 404, as Confluent's routing
/// answers it.
fn int_param(q: &Query, name: &str) -> Result<Option<i64>, RegistryError> {
    q.get(name)
        .map(|v| v.parse::<i64>().map_err(|_| RegistryError::NoSuchPath))
        .transpose()
}

#[derive(Serialize)]
struct ListedSchema<'a> {
    subject: &'a str,
    version: i32,
    id: i64,
    #[serde(rename = "schemaType", skip_serializing_if = "SchemaType::is_avro")]
    schema_type: SchemaType,
    #[serde(skip_serializing_if = "<[SchemaReference]>::is_empty")]
    references: &'a [SchemaReference],
    schema: &'a str,
}

/// `GET /schemas` (`subjectPrefix`, `deleted`, `latestOnly`, `offset`, `limit`): subject
/// versions ordered by subject then version, paged after ordering.
pub async fn list(State(app): State<Shared>, q: Query) -> Result<Response, RegistryError> {
    let prefix = q.get("subjectPrefix").map(String::as_str).unwrap_or("");
    let deleted = flag(&q, "deleted");
    let latest_only = flag(&q, "latestOnly");
    let offset = usize::try_from(int_param(&q, "offset")?.unwrap_or(0)).unwrap_or(0);
    let limit = int_param(&q, "limit")?
        .and_then(|l| usize::try_from(l).ok())
        .filter(|l| (1..=MAX_LISTED_SCHEMAS).contains(l))
        .unwrap_or(MAX_LISTED_SCHEMAS);
    let state = app.registry.state();
    let mut out = Vec::new();
    let matching = state
        .subjects
        .range::<str, _>((
            std::ops::Bound::Included(prefix),
            std::ops::Bound::Unbounded,
        ))
        .take_while(|(subject, _)| subject.starts_with(prefix));
    'subjects: for (subject, versions) in matching {
        let visible: Vec<(&i32, &crate::store::state::VersionEntry)> = versions
            .iter()
            .filter(|(_, e)| deleted || !e.deleted)
            .collect();
        let chosen = if latest_only {
            visible.last().map(std::slice::from_ref).unwrap_or_default()
        } else {
            &visible[..]
        };
        for (version, entry) in chosen {
            if out.len() >= offset.saturating_add(limit) {
                break 'subjects;
            }
            if let Some(s) = state.schemas.get(&entry.id) {
                out.push((subject.as_str(), **version, entry.id, Arc::clone(s)));
            }
        }
    }
    let page: Vec<ListedSchema<'_>> = out
        .iter()
        .skip(offset)
        .map(|(subject, version, id, s)| ListedSchema {
            subject,
            version: *version,
            id: *id,
            schema_type: s.schema_type,
            references: &s.references,
            schema: &s.schema,
        })
        .collect();
    Ok(json(&page))
}
