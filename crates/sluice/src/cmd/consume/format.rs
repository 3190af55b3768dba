//! The `--format` template of `sluice consume`: `%k %v %h %p %o %t %T %%` plus `\n \t \\`.

use std::fmt;
use std::io::Write;
use std::str::FromStr;

use rdkafka::message::Headers;
use rdkafka::Message;

/// A parsed output template, rendered once per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Template {
    parts: Vec<Part>,
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Text copied as is.
    Literal(Vec<u8>),
    /// `%k`: the key (empty when null).
    Key,
    /// `%v`: the value (empty when null).
    Value,
    /// `%h`: headers as `k1=v1,k2=v2` (a null value prints just the key).
    Headers,
    /// `%p`: the partition.
    Partition,
    /// `%o`: the offset.
    Offset,
    /// `%t`: the topic.
    Topic,
    /// `%T`: the timestamp in milliseconds since the epoch (-1 when absent).
    Timestamp,
}

/// Why a template could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; use %k key, %v value, %h headers, %p partition, %o offset, %t topic, \
             %T timestamp, %% for a literal %, and \\n \\t \\\\ escapes",
            self.0
        )
    }
}

impl std::error::Error for TemplateError {}

impl FromStr for Template {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            let field = match c {
                '%' => match chars.next() {
                    Some('k') => Part::Key,
                    Some('v') => Part::Value,
                    Some('h') => Part::Headers,
                    Some('p') => Part::Partition,
                    Some('o') => Part::Offset,
                    Some('t') => Part::Topic,
                    Some('T') => Part::Timestamp,
                    Some('%') => {
                        literal.push(b'%');
                        continue;
                    }
                    Some(other) => {
                        return Err(TemplateError(format!("unknown directive %{other}")));
                    }
                    None => return Err(TemplateError("the format ends with a lone %".into())),
                },
                '\\' => {
                    match chars.next() {
                        Some('n') => literal.push(b'\n'),
                        Some('t') => literal.push(b'\t'),
                        Some('\\') => literal.push(b'\\'),
                        // Anything else is kept verbatim, so Windows-like paths survive.
                        Some(other) => {
                            literal.push(b'\\');
                            push_char(&mut literal, other);
                        }
                        None => literal.push(b'\\'),
                    }
                    continue;
                }
                other => {
                    push_char(&mut literal, other);
                    continue;
                }
            };
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(field);
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }
}

/// Appends a char's UTF-8 bytes.
fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

impl Template {
    /// Appends the rendering of `msg` to `out` (no trailing newline).
    pub(super) fn render<M: Message>(&self, msg: &M, out: &mut Vec<u8>) {
        for part in &self.parts {
            // Writing into a Vec cannot fail, so the io::Results below are always Ok.
            let _ = match part {
                Part::Literal(bytes) => out.write_all(bytes),
                Part::Key => out.write_all(msg.key().unwrap_or_default()),
                Part::Value => out.write_all(msg.payload().unwrap_or_default()),
                Part::Partition => write!(out, "{}", msg.partition()),
                Part::Offset => write!(out, "{}", msg.offset()),
                Part::Topic => out.write_all(msg.topic().as_bytes()),
                Part::Timestamp => write!(out, "{}", msg.timestamp().to_millis().unwrap_or(-1)),
                Part::Headers => {
                    if let Some(headers) = msg.headers() {
                        for (i, header) in headers.iter().enumerate() {
                            if i > 0 {
                                out.push(b',');
                            }
                            out.extend_from_slice(header.key.as_bytes());
                            if let Some(value) = header.value {
                                out.push(b'=');
                                out.extend_from_slice(value);
                            }
                        }
                    }
                    Ok(())
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
    use rdkafka::Timestamp;

    use super::*;

    fn message() -> OwnedMessage {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "a",
                value: Some("1"),
            })
            .insert(Header {
                key: "b",
                value: None::<&str>,
            });
        OwnedMessage::new(
            Some(b"val".to_vec()),
            Some(b"key".to_vec()),
            "orders".into(),
            Timestamp::CreateTime(1700),
            3,
            42,
            Some(headers),
        )
    }

    fn render(template: &str, msg: &OwnedMessage) -> Result<String, TemplateError> {
        let mut out = Vec::new();
        template.parse::<Template>()?.render(msg, &mut out);
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn renders_every_directive() -> Result<(), TemplateError> {
        let msg = message();
        assert_eq!(
            render("%t/%p@%o %T %k=%v [%h] 100%%\\t\\n", &msg)?,
            "orders/3@42 1700 key=val [a=1,b] 100%\t\n"
        );
        Ok(())
    }

    #[test]
    fn null_key_and_value_render_empty() -> Result<(), TemplateError> {
        let msg = OwnedMessage::new(None, None, "t".into(), Timestamp::NotAvailable, 0, 0, None);
        assert_eq!(render("<%k|%v|%h|%T>", &msg)?, "<|||-1>");
        Ok(())
    }

    #[test]
    fn bad_directives_are_rejected() {
        assert!(render("%x", &message()).is_err_and(|e| e.to_string().contains("%x")));
        assert!("50%".parse::<Template>().is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in ".*") {
            let _ = s.parse::<Template>();
        }

        #[test]
        fn plain_text_renders_verbatim(s in "[^%\\\\]*") {
            prop_assert_eq!(render(&s, &message()).ok(), Some(s.clone()));
        }

        #[test]
        fn value_bytes_pass_through(value in proptest::collection::vec(any::<u8>(), 0..64)) {
            let msg = OwnedMessage::new(
                Some(value.clone()), None, "t".into(), Timestamp::NotAvailable, 0, 0, None,
            );
            let mut out = Vec::new();
            let template: Template = "%v".parse().map_err(|e: TemplateError| TestCaseError::fail(e.to_string()))?;
            template.render(&msg, &mut out);
            prop_assert_eq!(out, value);
        }
    }
}
