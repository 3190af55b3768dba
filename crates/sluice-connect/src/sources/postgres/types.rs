//! PostgreSQL column types to Connect schemas and values, as Debezium's PostgreSQL connector
//! maps them with its default settings (`time.precision.mode=adaptive`,
//! `binary.handling.mode=bytes`, `interval.handling.mode=numeric`) and the
//! `decimal.handling.mode` chosen. Values arrive in text format, in the styles the connection
//! asks for (ISO dates, UTC, ISO 8601 intervals, hex bytea).

use std::collections::HashMap;

use time::macros::format_description;
use time::{Date, PrimitiveDateTime};

use crate::data::{Datum, Schema, SchemaType};

/// Debezium's placeholder for an unchanged TOASTed value that was not sent.
pub(crate) const UNAVAILABLE: &str = "__debezium_unavailable_value";

/// How numeric/decimal columns are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecimalMode {
    /// Connect `Decimal` (bytes of the unscaled value); `VariableScaleDecimal` without a scale.
    Precise,
    /// A double.
    Double,
    /// A string.
    String,
}

/// User-defined types the catalog knows: enum labels and array element types.
#[derive(Debug, Clone, Default)]
pub(crate) struct TypeCatalog {
    /// Enum type OID → its labels in order.
    pub(crate) enums: HashMap<u32, Vec<String>>,
    /// Array type OID → element type OID (for arrays of user types; built-ins are known).
    pub(crate) arrays: HashMap<u32, u32>,
}

/// How one column's values are converted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Bool,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    /// Text-like; `name` is the Debezium logical name (Json, Uuid, Xml) if any.
    Text(Option<&'static str>),
    Bytes,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    TimeTz,
    Interval,
    Decimal {
        precision: Option<u32>,
        scale: Option<u32>,
    },
    Money,
    Enum(Vec<String>),
    Array(Box<Kind>),
}

impl Kind {
    /// The conversion of type `oid` with modifier `typmod`.
    pub(crate) fn of(oid: u32, typmod: i32, catalog: &TypeCatalog) -> Kind {
        match oid {
            16 => Kind::Bool,
            17 => Kind::Bytes,
            21 => Kind::Int16,
            23 => Kind::Int32,
            20 | 26 => Kind::Int64,
            700 => Kind::Float32,
            701 => Kind::Float64,
            114 | 3802 => Kind::Text(Some("io.debezium.data.Json")),
            2950 => Kind::Text(Some("io.debezium.data.Uuid")),
            142 => Kind::Text(Some("io.debezium.data.Xml")),
            1082 => Kind::Date,
            1083 => Kind::Time,
            1114 => Kind::Timestamp,
            1184 => Kind::TimestampTz,
            1266 => Kind::TimeTz,
            1186 => Kind::Interval,
            790 => Kind::Money,
            1700 => {
                // typmod = ((precision << 16) | scale) + 4; -1 when unconstrained.
                let (precision, scale) = if typmod >= 4 {
                    let m = (typmod - 4) as u32;
                    (Some(m >> 16), Some(m & 0xffff))
                } else {
                    (None, None)
                };
                Kind::Decimal { precision, scale }
            }
            _ => {
                if let Some(labels) = catalog.enums.get(&oid) {
                    return Kind::Enum(labels.clone());
                }
                if let Some(elem) = builtin_array_element(oid).or(catalog.arrays.get(&oid).copied())
                {
                    return Kind::Array(Box::new(Kind::of(elem, -1, catalog)));
                }
                // text, varchar, bpchar, name, char, inet, cidr, macaddr, bit, ranges, …
                Kind::Text(None)
            }
        }
    }

