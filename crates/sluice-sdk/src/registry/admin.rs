//! Reading and changing a registry's subjects and compatibility levels: what platform-as-code
//! (`sluice plan`, `apply`, `export`) needs beyond the serializers' register and fetch.

use serde::Deserialize;

use super::{bad_answer, encode_path, schema_body, RegistryClient, SchemaReference};
use crate::error::{Error, Result};

/// One version of a subject, schema in its text form (`.avsc`, `.proto`, JSON Schema).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SubjectVersion {
    /// The version number.
    pub version: i32,
    /// The global schema id.
    pub id: u32,
    /// AVRO (when absent), PROTOBUF or JSON.
    #[serde(rename = "schemaType", default = "super::avro")]
    pub schema_type: String,
    /// The schema text.
    pub schema: String,
    /// Its references.
    #[serde(default)]
    pub references: Vec<SchemaReference>,
}

#[derive(Deserialize)]
struct CompatibilityAnswer {
    is_compatible: bool,
    #[serde(default)]
    messages: Vec<String>,
}

#[derive(Deserialize)]
struct LevelAnswer {
    #[serde(rename = "compatibilityLevel", alias = "compatibility")]
    level: String,
}

/// `Ok(None)` for a 404 (no such subject, version or subject-level config).
fn found<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(Error::Registry { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn config_path(subject: Option<&str>) -> String {
    subject.map_or_else(
        || "/config".to_owned(),
        |s| format!("/config/{}", encode_path(s)),
    )
}

impl RegistryClient {
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str, subject: &str) -> Result<T> {
        let v = self.call(reqwest::Method::GET, path, None, subject).await?;
        serde_json::from_value(v).map_err(|e| bad_answer(path, e))
    }

    /// Every live (not soft-deleted) subject.
    pub async fn subjects(&self) -> Result<Vec<String>> {
        self.get("/subjects", "").await
    }

    /// The latest version of `subject`, or `None` when the subject does not exist.
    pub async fn latest_version(&self, subject: &str) -> Result<Option<SubjectVersion>> {
        let path = format!("/subjects/{}/versions/latest", encode_path(subject));
        found(self.get(&path, subject).await)
    }

    /// The version under which `schema` is registered in `subject`, or `None` when it is not
    /// (or the subject does not exist). The registry compares canonical forms, so formatting
    /// differences do not count.
    pub async fn lookup(
        &self,
        subject: &str,
        schema_type: &str,
        schema: &str,
        references: &[SchemaReference],
    ) -> Result<Option<i32>> {
        let path = format!("/subjects/{}", encode_path(subject));
        let body = schema_body(schema_type, schema, references);
        let answer = found(
            self.call(reqwest::Method::POST, &path, Some(&body), subject)
                .await,
        )?;
        answer
            .map(|v| {
                v.get("version")
                    .and_then(serde_json::Value::as_i64)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(|| bad_answer(&path, format!("no numeric \"version\" in {v}")))
            })
            .transpose()
    }

    /// Why `schema` could not be registered as the next version of `subject` under its
    /// compatibility level: empty when it can (or the subject does not exist yet).
    ///
    /// Asks for the check against the versions the level names (all of them for the
    /// `_TRANSITIVE` levels); a registry without that endpoint is asked against the latest.
    pub async fn incompatibilities(
        &self,
        subject: &str,
        schema_type: &str,
        schema: &str,
        references: &[SchemaReference],
    ) -> Result<Vec<String>> {
        let body = schema_body(schema_type, schema, references);
        let mut answer = None;
        for version in ["", "/latest"] {
            let path = format!(
                "/compatibility/subjects/{}/versions{version}?verbose=true",
                encode_path(subject)
            );
            answer = found(
                self.call(reqwest::Method::POST, &path, Some(&body), subject)
                    .await,
            )?
            .map(|a| (a, path));
            if answer.is_some() {
                break;
            }
        }
        let Some((answer, path)) = answer else {
            return Ok(Vec::new());
        };
        let answer: CompatibilityAnswer =
            serde_json::from_value(answer).map_err(|e| bad_answer(&path, e))?;
        Ok(match (answer.is_compatible, answer.messages.is_empty()) {
            (true, _) => Vec::new(),
            (false, false) => answer.messages,
            (false, true) => vec!["incompatible with the latest version".to_owned()],
        })
    }

    /// The compatibility level set on `subject` itself, or the global one (`None`); `None`
    /// when the subject has no level of its own.
    pub async fn compatibility(&self, subject: Option<&str>) -> Result<Option<String>> {
        let path = config_path(subject);
        let answer: Option<LevelAnswer> = found(self.get(&path, subject.unwrap_or("")).await)?;
        Ok(answer.map(|a| a.level))
    }

    /// Sets the compatibility level of `subject`, or the global one (`None`).
    pub async fn set_compatibility(&self, subject: Option<&str>, level: &str) -> Result<()> {
        let body = serde_json::json!({ "compatibility": level });
        self.call(
            reqwest::Method::PUT,
            &config_path(subject),
            Some(&body),
            subject.unwrap_or(""),
        )
        .await
        .map(drop)
    }

    /// Removes the level set on `subject`, which then follows the global one.
    pub async fn clear_compatibility(&self, subject: &str) -> Result<()> {
        let path = config_path(Some(subject));
        found(
            self.call(reqwest::Method::DELETE, &path, None, subject)
                .await,
        )
        .map(drop)
    }

    /// Soft-deletes `subject` (all its versions); its schema ids stay readable.
    pub async fn delete_subject(&self, subject: &str) -> Result<()> {
        let path = format!("/subjects/{}", encode_path(subject));
        self.call(reqwest::Method::DELETE, &path, None, subject)
            .await
            .map(drop)
    }
}
