//! JSON to Avro, guided by the writer schema: what REST Proxy clients send as `value` for the
//! `avro` format. Both plain JSON and Avro's JSON encoding are taken: a union branch may be
//! given bare (`"x"`, `null`) or wrapped with its type name (`{"string": "x"}`); `bytes` and
//! `fixed` are strings whose code points are the byte values, as Avro's JSON encoding has them.

use std::collections::HashMap;

use apache_avro::schema::{Name, Schema};
use apache_avro::types::Value as Avro;
use serde_json::Value as Json;

/// How deep a value may nest; deeper input is refused rather than recursed into.
const MAX_DEPTH: usize = 64;

/// Conversion steps one value may take: unions are tried branch by branch, so nested unions of
/// records could otherwise make a small hostile value cost exponential time.
const MAX_STEPS: usize = 1_000_000;

struct Ctx<'a> {
    names: &'a Names,
    steps: usize,
}

/// Named types of a schema, for `Ref`s.
pub(crate) type Names = HashMap<Name, Schema>;

/// Converts `json` to an Avro value of `schema`, or says where it does not fit.
pub(crate) fn to_avro(json: &Json, schema: &Schema, names: &Names) -> Result<Avro, String> {
    let mut cx = Ctx { names, steps: 0 };
    convert(json, schema, &mut cx, 0).map_err(|(path, why, _)| {
        if path.is_empty() {
            why
        } else {
            format!("at {path}: {why}")
        }
    })
}

/// Where (a path like `.a[2]`), why, and whether it is a limit no other union branch escapes.
type Failure = (String, String, bool);

fn fail<T>(why: impl Into<String>) -> Result<T, Failure> {
    Err((String::new(), why.into(), false))
}

fn over_limit<T>(why: String) -> Result<T, Failure> {
    Err((String::new(), why, true))
}

fn at<T>(r: Result<T, Failure>, step: &str) -> Result<T, Failure> {
    r.map_err(|(path, why, limit)| (format!("{step}{path}"), why, limit))
}