    /// The Connect schema of a column of this kind.
    pub(crate) fn schema(&self, optional: bool, decimals: DecimalMode) -> Schema {
        use SchemaType as T;
        match self {
            Kind::Bool => Schema::primitive(T::Boolean, optional),
            Kind::Int16 => Schema::primitive(T::Int16, optional),
            Kind::Int32 => Schema::primitive(T::Int32, optional),
            Kind::Int64 => Schema::primitive(T::Int64, optional),
            Kind::Float32 => Schema::primitive(T::Float32, optional),
            Kind::Float64 => Schema::primitive(T::Float64, optional),
            Kind::Text(None) => Schema::primitive(T::String, optional),
            Kind::Text(Some(name)) => Schema::named(T::String, optional, name, Some(1)),
            Kind::Bytes => Schema::primitive(T::Bytes, optional),
            Kind::Date => Schema::named(T::Int32, optional, "io.debezium.time.Date", Some(1)),
            Kind::Time => Schema::named(T::Int64, optional, "io.debezium.time.MicroTime", Some(1)),
            Kind::Timestamp => Schema::named(
                T::Int64,
                optional,
                "io.debezium.time.MicroTimestamp",
                Some(1),
            ),
            Kind::TimestampTz => Schema::named(
                T::String,
                optional,
                "io.debezium.time.ZonedTimestamp",
                Some(1),
            ),
            Kind::TimeTz => {
                Schema::named(T::String, optional, "io.debezium.time.ZonedTime", Some(1))
            }
            Kind::Interval => Schema::named(
                T::Int64,
                optional,
                "io.debezium.time.MicroDuration",
                Some(1),
            ),
            Kind::Money => decimal_schema(optional, decimals, Some(2), None),
            Kind::Decimal { precision, scale } => {
                decimal_schema(optional, decimals, *scale, *precision)
            }
            Kind::Enum(labels) => {
                Schema::named(T::String, optional, "io.debezium.data.Enum", Some(1))
                    .with_parameter("allowed", labels.join(","))
            }
            Kind::Array(item) => Schema::array(item.schema(true, decimals), optional),
        }
    }

