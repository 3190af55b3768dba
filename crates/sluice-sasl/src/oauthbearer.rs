//! OAUTHBEARER (RFC 7628): the client's initial response carries a bearer token, which must be
//! a JWT the configured [`TokenValidator`] accepts.

use std::time::SystemTime;

use crate::{Mechanism, SaslError, Step, TokenValidator};

/// RFC 7628's key/value separator.
const KVSEP: u8 = 0x01;

fn malformed(reason: &'static str) -> SaslError {
    SaslError::Malformed {
        mechanism: Mechanism::OAuthBearer,
        reason,
    }
}

/// Verifies the client's initial response: `gs2-header KVSEP *(key=value KVSEP) KVSEP` with an
/// `auth=Bearer <token>` pair.
pub(crate) fn authenticate(
    input: &[u8],
    tokens: &dyn TokenValidator,
    now: SystemTime,
) -> Result<Step, SaslError> {
    let (authzid, token) = parse(input)?;
    let identity = tokens
        .validate(token, now)
        .map_err(|e| SaslError::InvalidToken(e.to_string()))?;
    // As Kafka: an authorization id, if given, must be the token's own principal.
    if authzid.is_some_and(|a| a != identity.principal) {
        return Err(SaslError::InvalidToken(
            "the authorization id differs from the token's principal".into(),
        ));
    }
    Ok(Step::Done {
        response: Vec::new(),
        principal: identity.principal,
        expires_at: Some(identity.expires_at),
    })
}

/// Splits the initial response into the authorization id and the token.
fn parse(input: &[u8]) -> Result<(Option<&str>, &str), SaslError> {
    let text = std::str::from_utf8(input).map_err(|_| malformed("not UTF-8"))?;
    let mut header = text.splitn(3, ',');
    let (Some(flag), Some(authzid), Some(rest)) = (header.next(), header.next(), header.next())
    else {
        return Err(malformed("expected a gs2 header"));
    };
    if flag != "n" && flag != "y" {
        return Err(malformed("channel binding is not supported"));
    }
    let authzid = match authzid {
        "" => None,
        a => Some(a.strip_prefix("a=").ok_or(malformed("invalid authzid"))?),
    };
    let kvsep = char::from(KVSEP);
    let pairs = rest
        .strip_prefix(kvsep)
        .and_then(|r| r.strip_suffix(kvsep))
        .ok_or(malformed(
            "expected key/value pairs between 0x01 separators",
        ))?;
    let mut token = None;
    for pair in pairs.split_terminator(kvsep) {
        let (key, value) = pair
            .split_once('=')
            .ok_or(malformed("expected key=value"))?;
        if key == "auth" {
            let (scheme, credential) = value
                .split_once(' ')
                .ok_or(malformed("expected auth=Bearer <token>"))?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(malformed("the auth scheme is not Bearer"));
            }
            token = Some(credential.trim());
        }
        // Other keys are SASL extensions (KIP-342); none is required here, so they are ignored.
    }
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(malformed("no auth=Bearer token"))?;
    Ok((authzid, token))
}

/// The client's initial response for `token` (clients and tests).
pub fn client_initial_response(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_initial_response() {
        assert_eq!(
            parse(&client_initial_response("abc.def.ghi")).unwrap(),
            (None, "abc.def.ghi")
        );
        assert_eq!(
            parse(b"n,a=alice,\x01host=h\x01auth=bearer tok\x01ext=1\x01\x01").unwrap(),
            (Some("alice"), "tok")
        );
        for bad in [
            &b""[..],
            b"n,,",
            b"n,,\x01\x01",
            b"n,,auth=Bearer x\x01\x01",
            b"n,,\x01auth=Basic x\x01\x01",
            b"n,,\x01auth=Bearer \x01\x01",
            b"p=x,,\x01auth=Bearer t\x01\x01",
            b"n,,\x01noequals\x01\x01",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::{JwtValidator, JwtValidatorConfig};
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary initial responses and tokens end in an error, never a panic.
        #[test]
        fn arbitrary_input_is_refused_without_panicking(
            raw in proptest::collection::vec(any::<u8>(), 0..300),
            token in "[A-Za-z0-9_.=-]{0,200}",
        ) {
            let validator = JwtValidator::new(JwtValidatorConfig::default());
            let _ = authenticate(&raw, &validator, std::time::SystemTime::now());
            let wrapped = client_initial_response(&token);
            prop_assert!(authenticate(&wrapped, &validator, std::time::SystemTime::now()).is_err());
        }
    }
}