fn convert(json: &Json, schema: &Schema, cx: &mut Ctx<'_>, depth: usize) -> Result<Avro, Failure> {
    if depth > MAX_DEPTH {
        return over_limit(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    cx.steps += 1;
    if cx.steps > MAX_STEPS {
        return over_limit(format!(
            "the value takes more than {MAX_STEPS} steps to convert"
        ));
    }
    let d = depth + 1;
    Ok(match (schema, json) {
        (Schema::Ref { name }, _) => match cx.names.get(name) {
            Some(s) => return convert(json, s, cx, d),
            None => return fail(format!("unknown type {name}")),
        },
        (Schema::Null, Json::Null) => Avro::Null,
        (Schema::Boolean, Json::Bool(b)) => Avro::Boolean(*b),
        (Schema::Int, Json::Number(n)) => Avro::Int(int(n)?),
        (Schema::Date, Json::Number(n)) => Avro::Date(int(n)?),
        (Schema::TimeMillis, Json::Number(n)) => Avro::TimeMillis(int(n)?),
        (Schema::Long, Json::Number(n)) => Avro::Long(long(n)?),
        (Schema::TimeMicros, Json::Number(n)) => Avro::TimeMicros(long(n)?),
        (Schema::TimestampMillis, Json::Number(n)) => Avro::TimestampMillis(long(n)?),
        (Schema::TimestampMicros, Json::Number(n)) => Avro::TimestampMicros(long(n)?),
        (Schema::TimestampNanos, Json::Number(n)) => Avro::TimestampNanos(long(n)?),
        (Schema::LocalTimestampMillis, Json::Number(n)) => Avro::LocalTimestampMillis(long(n)?),
        (Schema::LocalTimestampMicros, Json::Number(n)) => Avro::LocalTimestampMicros(long(n)?),
        (Schema::LocalTimestampNanos, Json::Number(n)) => Avro::LocalTimestampNanos(long(n)?),
        (Schema::Float, Json::Number(n)) => Avro::Float(float(n)? as f32),
        (Schema::Double, Json::Number(n)) => Avro::Double(float(n)?),
        (Schema::String, Json::String(s)) => Avro::String(s.clone()),
        (Schema::Uuid, Json::String(s)) => match s.parse() {
            Ok(u) => Avro::Uuid(u),
            Err(_) => return fail(format!("{s:?} is not a UUID")),
        },
        (Schema::Bytes, Json::String(s)) => Avro::Bytes(code_points(s)?),
        (Schema::Decimal(_), Json::String(s)) => Avro::Decimal(code_points(s)?.into()),
        (Schema::Fixed(f), Json::String(s)) => {
            let bytes = code_points(s)?;
            if bytes.len() != f.size {
                return fail(format!(
                    "fixed {} takes {} bytes, got {}",
                    f.name,
                    f.size,
                    bytes.len()
                ));
            }
            Avro::Fixed(f.size, bytes)
        }
        (Schema::Enum(e), Json::String(s)) => match e.symbols.iter().position(|x| x == s) {
            Some(i) => Avro::Enum(i as u32, s.clone()),
            None => return fail(format!("{s:?} is not a symbol of enum {}", e.name)),
        },
        (Schema::Array(a), Json::Array(items)) => Avro::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| at(convert(item, &a.items, cx, d), &format!("[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        (Schema::Map(m), Json::Object(entries)) => Avro::Map(
            entries
                .iter()
                .map(|(k, v)| {
                    Ok::<_, Failure>((
                        k.clone(),
                        at(convert(v, &m.types, cx, d), &format!(".{k}"))?,
                    ))
                })
                .collect::<Result<_, _>>()?,
        ),
        (Schema::Record(r), Json::Object(fields)) => {
            if let Some(extra) = fields.keys().find(|k| !r.lookup.contains_key(*k)) {
                return fail(format!("record {} has no field {extra:?}", r.name));
            }
            let mut out = Vec::with_capacity(r.fields.len());
            for field in &r.fields {
                let value = match (fields.get(&field.name), &field.default) {
                    (Some(v), _) => at(
                        convert(v, &field.schema, cx, d),
                        &format!(".{}", field.name),
                    )?,
                    (None, Some(default)) => at(
                        convert(default, default_schema(&field.schema), cx, d),
                        &format!(".{}", field.name),
                    )
                    .map(|v| wrap_default(&field.schema, v))?,
                    (None, None) => {
                        return fail(format!("record {} lacks field {:?}", r.name, field.name))
                    }
                };
                out.push((field.name.clone(), value));
            }
            Avro::Record(out)
        }
        (Schema::Union(u), _) => {
            let variants = u.variants();
            // Avro's JSON encoding: {"<branch type>": value}.
            if let Json::Object(o) = json {
                if o.len() == 1 {
                    if let Some((tag, inner)) = o.iter().next() {
                        if let Some(i) = variants.iter().position(|v| branch_name(v) == *tag) {
                            let v = at(convert(inner, &variants[i], cx, d), &format!("<{tag}>"))?;
                            return Ok(Avro::Union(i as u32, Box::new(v)));
                        }
                    }
                }
            }
            // A branch that got inside the value before failing explains the mismatch best.
            let mut inner_failure = None;
            for (i, variant) in variants.iter().enumerate() {
                match convert(json, variant, cx, d) {
                    Ok(v) => return Ok(Avro::Union(i as u32, Box::new(v))),
                    Err(f) if f.2 => return Err(f),
                    Err(f) if !f.0.is_empty() => inner_failure = Some(f),
                    Err(_) => {}
                }
            }
            return match inner_failure {
                Some(f) => Err(f),
                None => fail(format!("{} fits no branch of the union", kind(json))),
            };
        }
        (schema, json) => {
            return fail(format!(
                "expected {}, got {}",
                branch_name(schema),
                kind(json)
            ))
        }
    })
}

/// A union field's default is for its first branch.
fn default_schema(schema: &Schema) -> &Schema {
    match schema {
        Schema::Union(u) => u.variants().first().unwrap_or(schema),
        other => other,
    }
}

fn wrap_default(schema: &Schema, v: Avro) -> Avro {
    match schema {
        Schema::Union(_) => Avro::Union(0, Box::new(v)),
        _ => v,
    }
}

/// The name a union branch goes by in Avro's JSON encoding.
fn branch_name(schema: &Schema) -> String {
    match schema {
        Schema::Record(r) => r.name.fullname(None),
        Schema::Enum(e) => e.name.fullname(None),
        Schema::Fixed(f) => f.name.fullname(None),
        Schema::Ref { name } => name.fullname(None),
        Schema::Null => "null".into(),
        Schema::Boolean => "boolean".into(),
        Schema::Int | Schema::Date | Schema::TimeMillis => "int".into(),
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => "long".into(),
        Schema::Float => "float".into(),
        Schema::Double => "double".into(),
        Schema::Bytes | Schema::Decimal(_) | Schema::BigDecimal => "bytes".into(),
        Schema::String | Schema::Uuid => "string".into(),
        Schema::Array(_) => "array".into(),
        Schema::Map(_) => "map".into(),
        Schema::Union(_) => "union".into(),
        Schema::Duration => "fixed".into(),
    }
}

fn kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn long(n: &serde_json::Number) -> Result<i64, Failure> {
    match n.as_i64() {
        Some(v) => Ok(v),
        None => fail(format!("{n} is not a 64-bit integer")),
    }
}

fn int(n: &serde_json::Number) -> Result<i32, Failure> {
    match n.as_i64().and_then(|v| i32::try_from(v).ok()) {
        Some(v) => Ok(v),
        None => fail(format!("{n} is not a 32-bit integer")),
    }
}

fn float(n: &serde_json::Number) -> Result<f64, Failure> {
    match n.as_f64() {
        Some(v) => Ok(v),
        None => fail(format!("{n} is not a number")),
    }
}

/// Avro's JSON encoding of bytes: each code point 0-255 is one byte.
fn code_points(s: &str) -> Result<Vec<u8>, Failure> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).or_else(|_| fail(format!("{c:?} is not a byte"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(schema: &str, json: Json) -> Result<Vec<u8>, String> {
        let schema = Schema::parse_str(schema).unwrap();
        let resolved = apache_avro::schema::ResolvedSchema::try_from(&schema).unwrap();
        let names: Names = resolved
            .get_names()
            .iter()
            .map(|(k, v)| (k.clone(), (*v).clone()))
            .collect();
        let value = to_avro(&json, &schema, &names)?;
        apache_avro::to_avro_datum(&schema, value).map_err(|e| e.to_string())
    }

    const USER: &str = r#"{"type":"record","name":"User","namespace":"ex","fields":[
        {"name":"name","type":"string"},
        {"name":"age","type":["null","int"],"default":null},
        {"name":"tags","type":{"type":"array","items":"string"},"default":[]},
        {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]},"default":"A"},
        {"name":"next","type":["null","User"],"default":null}]}"#;

    #[test]
    fn plain_and_avro_json_encodings_give_the_same_bytes() {
        let plain = run(USER, json!({"name":"ann","age":3,"tags":["x"],"kind":"B"})).unwrap();
        let wrapped = run(
            USER,
            json!({"name":"ann","age":{"int":3},"tags":["x"],"kind":"B"}),
        )
        .unwrap();
        assert_eq!(plain, wrapped);
        let recursive = run(USER, json!({"name":"a","next":{"ex.User":{"name":"b"}}})).unwrap();
        assert!(!recursive.is_empty());
    }

    #[test]
    fn mismatches_name_the_place() {
        let e = run(USER, json!({"name":"ann","age":"three"})).unwrap_err();
        assert!(e.contains("age"), "{e}");
        let e = run(USER, json!({"name":"ann","kind":"C"})).unwrap_err();
        assert!(e.contains("kind") && e.contains("symbol"), "{e}");
        let e = run(USER, json!({"age":1})).unwrap_err();
        assert!(e.contains("lacks field \"name\""), "{e}");
        let e = run(USER, json!({"name":"x","nmae":1})).unwrap_err();
        assert!(e.contains("no field \"nmae\""), "{e}");
        let e = run(r#""int""#, json!(1u64 << 40)).unwrap_err();
        assert!(e.contains("32-bit"), "{e}");
    }

    proptest::proptest! {
        /// Whatever JSON arrives, conversion answers (a value or a reason), never panics, and
        /// what it accepts the Avro encoder accepts too.
        #[test]
        fn any_json_converts_or_is_refused(text in "[\\[\\]{}:,\"a-z0-9 .-]{0,64}") {
            if let Ok(json) = serde_json::from_str::<Json>(&text) {
                let schema = Schema::parse_str(USER).unwrap();
                let names: Names = apache_avro::schema::ResolvedSchema::try_from(&schema)
                    .unwrap()
                    .get_names()
                    .iter()
                    .map(|(k, v)| (k.clone(), (*v).clone()))
                    .collect();
                match to_avro(&json, &schema, &names) {
                    Ok(value) => proptest::prop_assert!(apache_avro::to_avro_datum(&schema, value).is_ok()),
                    Err(e) => proptest::prop_assert!(!e.is_empty()),
                }
            }
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_recursed() {
        let mut v = json!({"name":"leaf"});
        for _ in 0..200 {
            v = json!({"name":"n","next":v});
        }
        let e = run(USER, v).unwrap_err();
        assert!(e.contains("deeper"), "{e}");
    }
}
