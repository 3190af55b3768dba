//! The transforms a pipeline file can declare: `filter` (keep matching events; on headers
//! without decoding, or on a JSON field), `route` (choose destinations by a header or field)
//! and `map` (set, remove and rename fields of JSON values, including Confluent-framed JSON
//! Schema payloads, whose framing is kept).

use std::collections::BTreeMap;

use bytes::Bytes;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::event::Event;

/// One transform as written: exactly one of `filter`, `route` or `map`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// Keep events the predicate matches (or, with `negate`, drop them).
    #[serde(default)]
    pub filter: Option<PredicateConfig>,
    /// Send events to the destinations of the first matching value.
    #[serde(default)]
    pub route: Option<RouteConfig>,
    /// Change fields of a JSON value.
    #[serde(default)]
    pub map: Option<MapConfig>,
}

impl TransformConfig {
    /// Destination names this transform refers to.
    pub fn destination_names(&self) -> Vec<&str> {
        self.route
            .iter()
            .flat_map(|r| r.routes.values().chain(std::iter::once(&r.default)))
            .flatten()
            .map(String::as_str)
            .collect()
    }
}

/// A condition on exactly one of `header`, `field` or `key: true`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PredicateConfig {
    /// A header's name.
    #[serde(default)]
    pub header: Option<String>,
    /// A JSON pointer into the value (e.g. `/user/country`).
    #[serde(default)]
    pub field: Option<String>,
    /// The event key.
    #[serde(default)]
    pub key: Option<bool>,
    /// Equal to this text.
    #[serde(default)]
    pub equals: Option<String>,
    /// Equal to one of these.
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<String>>,
    /// Matches this regular expression (anywhere; anchor it with `^…$`).
    #[serde(default)]
    pub matches: Option<String>,
    /// Present (true) or absent (false).
    #[serde(default)]
    pub present: Option<bool>,
    /// Invert the result: drop what matches.
    #[serde(default)]
    pub negate: bool,
}

/// Routes by the value of exactly one of `header`, `field` or `key: true`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A header's name.
    #[serde(default)]
    pub header: Option<String>,
    /// A JSON pointer into the value (e.g. `/user/country`).
    #[serde(default)]
    pub field: Option<String>,
    /// The event key.
    #[serde(default)]
    pub key: Option<bool>,
    /// Value → destination names.
    pub routes: BTreeMap<String, Vec<String>>,
    /// Destinations for other values (empty: the event goes nowhere and its offset is
    /// committed).
    #[serde(default)]
    pub default: Vec<String>,
}

/// Field changes of JSON values.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MapConfig {
    /// JSON pointer → value to set (objects on the way are created).
    #[serde(default)]
    pub set: BTreeMap<String, Value>,
    /// JSON pointers to remove.
    #[serde(default)]
    pub remove: Vec<String>,
    /// JSON pointer → new JSON pointer.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
}

/// What one event became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send it: to every destination (`None`) or to those named.
    Send(Event, Option<Vec<String>>),
    /// Filtered out.
    Dropped,
}

/// Why a transform could not handle an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transform {index}: {message}")]
pub struct TransformError {
    /// Position in the pipeline's list.
    pub index: usize,
    /// What failed.
    pub message: String,
}

impl TransformError {
    /// The failure a dead-letter record of the event carries (never retried).
    pub(crate) fn delivery_error(&self) -> crate::sinks::DeliveryError {
        crate::sinks::DeliveryError {
            destination: "transform".to_owned(),
            failure: crate::sinks::Failure::permanent("TransformFailed", self.to_string()),
            attempts: 1,
        }
    }
}

enum Selector {
    Header(String),
    Field(String),
    Key,
}

enum Test {
    Equals(String),
    OneOf(Vec<String>),
    Matches(Regex),
    Present(bool),
}

enum Transform {
    Filter {
        selector: Selector,
        test: Test,
        negate: bool,
    },
    Route {
        selector: Selector,
        routes: BTreeMap<String, Vec<String>>,
        default: Vec<String>,
    },
    Map(MapConfig),
}

/// The compiled transforms of a pipeline.
pub struct Transforms(Vec<Transform>);

impl std::fmt::Debug for Transforms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transforms({})", self.0.len())
    }
}

fn selector(
    header: &Option<String>,
    field: &Option<String>,
    key: Option<bool>,
    i: usize,
) -> Result<Selector> {
    match (header, field, key) {
        (Some(h), None, None) => Ok(Selector::Header(h.clone())),
        (None, Some(f), None) => {
            if !f.is_empty() && !f.starts_with('/') {
                return Err(Error::Config(format!(
                    "transform {i}: field {f:?} is not a JSON pointer (write /a/b)"
                )));
            }
            Ok(Selector::Field(f.clone()))
        }
        (None, None, Some(true)) => Ok(Selector::Key),
        _ => Err(Error::Config(format!(
            "transform {i}: give exactly one of header, field or key: true"
        ))),
    }
}

