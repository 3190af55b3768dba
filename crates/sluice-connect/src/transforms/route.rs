//! `RegexRouter`: the topic becomes `replacement` when the whole topic name matches `regex`
//! (Java's `Matcher.matches` with `$n` group references), so e.g. `shop.public.orders_(.*)`
//! can merge sharded tables into one topic.

use regex::Regex;

use super::settings::Settings;
use super::Transform;
use crate::plugin::Problems;
use crate::runtime::SourceRecord;

pub(super) const CLASS: &str = "org.apache.kafka.connect.transforms.RegexRouter";

pub(super) struct RegexRouter {
    regex: Regex,
    /// In the `regex` crate's syntax (`${1}`).
    replacement: String,
}

impl RegexRouter {
    pub(super) fn parse(settings: &Settings<'_>, problems: &mut Problems) -> Option<Self> {
        let pattern = settings.required("regex", problems);
        let replacement = settings.required("replacement", problems);
        let regex = match Regex::new(&format!("^(?:{})$", pattern?)) {
            Ok(r) => r,
            Err(e) => {
                problems.add(&settings.key("regex"), format!("not a valid pattern: {e}"));
                return None;
            }
        };
        Some(Self {
            regex,
            replacement: java_replacement(&replacement?),
        })
    }
}

/// Java's replacement syntax (`$1`, `\$` for a dollar) in the `regex` crate's (`${1}`, `$$`):
/// the crate would read `$1_x` as a group named `1_x`.
fn java_replacement(java: &str) -> String {
    let mut out = String::with_capacity(java.len() + 4);
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("${");
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    out.push(d);
                }
                out.push('}');
            }
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

impl Transform for RegexRouter {
    fn apply(&mut self, mut record: SourceRecord) -> Result<Option<SourceRecord>, String> {
        if let Some(captures) = self.regex.captures(&record.topic) {
            let mut topic = String::new();
            captures.expand(&self.replacement, &mut topic);
            if topic.is_empty() {
                return Err(format!("routing {} gave an empty topic name", record.topic));
            }
            record.topic = topic;
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::java_replacement;

    #[test]
    fn java_group_references_become_braced() {
        assert_eq!(java_replacement("$1_all"), "${1}_all");
        assert_eq!(java_replacement("a\\$b$"), "a$$b$$");
        assert_eq!(java_replacement("x$12"), "x${12}");
    }
}
