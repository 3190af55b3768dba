//! Content negotiation as Confluent's registry does it: request bodies in any of its JSON types
//! (or untyped), answers in the type the `Accept` header prefers among the three it produces,
//! 415 for another body type and 406 when `Accept` allows none of them.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::CONTENT_TYPE;
use crate::error::RegistryError;

/// The types answers come in, with the server's preference (Confluent's `qs`): when the client
/// likes several equally, the earlier one wins.
const PRODUCED: [(&str, f32); 3] = [
    (CONTENT_TYPE, 1.0),
    ("application/vnd.schemaregistry+json", 0.9),
    ("application/json", 0.5),
];

/// Request body types read (as JSON); a body without a type counts as `octet-stream`.
const CONSUMED: [&str; 4] = [
    CONTENT_TYPE,
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/octet-stream",
];

/// The bare media type of a header value (parameters dropped; compared case-insensitively).
fn media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

/// The `Accept` entries: media range and `q`, read in place (this runs on every request).
fn accept_entries(headers: &HeaderMap) -> impl Iterator<Item = (&str, f32)> + '_ {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let q = entry
                .split(';')
                .skip(1)
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (media_type(entry), q)
        })
}

/// How specifically `range` names `produced` (2 exactly, 1 by `type/*`, 0 by `*/*`), or `None`
/// when it does not cover it.
fn specificity(range: &str, produced: &str) -> Option<u8> {
    if range.eq_ignore_ascii_case(produced) {
        return Some(2);
    }
    if range == "*/*" {
        return Some(0);
    }
    let (kind, sub) = range.split_once('/')?;
    let produced_kind = produced.split('/').next().unwrap_or("");
    (sub == "*" && produced_kind.eq_ignore_ascii_case(kind)).then_some(1)
}

/// The type to answer in: the produced type whose best-matching `Accept` entry is most
/// specific, then has the highest `q`, then the server's preference (Jersey's order). No
/// `Accept` at all accepts anything.
fn choose(headers: &HeaderMap) -> Option<&'static str> {
    let mut any_entry = false;
    let mut best: Option<((u8, f32, f32), &'static str)> = None;
    for (range, q) in accept_entries(headers) {
        any_entry = true;
        if q <= 0.0 {
            continue;
        }
        for (produced, qs) in PRODUCED {
            let Some(spec) = specificity(range, produced) else {
                continue;
            };
            let rank = (spec, q, qs);
            if best.is_none_or(|(b, _)| rank.partial_cmp(&b) == Some(std::cmp::Ordering::Greater)) {
                best = Some((rank, produced));
            }
        }
    }
    if !any_entry {
        return Some(CONTENT_TYPE);
    }
    best.map(|(_, t)| t)
}

/// The type of an error answer when negotiation itself failed: the first `Accept` entry that
/// names a produced type exactly, else the default (what Confluent's error mapper does).
fn error_type(headers: &HeaderMap) -> &'static str {
    let mut entries: Vec<(&str, f32)> = accept_entries(headers).collect();
    entries.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    entries
        .iter()
        .find_map(|(range, _)| {
            PRODUCED
                .iter()
                .find(|(p, _)| p.eq_ignore_ascii_case(range))
                .map(|(p, _)| *p)
        })
        .unwrap_or(CONTENT_TYPE)
}

fn with_type(mut response: Response, media_type: &'static str) -> Response {
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    response
}

/// Middleware: refuses unreadable bodies (415) and unanswerable `Accept`s (406), and gives the
/// answer the negotiated content type.
pub async fn negotiate(req: Request, next: Next) -> Response {
    let headers = req.headers();
    if matches!(*req.method(), Method::POST | Method::PUT) {
        let body_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(media_type);
        if body_type.is_some_and(|t| !CONSUMED.iter().any(|c| c.eq_ignore_ascii_case(t))) {
            let answer = RegistryError::UnsupportedMediaType.into_response();
            return with_type(answer, error_type(headers));
        }
    }
    let Some(chosen) = choose(headers) else {
        return RegistryError::NotAcceptable.into_response();
    };
    with_type(next.run(req).await, chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(accept: &str) -> Option<&'static str> {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(accept) {
            headers.insert(header::ACCEPT, v);
        }
        choose(&headers)
    }

    #[test]
    fn the_accept_header_picks_the_answer_type_as_confluent_does() {
        let v1 = Some(CONTENT_TYPE);
        assert_eq!(chosen(""), v1);
        assert_eq!(chosen("*/*"), v1);
        assert_eq!(chosen("application/*"), v1);
        assert_eq!(chosen("application/json"), Some("application/json"));
        assert_eq!(
            chosen("application/vnd.schemaregistry+json"),
            Some("application/vnd.schemaregistry+json")
        );
        assert_eq!(
            chosen("application/json, application/vnd.schemaregistry.v1+json"),
            v1
        );
        assert_eq!(
            chosen("application/vnd.schemaregistry.v1+json; q=0.9, application/json; q=0.5"),
            v1
        );
        assert_eq!(
            chosen("application/json; q=0.9, application/vnd.schemaregistry.v1+json; q=0.1"),
            Some("application/json")
        );
        assert_eq!(
            chosen("Application/JSON; charset=utf-8"),
            Some("application/json")
        );
        assert_eq!(chosen("text/html"), None);
        assert_eq!(chosen("application/xml, text/plain"), None);
        assert_eq!(chosen("application/json; q=0"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_accept_or_content_type_gets_an_answer_not_a_panic(accept in "\\PC{0,60}", body_type in "\\PC{0,40}") {
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&accept) {
                headers.insert(header::ACCEPT, v);
            }
            let _ = choose(&headers);
            let _ = error_type(&headers);
            let _ = media_type(&body_type);
        }
    }
}