    /// Converts one text value.
    pub(crate) fn parse(&self, text: &str, decimals: DecimalMode) -> Result<Datum, String> {
        let int = |t: &str| t.parse::<i64>().map(Datum::Int).map_err(|e| e.to_string());
        match self {
            Kind::Bool => match text {
                "t" => Ok(Datum::Bool(true)),
                "f" => Ok(Datum::Bool(false)),
                other => Err(format!("{other:?} is not a boolean")),
            },
            Kind::Int16 | Kind::Int32 | Kind::Int64 => int(text),
            Kind::Float32 | Kind::Float64 => parse_float(text),
            Kind::Text(_) | Kind::Enum(_) => Ok(Datum::String(text.to_owned())),
            Kind::Bytes => parse_bytea(text).map(Datum::Bytes),
            Kind::Date => parse_date(text).map(|d| Datum::Int(i64::from(d))),
            Kind::Time => parse_time_micros(text).map(Datum::Int),
            Kind::Timestamp => parse_timestamp_micros(text).map(Datum::Int),
            Kind::TimestampTz => Ok(Datum::String(zoned(text))),
            Kind::TimeTz => Ok(Datum::String(zoned_time(text))),
            Kind::Interval => parse_interval_micros(text).map(Datum::Int),
            Kind::Money => {
                let digits: String = text
                    .chars()
                    .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
                    .collect();
                let negative = text.contains('(') && !digits.starts_with('-');
                let digits = if negative {
                    format!("-{digits}")
                } else {
                    digits
                };
                decimal(&digits, decimals, Some(2))
            }
            Kind::Decimal { scale, .. } => decimal(text, decimals, *scale),
            Kind::Array(item) => parse_array(text)?
                .into_iter()
                .map(|v| match v {
                    None => Ok(Datum::Null),
                    Some(t) => item.parse(&t, decimals),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Datum::Array),
        }
    }

    /// The value of an unchanged TOASTed column whose content the server did not send:
    /// Debezium's placeholder where the type can carry it.
    pub(crate) fn unavailable(&self, schema: &Schema) -> Datum {
        match self {
            Kind::Text(_) | Kind::Enum(_) => Datum::String(UNAVAILABLE.to_owned()),
            Kind::Bytes => Datum::Bytes(UNAVAILABLE.as_bytes().to_vec()),
            Kind::Array(item) if matches!(**item, Kind::Text(_) | Kind::Enum(_)) => {
                Datum::Array(vec![Datum::String(UNAVAILABLE.to_owned())])
            }
            _ => schema.zero(),
        }
    }
}

fn decimal_schema(
    optional: bool,
    mode: DecimalMode,
    scale: Option<u32>,
    precision: Option<u32>,
) -> Schema {
    match (mode, scale) {
        (DecimalMode::Double, _) => Schema::primitive(SchemaType::Float64, optional),
        (DecimalMode::String, _) => Schema::primitive(SchemaType::String, optional),
        (DecimalMode::Precise, Some(scale)) => {
            let mut s = Schema::named(
                SchemaType::Bytes,
                optional,
                "org.apache.kafka.connect.data.Decimal",
                Some(1),
            )
            .with_parameter("scale", scale.to_string());
            if let Some(p) = precision {
                s = s.with_parameter("connect.decimal.precision", p.to_string());
            }
            s
        }
        (DecimalMode::Precise, None) => Schema {
            optional,
            ..Schema::structure(
                "io.debezium.data.VariableScaleDecimal",
                optional,
                vec![
                    crate::data::Field {
                        name: "scale".into(),
                        schema: Schema::primitive(SchemaType::Int32, false),
                    },
                    crate::data::Field {
                        name: "value".into(),
                        schema: Schema::primitive(SchemaType::Bytes, false),
                    },
                ],
            )
        }
        .with_version(1),
    }
}

impl Schema {
    fn with_version(mut self, version: i32) -> Self {
        self.version = Some(version);
        self
    }
}

/// A decimal text value in the chosen mode; `NaN` becomes null (Connect decimals cannot hold
/// it), as Debezium does.
fn decimal(text: &str, mode: DecimalMode, scale: Option<u32>) -> Result<Datum, String> {
    match mode {
        DecimalMode::String => return Ok(Datum::String(text.to_owned())),
        DecimalMode::Double => return parse_float(text),
        DecimalMode::Precise => {}
    }
    if text == "NaN" || text.ends_with("Infinity") {
        return Ok(Datum::Null);
    }
    let (digits, text_scale) = unscaled_digits(text)?;
    match scale {
        Some(scale) => {
            // Values come with exactly the column's scale; pad if a value has fewer digits.
            let pad = scale.checked_sub(text_scale).ok_or_else(|| {
                format!("{text} has more than the column's {scale} decimal places")
            })?;
            let mut digits = digits;
            digits.1.extend(std::iter::repeat_n(0u8, pad as usize));
            Ok(Datum::Bytes(twos_complement(digits.0, &digits.1)))
        }
        None => Ok(Datum::Struct(vec![
            Datum::Int(i64::from(text_scale)),
            Datum::Bytes(twos_complement(digits.0, &digits.1)),
        ])),
    }
}

/// `-12.340` → ((negative, [1,2,3,4,0]), scale 3).
#[allow(clippy::type_complexity)]
fn unscaled_digits(text: &str) -> Result<((bool, Vec<u8>), u32), String> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let mut digits = Vec::with_capacity(int.len() + frac.len());
    for c in int.chars().chain(frac.chars()) {
        let d = c
            .to_digit(10)
            .ok_or_else(|| format!("{text:?} is not a decimal number"))?;
        digits.push(d as u8);
    }
    if digits.is_empty() {
        return Err(format!("{text:?} is not a decimal number"));
    }
    let scale = u32::try_from(frac.len()).map_err(|_| format!("{text:?} is too long"))?;
    Ok(((negative, digits), scale))
}

