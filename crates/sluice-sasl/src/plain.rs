//! PLAIN (RFC 4616): `authzid NUL authcid NUL passwd`, checked against the user's SCRAM
//! credentials, so no password is ever stored.

use crate::{Credentials, Mechanism, SaslError, ScramCredential, ScramMechanism, Step};

const MALFORMED: fn(&'static str) -> SaslError = |reason| SaslError::Malformed {
    mechanism: Mechanism::Plain,
    reason,
};

/// A credential for no one: derived from a random salt and key, so no password matches it.
fn unknown_user() -> &'static ScramCredential {
    static NOBODY: std::sync::OnceLock<ScramCredential> = std::sync::OnceLock::new();
    NOBODY.get_or_init(|| {
        let salt = crate::random_salt(ScramMechanism::Sha512).unwrap_or_else(|_| vec![0; 64]);
        let key = crate::random_salt(ScramMechanism::Sha512).unwrap_or_else(|_| vec![1; 64]);
        ScramCredential::from_salted_password(ScramMechanism::Sha512, salt, 4096, &key)
    })
}

/// Verifies one PLAIN message.
pub(crate) fn authenticate(input: &[u8], credentials: &dyn Credentials) -> Result<Step, SaslError> {
    let mut parts = input.split(|&b| b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(MALFORMED("expected authzid NUL username NUL password"));
    };
    let user = std::str::from_utf8(user).map_err(|_| MALFORMED("user name is not UTF-8"))?;
    if user.is_empty() || password.is_empty() {
        return Err(MALFORMED("empty user name or password"));
    }
    // Acting for another identity is not supported (as in Kafka): authzid is empty or the user.
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return Err(SaslError::InvalidCredentials(Mechanism::Plain));
    }
    // Either hash of the user's SCRAM credentials proves the password. An unknown user costs
    // the same key derivation (against a credential no password matches), so the time taken
    // does not tell which user names exist.
    let found = [ScramMechanism::Sha256, ScramMechanism::Sha512]
        .into_iter()
        .find_map(|m| credentials.scram(user, m).map(|c| (m, c)));
    let verified = match found {
        Some((m, credential)) => credential.matches_password(m, password),
        None => {
            let _ = unknown_user().matches_password(ScramMechanism::Sha512, password);
            false
        }
    };
    if !verified {
        return Err(SaslError::InvalidCredentials(Mechanism::Plain));
    }
    Ok(Step::Done {
        response: Vec::new(),
        principal: user.to_owned(),
        expires_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct One(ScramCredential);

    impl Credentials for One {
        fn scram(&self, user: &str, m: ScramMechanism) -> Option<ScramCredential> {
            (user == "alice" && m == ScramMechanism::Sha512).then(|| self.0.clone())
        }
    }

    #[test]
    fn checks_the_password_against_scram_credentials() {
        let creds = One(ScramCredential::new(
            ScramMechanism::Sha512,
            b"secret",
            b"salt".to_vec(),
            4096,
        ));
        let ok = authenticate(b"\0alice\0secret", &creds).unwrap();
        assert!(matches!(ok, Step::Done { principal, .. } if principal == "alice"));
        assert!(authenticate(b"alice\0alice\0secret", &creds).is_ok());
        for bad in [
            &b"\0alice\0wrong"[..],
            b"\0bob\0secret",
            b"bob\0alice\0secret",
        ] {
            assert_eq!(
                authenticate(bad, &creds),
                Err(SaslError::InvalidCredentials(Mechanism::Plain))
            );
        }
        for malformed in [&b"alice"[..], b"\0alice", b"\0\0x", b"\0a\0b\0c", b""] {
            assert!(matches!(
                authenticate(malformed, &creds),
                Err(SaslError::Malformed { .. })
            ));
        }
    }
}
