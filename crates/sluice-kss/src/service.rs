//! Service ids: the names certificates are issued to and ACLs are written for.

use std::fmt;

/// Longest service id accepted (a CN is at most 64 characters).
pub const MAX_SERVICE_ID_LEN: usize = 64;

/// A validated service id: 1 to 64 characters from `[a-z0-9._-]`.
///
/// The restricted alphabet means a service id never needs escaping in a certificate subject
/// (`CN=<id>`) or a principal, so the name a token carries is exactly the name ACLs match.
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_documented_alphabet_only() {
        assert!(ServiceId::parse("orders-svc").is_ok());
        assert!(ServiceId::parse("a.b_c-9").is_ok());
        for bad in ["", "Orders", "a,b", "CN=admin", "a b", "ä", &"x".repeat(65)] {
            assert!(ServiceId::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    proptest! {
        #[test]
        fn parse_never_accepts_a_char_outside_the_alphabet(s in "\\PC{1,70}") {
            if let Ok(id) = ServiceId::parse(&s) {
                prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)));
                prop_assert!(id.as_str().len() <= MAX_SERVICE_ID_LEN);
            }
        }
    }
}
