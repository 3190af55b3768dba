//! `/mode`: global and subject modes (READWRITE, READONLY, READONLY_OVERRIDE, IMPORT).

use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::{flag, json, JsonBody, Query, Shared};
use crate::error::RegistryError;
use crate::store::state::Mode;

/// `PUT /mode` body.
#[derive(Deserialize)]
pub struct ModeUpdate {
    /// The requested value, validated by the handler.
    pub mode: String,
}

#[derive(Serialize)]
struct ModeView<'a> {
    mode: &'a str,
}

fn view(mode: Mode) -> Response {
    json(&ModeView {
        mode: mode.as_str(),
    })
}

async fn put(
    app: &Shared,
    subject: Option<&str>,
    q: &Query,
    update: ModeUpdate,
) -> Result<Response, RegistryError> {
    let mode: Mode = update.mode.parse().map_err(RegistryError::InvalidMode)?;
    app.registry
        .set_mode(subject, Some(mode), flag(q, "force"))
        .await?;
    Ok(view(mode))
}

/// `GET /mode`.
pub async fn get_global(State(app): State<Shared>) -> Response {
    view(app.registry.state().global_mode.unwrap_or_default())
}

/// `PUT /mode` (`force`).
pub async fn put_global(
    State(app): State<Shared>,
    q: Query,
    JsonBody(update): JsonBody<ModeUpdate>,
) -> Result<Response, RegistryError> {
    put(&app, None, &q, update).await
}

/// `GET /mode/{subject}` (`defaultToGlobal`).
pub async fn get_subject(
    State(app): State<Shared>,
    Path(subject): Path<String>,
    q: Query,
) -> Result<Response, RegistryError> {
    let state = app.registry.state();
    match state.subject_mode.get(&subject) {
        Some(mode) => Ok(view(*mode)),
        None if flag(&q, "defaultToGlobal") => Ok(view(state.mode_for(&subject))),
        None => Err(RegistryError::SubjectModeNotConfigured(subject)),
    }
}

/// `PUT /mode/{subject}` (`force`).
pub async fn put_subject(
    State(app): State<Shared>,
    Path(subject): Path<String>,
    q: Query,
    JsonBody(update): JsonBody<ModeUpdate>,
) -> Result<Response, RegistryError> {
    put(&app, Some(&subject), &q, update).await
}

/// `DELETE /mode/{subject}`: returns the mode it had.
pub async fn delete_subject(
    State(app): State<Shared>,
    Path(subject): Path<String>,
) -> Result<Response, RegistryError> {
    let previous = app.registry.state().subject_mode.get(&subject).copied();
    let previous =
        previous.ok_or_else(|| RegistryError::SubjectModeNotConfigured(subject.clone()))?;
    app.registry.set_mode(Some(&subject), None, false).await?;
    Ok(view(previous))
}
