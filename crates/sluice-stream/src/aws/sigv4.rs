//! AWS Signature Version 4 for the POST requests the destinations send (every header signed,
//! the body hashed). Written here rather than pulled in with the AWS SDK, whose runtime would
//! double the workspace's build for four API calls.

use ring::{digest, hmac};
use time::OffsetDateTime;

use super::credentials::Credentials;

/// The headers a signed request must carry, in addition to the ones it was signed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    /// `x-amz-date`.
    pub(crate) amz_date: String,
    /// `authorization`.
    pub(crate) authorization: String,
    /// `x-amz-security-token`, for temporary credentials.
    pub(crate) security_token: Option<String>,
}

/// One request to sign.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    /// `POST`, `GET`, …
    pub(crate) method: &'a str,
    /// Host (with a port when not the scheme's default), as sent in `host`.
    pub(crate) host: &'a str,
    /// The URI path, already encoded (`/` for the root).
    pub(crate) path: &'a str,
    /// Headers other than `host`, `x-amz-date` and `x-amz-security-token` (names lowercase).
    pub(crate) headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub(crate) body: &'a [u8],
}

/// Signs `request` for `service` in `region` at `now`.
pub(crate) fn sign(
    request: &Request<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    now: OffsetDateTime,
) -> Signed {
    let now = now.to_offset(time::UtcOffset::UTC);
    let amz_date = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let date = &amz_date[..8];
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), normalize_value(v)))
        .collect();
    headers.push(("host".to_owned(), request.host.to_owned()));
    headers.push(("x-amz-date".to_owned(), amz_date.clone()));
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token".to_owned(), token.clone()));
    }
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut canonical = String::with_capacity(256);
    canonical.push_str(request.method);
    canonical.push('\n');
    canonical.push_str(if request.path.is_empty() {
        "/"
    } else {
        request.path
    });
    // No query string: every call goes in the body.
    canonical.push_str("\n\n");
    for (k, v) in &headers {
        canonical.push_str(k);
        canonical.push(':');
        canonical.push_str(v);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed_headers);
    canonical.push('\n');
    canonical.push_str(&hex(digest::digest(&digest::SHA256, request.body).as_ref()));

    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let key = signing_key(&credentials.secret_access_key, date, region, service);
    let signature = hex(hmac::sign(&key, string_to_sign.as_bytes()).as_ref());
    Signed {
        authorization: format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id
        ),
        amz_date,
        security_token: credentials.session_token.clone(),
    }
}

/// The key of one day, region and service, derived from the secret.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [date, region, service, "aws4_request"] {
        let k = hmac::Key::new(hmac::HMAC_SHA256, &key);
        key = hmac::sign(&k, part.as_bytes()).as_ref().to_vec();
    }
    hmac::Key::new(hmac::HMAC_SHA256, &key)
}

/// Header values are signed trimmed, with inner runs of spaces folded to one.
fn normalize_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
            session_token: token.map(str::to_owned),
        }
    }

    fn at() -> OffsetDateTime {
        // 2015-08-30T12:36:00Z, the date of AWS's published signature test suite.
        OffsetDateTime::from_unix_timestamp(1_440_938_160).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn aws_test_suite_get_vanilla() {
        let req = Request {
            method: "GET",
            host: "example.amazonaws.com",
            path: "/",
            headers: &[],
            body: b"",
        };
        let s = sign(&req, &creds(None), "us-east-1", "service", at());
        assert_eq!(s.amz_date, "20150830T123600Z");
        assert_eq!(
            s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn aws_test_suite_post_x_www_form_urlencoded() {
        let req = Request {
            method: "POST",
            host: "example.amazonaws.com",
            path: "/",
            headers: &[("content-type", "application/x-www-form-urlencoded")],
            body: b"Param1=value1",
        };
        let s = sign(&req, &creds(None), "us-east-1", "service", at());
        assert_eq!(
            s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        );
    }

    #[test]
    fn session_token_is_signed() {
        let req = Request {
            method: "POST",
            host: "sqs.us-east-1.amazonaws.com",
            path: "/",
            headers: &[("content-type", "application/x-amz-json-1.0")],
            body: b"{}",
        };
        let s = sign(&req, &creds(Some("tok")), "us-east-1", "sqs", at());
        assert!(s
            .authorization
            .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,"));
        assert_eq!(s.security_token.as_deref(), Some("tok"));
        let without = sign(&req, &creds(None), "us-east-1", "sqs", at());
        assert_ne!(s.authorization, without.authorization);
    }

    #[test]
    fn header_values_are_normalized() {
        assert_eq!(normalize_value("  a   b  c "), "a b c");
    }
}