fn filter(p: &PredicateConfig, i: usize) -> Result<Transform> {
    let regex = p
        .matches
        .as_deref()
        .map(|m| {
            regex::RegexBuilder::new(m)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| Error::Config(format!("transform {i}: bad regex: {e}")))
        })
        .transpose()?;
    let tests = [
        p.equals.clone().map(Test::Equals),
        p.one_of.clone().map(Test::OneOf),
        regex.map(Test::Matches),
        p.present.map(Test::Present),
    ];
    let mut tests: Vec<Test> = tests.into_iter().flatten().collect();
    if tests.len() != 1 {
        return Err(Error::Config(format!(
            "transform {i}: a filter needs exactly one of equals, in, matches, present"
        )));
    }
    Ok(Transform::Filter {
        selector: selector(&p.header, &p.field, p.key, i)?,
        test: tests.remove(0),
        negate: p.negate,
    })
}

impl Transforms {
    /// Compiles `configs` (regexes, pointers), refusing what cannot work.
    pub fn compile(configs: &[TransformConfig]) -> Result<Transforms> {
        let mut out = Vec::with_capacity(configs.len());
        for (i, c) in configs.iter().enumerate() {
            let kinds = [c.filter.is_some(), c.route.is_some(), c.map.is_some()];
            if kinds.iter().filter(|k| **k).count() != 1 {
                return Err(Error::Config(format!(
                    "transform {i}: give exactly one of filter, route or map"
                )));
            }
            if let Some(p) = &c.filter {
                out.push(filter(p, i)?);
            } else if let Some(r) = &c.route {
                out.push(Transform::Route {
                    selector: selector(&r.header, &r.field, r.key, i)?,
                    routes: r.routes.clone(),
                    default: r.default.clone(),
                });
            } else if let Some(m) = &c.map {
                for p in m
                    .set
                    .keys()
                    .chain(&m.remove)
                    .chain(m.rename.keys())
                    .chain(m.rename.values())
                {
                    if !p.starts_with('/') {
                        return Err(Error::Config(format!(
                            "transform {i}: {p:?} is not a JSON pointer (write /a/b)"
                        )));
                    }
                }
                out.push(Transform::Map(m.clone()));
            }
        }
        Ok(Transforms(out))
    }

    /// Runs every transform on `event`.
    pub fn apply(&self, mut event: Event) -> Result<Outcome, TransformError> {
        let mut targets: Option<Vec<String>> = None;
        let mut decoded: Option<Decoded> = None;
        for (index, t) in self.0.iter().enumerate() {
            match t {
                Transform::Filter {
                    selector,
                    test,
                    negate,
                } => {
                    let value = read(selector, &event, &mut decoded);
                    let hit = match test {
                        Test::Present(p) => value.is_some() == *p,
                        Test::Equals(s) => value.as_deref() == Some(s.as_str()),
                        Test::OneOf(v) => value.is_some_and(|x| v.contains(&x)),
                        Test::Matches(r) => value.is_some_and(|x| r.is_match(&x)),
                    };
                    if hit == *negate {
                        return Ok(Outcome::Dropped);
                    }
                }
                Transform::Route {
                    selector,
                    routes,
                    default,
                } => {
                    let value = read(selector, &event, &mut decoded);
                    let chosen = value
                        .and_then(|v| routes.get(&v))
                        .unwrap_or(default)
                        .clone();
                    targets = Some(chosen);
                }
                Transform::Map(m) => {
                    let d = decode(&event, &mut decoded).ok_or_else(|| TransformError {
                        index,
                        message: "map needs a JSON value (plain or Confluent-framed); this one is not JSON".into(),
                    })?;
                    let mut json = d.json.clone();
                    apply_map(m, &mut json);
                    let mut out = d.prefix.to_vec();
                    out.extend_from_slice(&serde_json::to_vec(&json).map_err(|e| {
                        TransformError {
                            index,
                            message: e.to_string(),
                        }
                    })?);
                    event.value = Bytes::from(out);
                    decoded = Some(Decoded {
                        prefix: d.prefix.clone(),
                        json,
                    });
                }
            }
        }
        Ok(Outcome::Send(event, targets))
    }
}

/// A JSON value and the Confluent framing before it (empty for plain JSON).
#[derive(Clone)]
struct Decoded {
    prefix: Bytes,
    json: Value,
}

fn decode<'a>(event: &Event, cache: &'a mut Option<Decoded>) -> Option<&'a Decoded> {
    if cache.is_none() {
        let v = &event.value;
        // Confluent's framing: magic byte 0 and a 4-byte schema id before the JSON.
        let (prefix, body) = if v.len() > 5 && v[0] == 0 {
            (v.slice(..5), v.slice(5..))
        } else {
            (Bytes::new(), v.clone())
        };
        let json = serde_json::from_slice(&body).ok()?;
        *cache = Some(Decoded { prefix, json });
    }
    cache.as_ref()
}

