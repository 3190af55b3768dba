//! `InsertHeader`: adds a header with a literal value to every record.

use super::settings::Settings;
use super::Transform;
use crate::plugin::Problems;
use crate::runtime::SourceRecord;

pub(super) const CLASS: &str = "org.apache.kafka.connect.transforms.InsertHeader";

pub(super) struct InsertHeader {
    name: String,
    value: Vec<u8>,
}

impl InsertHeader {
    pub(super) fn parse(settings: &Settings<'_>, problems: &mut Problems) -> Option<Self> {
        let name = settings.required("header", problems);
        // The literal is written as SimpleHeaderConverter writes a string: its UTF-8 bytes.
        let value = match settings.get("value.literal") {
            Some(v) => Some(v.into_bytes()),
            None => {
                problems.add(
                    &settings.key("value.literal"),
                    "Missing required configuration: the header's value".into(),
                );
                None
            }
        };
        Some(Self {
            name: name?,
            value: value?,
        })
    }
}

impl Transform for InsertHeader {
    fn apply(&mut self, mut record: SourceRecord) -> Result<Option<SourceRecord>, String> {
        record.headers.push((self.name.clone(), self.value.clone()));
        Ok(Some(record))
    }
}
