//! Service ids: the names certificates are issued to and ACLs are written for.

use std::collections::BTreeSet;
use std::fmt;

/// Longest service id accepted (a CN is at most 64 characters).
pub const MAX_SERVICE_ID_LEN: usize = 64;

/// A validated service id: 1 to 64 characters from `[a-z0-9._-]`, starting and ending with a
/// letter or digit, without `..`.
///
/// The restricted alphabet means a service id never needs escaping in a certificate subject
/// (`CN=<id>`) or a principal (no `,+="<>;#\\`, no spaces), so the name a token carries is
/// exactly the name ACLs match. The edge and `..` rules make every id a safe single path
/// component (never `.`, `..` or hidden) and never look like a command-line option.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ServiceId(String);

impl ServiceId {
    /// Validates `id`; the error says what is wrong with it.
    pub fn parse(id: &str) -> Result<Self, String> {
        if id.is_empty() {
            return Err("a service id must not be empty".into());
        }
        if id.len() > MAX_SERVICE_ID_LEN {
            return Err(format!(
                "service id {id:?} is longer than {MAX_SERVICE_ID_LEN} characters"
            ));
        }
        if let Some(bad) = id
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-'))
        {
            return Err(format!(
                "service id {id:?} contains {bad:?}; only a-z, 0-9, '.', '_' and '-' are allowed"
            ));
        }
        let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !alnum(id.chars().next()) || !alnum(id.chars().last()) {
            return Err(format!(
                "service id {id:?} must start and end with a letter or digit"
            ));
        }
        if id.contains("..") {
            return Err(format!("service id {id:?} must not contain \"..\""));
        }
        Ok(ServiceId(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ServiceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ServiceId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Service ids KSS never issues a certificate to: the cluster's super users and any other name
/// whose certificate would be a master key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReservedServices(BTreeSet<String>);

impl ReservedServices {
    /// Reserves each entry: a service id (`admin`) or a Kafka principal (`User:admin`,
    /// `User:CN=admin,OU=ops`), which reserves its name, or the value of its DN's CN.
    /// Comparison ignores ASCII case, so no spelling of a reserved name slips through.
    pub fn new<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Self {
        ReservedServices(
            entries
                .into_iter()
                .map(|e| reserved_name(e.as_ref()))
                .filter(|n| !n.is_empty())
                .collect(),
        )
    }

    /// True when `service` must not get a certificate.
    pub fn contains(&self, service: &ServiceId) -> bool {
        self.0.contains(service.as_str())
    }

    /// The reserved names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// The name a reserved entry stands for (see [`ReservedServices::new`]), lowercased.
fn reserved_name(entry: &str) -> String {
    let entry = entry.trim();
    let name = entry.strip_prefix("User:").unwrap_or(entry);
    let cn = name.split(',').find_map(|rdn| {
        let (key, value) = rdn.split_once('=')?;
        key.trim().eq_ignore_ascii_case("CN").then(|| value.trim())
    });
    cn.unwrap_or(name).trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_documented_alphabet_only() {
        assert!(ServiceId::parse("orders-svc").is_ok());
        assert!(ServiceId::parse("a.b_c-9").is_ok());
        for bad in [
            "",
            "Orders",
            "a,b",
            "CN=admin",
            "a b",
            " a",
            "a ",
            "ä",
            "a+b",
            "a\"b",
            "a<b>",
            "a;b",
            "#a",
            "a\\b",
            "a/b",
            ".",
            "..",
            "../etc",
            "a..b",
            ".hidden",
            "-rf",
            "a-",
            &"x".repeat(65),
        ] {
            assert!(ServiceId::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn reserved_entries_are_service_ids_or_principals() {
        let reserved = ReservedServices::new(["User:CN=admin", "User:ops", "CN=Root,OU=x", "svc"]);
        let names: Vec<&str> = reserved.names().collect();
        assert_eq!(names, ["admin", "ops", "root", "svc"]);
        assert!(reserved.contains(&ServiceId::parse("admin").unwrap()));
        assert!(!reserved.contains(&ServiceId::parse("admin2").unwrap()));
        assert!(ReservedServices::new(["", " "]).names().next().is_none());
    }

    proptest! {
        #[test]
        fn parse_never_accepts_a_char_outside_the_alphabet(s in "\\PC{1,70}") {
            if let Ok(id) = ServiceId::parse(&s) {
                prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)));
                prop_assert!(id.as_str().len() <= MAX_SERVICE_ID_LEN);
                prop_assert!(!id.as_str().contains("..") && !id.as_str().starts_with('.'));
                prop_assert_eq!(std::path::Path::new(id.as_str()).components().count(), 1);
            }
        }
    }
}
