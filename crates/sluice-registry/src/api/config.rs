//! `/config`: global and subject compatibility levels.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::{flag, json, JsonBody, Query, Shared};
use crate::error::RegistryError;
use crate::formats::CompatibilityLevel;

/// `PUT /config` body.
#[derive(Deserialize)]
pub struct ConfigUpdate {
    /// The requested value, validated by the handler.
    pub compatibility: String,
}

#[derive(Serialize)]
struct ConfigUpdated<'a> {
    compatibility: &'a str,
}

#[derive(Serialize)]
struct ConfigView<'a> {
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: &'a str,
}

fn level_view(level: CompatibilityLevel) -> Response {
    json(&ConfigView {
        compatibility_level: level.as_str(),
    })
}

async fn put(
    app: &Shared,
    subject: Option<&str>,
    update: ConfigUpdate,
) -> Result<Response, RegistryError> {
    let level: CompatibilityLevel = update
        .compatibility
        .parse()
        .map_err(|_| RegistryError::InvalidCompatibility)?;
    app.registry.set_config(subject, Some(level)).await?;
    Ok(json(&ConfigUpdated {
        compatibility: level.as_str(),
    }))
}

/// `GET /config`.
pub async fn get_global(State(app): State<Shared>) -> Response {
    let level = app.registry.state().global_compat.unwrap_or_default();
    level_view(level)
}

/// `PUT /config`.
pub async fn put_global(
    State(app): State<Shared>,
    JsonBody(update): JsonBody<ConfigUpdate>,
) -> Result<Response, RegistryError> {
    put(&app, None, update).await
}

/// `GET /config/{subject}` (`defaultToGlobal`).
pub async fn get_subject(
    State(app): State<Shared>,
    Path(subject): Path<String>,
    q: Query,
) -> Result<Response, RegistryError> {
    let state = app.registry.state();
    match state.subject_compat.get(&subject) {
        Some(level) => Ok(level_view(*level)),
        None if flag(&q, "defaultToGlobal") => Ok(level_view(state.compat_for(&subject))),
        None => Err(RegistryError::SubjectCompatNotConfigured(subject)),
    }
}

/// `PUT /config/{subject}`.
pub async fn put_subject(
    State(app): State<Shared>,
    Path(subject): Path<String>,
    JsonBody(update): JsonBody<ConfigUpdate>,
) -> Result<Response, RegistryError> {
    put(&app, Some(&subject), update).await
}

/// `DELETE /config/{subject}`: returns the level it had.
pub async fn delete_subject(
    State(app): State<Shared>,
    Path(subject): Path<String>,
) -> Result<Response, RegistryError> {
    let previous = app.registry.state().subject_compat.get(&subject).copied();
    let previous = previous.ok_or_else(|| RegistryError::SubjectNotFound(subject.clone()))?;
    app.registry.set_config(Some(&subject), None).await?;
    Ok(level_view(previous))
}