/// The big-endian two's complement of a decimal digit string (what Java's
/// `BigInteger.toByteArray` gives for the unscaled value).
fn twos_complement(negative: bool, digits: &[u8]) -> Vec<u8> {
    // Base conversion 10 → 256 by repeated division.
    let mut num: Vec<u8> = digits.iter().copied().skip_while(|d| *d == 0).collect();
    let mut bytes = Vec::new(); // little-endian magnitude
    while !num.is_empty() {
        let mut rem = 0u32;
        let mut next = Vec::with_capacity(num.len());
        for d in &num {
            let cur = rem * 10 + u32::from(*d);
            let q = cur / 256;
            rem = cur % 256;
            if !(next.is_empty() && q == 0) {
                next.push(q as u8);
            }
        }
        bytes.push(rem as u8);
        num = next;
    }
    if bytes.is_empty() {
        return vec![0];
    }
    if negative {
        // Two's complement: invert and add one.
        let mut carry = true;
        for b in bytes.iter_mut() {
            let (v, c) = (!*b).overflowing_add(u8::from(carry));
            *b = v;
            carry = c;
        }
        if bytes.last().is_some_and(|b| b & 0x80 == 0) {
            bytes.push(0xff);
        }
    } else if bytes.last().is_some_and(|b| b & 0x80 != 0) {
        bytes.push(0);
    }
    bytes.reverse();
    bytes
}

fn parse_float(text: &str) -> Result<Datum, String> {
    match text {
        "NaN" => Ok(Datum::Float(f64::NAN)),
        "Infinity" => Ok(Datum::Float(f64::INFINITY)),
        "-Infinity" => Ok(Datum::Float(f64::NEG_INFINITY)),
        t => t
            .parse::<f64>()
            .map(Datum::Float)
            .map_err(|_| format!("{t:?} is not a number")),
    }
}

fn parse_bytea(text: &str) -> Result<Vec<u8>, String> {
    let hex = text
        .strip_prefix("\\x")
        .ok_or_else(|| format!("bytea value {text:.20?} is not in hex format"))?;
    if hex.len() % 2 != 0 {
        return Err("bytea hex of odd length".into());
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| "bytea value is not valid hex".to_owned())
        })
        .collect()
}

/// Days since 1970-01-01; PostgreSQL's infinities map to the extremes.
fn parse_date(text: &str) -> Result<i32, String> {
    match text {
        "infinity" => return Ok(i32::MAX),
        "-infinity" => return Ok(i32::MIN),
        _ => {}
    }
    let date = Date::parse(text, format_description!("[year]-[month]-[day]"))
        .map_err(|e| format!("date {text:?}: {e}"))?;
    let epoch = Date::from_ordinal_date(1970, 1).map_err(|e| e.to_string())?;
    i32::try_from((date - epoch).whole_days()).map_err(|e| e.to_string())
}

/// Microseconds since midnight (`24:00:00` is allowed by PostgreSQL).
fn parse_time_micros(text: &str) -> Result<i64, String> {
    let bad = || format!("time {text:?} is not HH:MM:SS[.ffffff]");
    let (hms, frac) = text.split_once('.').unwrap_or((text, ""));
    let mut parts = hms.split(':').map(|p| p.parse::<i64>().map_err(|_| bad()));
    let h = parts.next().ok_or_else(bad)??;
    let m = parts.next().ok_or_else(bad)??;
    let s = parts.next().ok_or_else(bad)??;
    Ok(((h * 60 + m) * 60 + s) * 1_000_000 + fraction_micros(frac).ok_or_else(bad)?)
}

fn fraction_micros(frac: &str) -> Option<i64> {
    if frac.is_empty() {
        return Some(0);
    }
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{frac:0<6}");
    padded.parse().ok()
}

