//! What v2 and v3 produce share: where a key's or value's schema comes from, turning request
//! JSON into record bytes, partition checks, and counting outcomes.

use std::sync::Arc;

use serde_json::value::RawValue;

use crate::codec::{self, Format, Writer};
use crate::error::{ApiError, ApiResult};
use crate::server::App;

/// Where a schema comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SchemaSource {
    /// A registered id.
    Id(u32),
    /// Schema text, registered under the subject on first use.
    Inline(String),
}

/// How one side (key or value) of a request's records is written.
#[derive(Clone)]
pub(crate) struct Side {
    format: Format,
    schema: Option<(u32, Arc<Writer>)>,
}

impl Side {
    /// A format without schema.
    pub(crate) fn plain(format: Format) -> Self {
        Side {
            format,
            schema: None,
        }
    }

    /// A schema format, its schema found or registered under `subject`.
    pub(crate) async fn with_schema(
        app: &App,
        format: Format,
        subject: &str,
        source: SchemaSource,
    ) -> ApiResult<Self> {
        let id = match source {
            SchemaSource::Id(id) => id,
            SchemaSource::Inline(text) => app.schemas.register(subject, format, &text).await?,
        };
        let writer = app.schemas.writer(id, format).await?;
        Ok(Side {
            format,
            schema: Some((id, writer)),
        })
    }

    /// Version `version` (`-1`: the latest) of `subject`, in whatever format it is.
    pub(crate) async fn with_any_version(
        app: &App,
        subject: &str,
        version: i32,
    ) -> ApiResult<Self> {
        let id = app.schemas.subject_version(subject, version).await?;
        Self::registered(app, id).await
    }

    /// A registered schema, in whatever format it is.
    pub(crate) async fn registered(app: &App, id: u32) -> ApiResult<Self> {
        let (format, writer) = app.schemas.any_writer(id).await?;
        Ok(Side {
            format,
            schema: Some((id, writer)),
        })
    }

    /// The format.
    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// The schema id, for schema formats.
    pub(crate) fn schema_id(&self) -> Option<u32> {
        self.schema.as_ref().map(|(id, _)| *id)
    }

    /// The record type name, for `event_type`.
    pub(crate) fn type_name(&self) -> Option<String> {
        self.schema.as_ref().and_then(|(_, w)| w.type_name())
    }

    /// Record bytes for `raw` (`None`, JSON `null` or absent, is a tombstone or no key).
    pub(crate) fn encode(&self, raw: Option<&RawValue>) -> ApiResult<Option<Vec<u8>>> {
        let Some(raw) = raw else { return Ok(None) };
        match &self.schema {
            Some((id, writer)) => codec::encode_framed(writer, *id, raw).map(Some),
            None => codec::encode_plain(self.format, raw).map(Some),
        }
    }
}

/// 40402 unless `partition` is one of `count`.
pub(crate) fn check_partition(topic: &str, partition: i32, count: i32) -> ApiResult<()> {
    if (0..count).contains(&partition) {
        Ok(())
    } else {
        Err(ApiError::partition_not_found(topic, partition))
    }
}

/// `<topic>-key` or `<topic>-value` (Confluent's TopicNameStrategy).
pub(crate) fn topic_subject(topic: &str, is_key: bool) -> String {
    format!("{topic}-{}", if is_key { "key" } else { "value" })
}