fn read(selector: &Selector, event: &Event, cache: &mut Option<Decoded>) -> Option<String> {
    match selector {
        Selector::Header(h) => event
            .header(h)
            .map(|v| String::from_utf8_lossy(v).into_owned()),
        Selector::Key => event.key_text(),
        Selector::Field(p) => {
            let v = decode(event, cache)?.json.pointer(p)?;
            Some(match v {
                Value::String(s) => s.clone(),
                Value::Null => return None,
                other => other.to_string(),
            })
        }
    }
}

fn apply_map(m: &MapConfig, json: &mut Value) {
    for (from, to) in &m.rename {
        if let Some(v) = take(json, from) {
            put(json, to, v);
        }
    }
    for p in &m.remove {
        take(json, p);
    }
    for (p, v) in &m.set {
        put(json, p, v.clone());
    }
}

fn split(pointer: &str) -> Option<(String, String)> {
    let (parent, last) = pointer.rsplit_once('/')?;
    Some((
        parent.to_owned(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn take(json: &mut Value, pointer: &str) -> Option<Value> {
    let (parent, last) = split(pointer)?;
    json.pointer_mut(&parent)?.as_object_mut()?.remove(&last)
}

fn put(json: &mut Value, pointer: &str, value: Value) {
    let Some((parent, last)) = split(pointer) else {
        return;
    };
    let mut cur = json;
    for part in parent.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        let Some(obj) = cur.as_object_mut() else {
            return;
        };
        cur = obj
            .entry(part)
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    if let Some(obj) = cur.as_object_mut() {
        obj.insert(last, value);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn compile(yaml: &str) -> Transforms {
        let configs: Vec<TransformConfig> = serde_yaml::from_str(yaml).unwrap_or_default();
        assert!(!configs.is_empty(), "{yaml}");
        Transforms::compile(&configs).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn filters_on_headers_and_fields() {
        let t = compile("- filter: { header: event_type, in: [Click] }\n- filter: { field: /country, matches: '^(DE|FR)$' }");
        let click = |country: &str| {
            Event::new(json!({"country": country}).to_string()).with_header("event_type", "Click")
        };
        assert!(matches!(t.apply(click("DE")), Ok(Outcome::Send(..))));
        assert_eq!(t.apply(click("US")), Ok(Outcome::Dropped));
        assert_eq!(
            t.apply(Event::new("{}").with_header("event_type", "View")),
            Ok(Outcome::Dropped)
        );
        // Not JSON: the field is absent, so the filter drops it.
        assert_eq!(
            t.apply(Event::new("x").with_header("event_type", "Click")),
            Ok(Outcome::Dropped)
        );
        let neg = compile("- filter: { header: debug, present: true, negate: true }");
        assert_eq!(
            neg.apply(Event::new("x").with_header("debug", "1")),
            Ok(Outcome::Dropped)
        );
        assert!(matches!(neg.apply(Event::new("x")), Ok(Outcome::Send(..))));
    }

    #[test]
    fn routes_by_value_with_default() {
        let t = compile("- route: { header: region, routes: { eu: [a, b] }, default: [c] }");
        let routed = |e: Event| match t.apply(e) {
            Ok(Outcome::Send(_, targets)) => targets,
            _ => None,
        };
        assert_eq!(
            routed(Event::new("x").with_header("region", "eu")),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(routed(Event::new("x")), Some(vec!["c".into()]));
    }

    #[test]
    fn maps_json_and_keeps_confluent_framing() {
        let t = compile(
            "- map: { set: { /meta/source: web }, remove: [/password], rename: { /uid: /user_id } }",
        );
        let mut framed = vec![0u8, 0, 0, 0, 7];
        framed.extend_from_slice(br#"{"uid": 1, "password": "x"}"#);
        let Ok(Outcome::Send(e, _)) = t.apply(Event::new(framed)) else {
            panic!("mapped")
        };
        assert_eq!(&e.value[..5], &[0, 0, 0, 0, 7]);
        let v: Value = serde_json::from_slice(&e.value[5..]).unwrap_or_default();
        assert_eq!(v, json!({"user_id": 1, "meta": {"source": "web"}}));
        assert!(t.apply(Event::new("not json")).is_err());
    }

    #[test]
    fn bad_transforms_are_refused() {
        for yaml in [
            "- filter: { header: a }",
            "- filter: { header: a, field: /b, equals: x }",
            "- filter: { field: b, equals: x }",
            "- filter: { header: a, matches: '(' }",
            "- map: { remove: [a] }",
        ] {
            let configs: Vec<TransformConfig> = serde_yaml::from_str(yaml).unwrap_or_default();
            assert!(Transforms::compile(&configs).is_err(), "{yaml}");
        }
    }
}