/// Microseconds since the epoch of a timestamp without time zone (read as UTC).
fn parse_timestamp_micros(text: &str) -> Result<i64, String> {
    match text {
        "infinity" => return Ok(i64::MAX),
        "-infinity" => return Ok(i64::MIN),
        _ => {}
    }
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let dt = PrimitiveDateTime::parse(
        whole,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .map_err(|e| format!("timestamp {text:?}: {e}"))?;
    let micros = fraction_micros(frac).ok_or_else(|| format!("timestamp {text:?}"))?;
    let secs = dt.assume_utc().unix_timestamp();
    Ok(secs * 1_000_000 + micros)
}

/// `2024-01-02 03:04:05.5+00` (the connection's time zone is UTC) →
/// `2024-01-02T03:04:05.5Z`, Debezium's ZonedTimestamp.
fn zoned(text: &str) -> String {
    let iso = text.replacen(' ', "T", 1);
    match iso.strip_suffix("+00") {
        Some(rest) => format!("{rest}Z"),
        None => iso,
    }
}

fn zoned_time(text: &str) -> String {
    match text.strip_suffix("+00") {
        Some(rest) => format!("{rest}Z"),
        None => text.to_owned(),
    }
}

/// An ISO 8601 interval (`P1Y2M3DT4H5M6.5S`, parts may be negative) in microseconds, months
/// counted as 30.4375 days as Debezium does.
fn parse_interval_micros(text: &str) -> Result<i64, String> {
    let bad = || format!("interval {text:?} is not ISO 8601");
    let body = text.strip_prefix('P').ok_or_else(bad)?;
    let (date, time) = body.split_once('T').unwrap_or((body, ""));
    let mut total = 0f64;
    let mut parse = |part: &str, units: &[(char, f64)]| -> Result<(), String> {
        let mut num = String::new();
        for c in part.chars() {
            match units.iter().find(|(u, _)| *u == c) {
                Some((_, micros)) => {
                    let n: f64 = num.parse().map_err(|_| bad())?;
                    total += n * micros;
                    num.clear();
                }
                None => num.push(c),
            }
        }
        if num.is_empty() {
            Ok(())
        } else {
            Err(bad())
        }
    };
    const DAY: f64 = 86_400_000_000.0;
    const MONTH: f64 = 30.4375 * DAY;
    parse(
        date,
        &[
            ('Y', 12.0 * MONTH),
            ('M', MONTH),
            ('W', 7.0 * DAY),
            ('D', DAY),
        ],
    )?;
    parse(
        time,
        &[
            ('H', 3_600_000_000.0),
            ('M', 60_000_000.0),
            ('S', 1_000_000.0),
        ],
    )?;
    Ok(total.round() as i64)
}

/// A one-dimensional array literal (`{1,NULL,"a b","x\"y"}`) into its element texts.
fn parse_array(text: &str) -> Result<Vec<Option<String>>, String> {
    // A lower bound other than 1 is written as `[0:2]={…}`.
    let text = match text.strip_prefix('[') {
        Some(_) => text.split_once('=').map(|(_, rest)| rest).unwrap_or(text),
        None => text,
    };
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| format!("array {text:.40?} is not {{…}}"))?;
    let mut out = Vec::new();
    if inner.is_empty() {
        return Ok(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        match chars.peek() {
            Some('{') => return Err("multi-dimensional arrays are not supported".into()),
            Some('"') => {
                chars.next();
                let mut item = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => item.extend(chars.next()),
                        Some('"') => break,
                        Some(c) => item.push(c),
                        None => return Err("unterminated quoted array element".into()),
                    }
                }
                out.push(Some(item));
            }
            _ => {
                let mut item = String::new();
                while let Some(c) = chars.peek() {
                    if *c == ',' {
                        break;
                    }
                    item.push(*c);
                    chars.next();
                }
                out.push((item != "NULL").then_some(item));
            }
        }
        match chars.next() {
            Some(',') => continue,
            None => return Ok(out),
            Some(c) => return Err(format!("unexpected {c:?} in array")),
        }
    }
}

/// Element types of the built-in array types.
fn builtin_array_element(oid: u32) -> Option<u32> {
    Some(match oid {
        1000 => 16,   // bool[]
        1001 => 17,   // bytea[]
        1005 => 21,   // int2[]
        1007 => 23,   // int4[]
        1016 => 20,   // int8[]
        1021 => 700,  // float4[]
        1022 => 701,  // float8[]
        1009 => 25,   // text[]
        1014 => 1042, // bpchar[]
        1015 => 1043, // varchar[]
        1182 => 1082, // date[]
        1183 => 1083, // time[]
        1115 => 1114, // timestamp[]
        1185 => 1184, // timestamptz[]
        1231 => 1700, // numeric[]
        2951 => 2950, // uuid[]
        199 => 114,   // json[]
        3807 => 3802, // jsonb[]
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: DecimalMode = DecimalMode::Precise;

    fn kind(oid: u32) -> Kind {
        Kind::of(oid, -1, &TypeCatalog::default())
    }

    #[test]
    fn decimals_match_java_big_integer() {
        // new BigInteger("12345").toByteArray() = [0x30, 0x39]; -1 = [0xff]; 128 = [0x00, 0x80]
        assert_eq!(twos_complement(false, &[1, 2, 3, 4, 5]), vec![0x30, 0x39]);
        assert_eq!(twos_complement(true, &[1]), vec![0xff]);
        assert_eq!(twos_complement(false, &[1, 2, 8]), vec![0x00, 0x80]);
        assert_eq!(twos_complement(true, &[1, 2, 8]), vec![0x80]);
        assert_eq!(twos_complement(true, &[1, 2, 9]), vec![0xff, 0x7f]);
        assert_eq!(twos_complement(false, &[0, 0]), vec![0]);
        let k = Kind::of(1700, ((10 << 16) | 2) + 4, &TypeCatalog::default());
        assert_eq!(
            k.parse("123.45", P).unwrap(),
            Datum::Bytes(vec![0x30, 0x39])
        );
        assert_eq!(k.parse("NaN", P).unwrap(), Datum::Null);
        let s = k.schema(true, P);
        assert_eq!(s.parameters["scale"], "2");
        assert_eq!(s.parameters["connect.decimal.precision"], "10");
        assert_eq!(
            kind(1700).parse("-1.5", P).unwrap(),
            Datum::Struct(vec![Datum::Int(1), Datum::Bytes(vec![0xf1])])
        );
    }

    #[test]
    fn times() {
        assert_eq!(kind(1082).parse("1970-01-02", P).unwrap(), Datum::Int(1));
        assert_eq!(kind(1082).parse("1969-12-31", P).unwrap(), Datum::Int(-1));
        assert_eq!(
            kind(1083).parse("00:00:01.5", P).unwrap(),
            Datum::Int(1_500_000)
        );
        assert_eq!(
            kind(1114).parse("1970-01-01 00:00:01.000002", P).unwrap(),
            Datum::Int(1_000_002)
        );
        assert_eq!(
            kind(1184).parse("2024-01-02 03:04:05.123+00", P).unwrap(),
            Datum::String("2024-01-02T03:04:05.123Z".into())
        );
        assert_eq!(
            kind(1186).parse("P1DT2H", P).unwrap(),
            Datum::Int(86_400_000_000 + 7_200_000_000)
        );
        assert_eq!(
            kind(1186).parse("PT-1.5S", P).unwrap(),
            Datum::Int(-1_500_000)
        );
    }

    #[test]
    fn bytes_arrays_and_enums() {
        assert_eq!(
            kind(17).parse("\\x01ff", P).unwrap(),
            Datum::Bytes(vec![1, 255])
        );
        assert!(kind(17).parse("\\x0", P).is_err());
        assert_eq!(
            kind(1007).parse("{1,NULL,3}", P).unwrap(),
            Datum::Array(vec![Datum::Int(1), Datum::Null, Datum::Int(3)])
        );
        assert_eq!(
            kind(1009).parse(r#"{"a b","x\"y",plain}"#, P).unwrap(),
            Datum::Array(vec![
                Datum::String("a b".into()),
                Datum::String("x\"y".into()),
                Datum::String("plain".into())
            ])
        );
        assert!(kind(1007).parse("{{1},{2}}", P).is_err());
        let mut catalog = TypeCatalog::default();
        catalog
            .enums
            .insert(9000, vec!["red".into(), "green".into()]);
        let k = Kind::of(9000, -1, &catalog);
        assert_eq!(k.schema(true, P).parameters["allowed"], "red,green");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in ".{0,40}") {
            for oid in [16, 17, 21, 700, 1082, 1083, 1114, 1184, 1186, 1700, 790, 1007, 1009] {
                let _ = kind(oid).parse(&text, P);
            }
        }

        #[test]
        fn decimals_round_trip(n in any::<i64>()) {
            let text = n.to_string();
            let ((neg, digits), _) = unscaled_digits(&text).unwrap();
            let bytes = twos_complement(neg, &digits);
            let mut v: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
            for b in bytes { v = (v << 8) | i128::from(b); }
            prop_assert_eq!(v, i128::from(n));
        }
    }
}
