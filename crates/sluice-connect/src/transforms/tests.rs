//! The transforms on Debezium-shaped records.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Transforms;
use crate::convert::Prepared;
use crate::data::{Datum, Field, Schema, SchemaType};
use crate::plugin::Problems;
use crate::runtime::SourceRecord;

fn row_schema() -> Schema {
    Schema::structure(
        "shop.public.users.Value",
        true,
        vec![
            Field {
                name: "id".into(),
                schema: Schema::primitive(SchemaType::Int32, false),
            },
            Field {
                name: "email".into(),
                schema: Schema::primitive(SchemaType::String, true),
            },
        ],
    )
}

fn envelope_schema() -> Arc<Prepared> {
    let source = Schema::structure(
        "io.debezium.connector.postgresql.Source",
        false,
        vec![
            Field {
                name: "ts_ms".into(),
                schema: Schema::primitive(SchemaType::Int64, false),
            },
            Field {
                name: "table".into(),
                schema: Schema::primitive(SchemaType::String, true),
            },
        ],
    );
    Prepared::new(Schema::structure(
        "shop.public.users.Envelope",
        false,
        vec![
            Field {
                name: "before".into(),
                schema: row_schema(),
            },
            Field {
                name: "after".into(),
                schema: row_schema(),
            },
            Field {
                name: "source".into(),
                schema: source,
            },
            Field {
                name: "op".into(),
                schema: Schema::primitive(SchemaType::String, false),
            },
            Field {
                name: "ts_ms".into(),
                schema: Schema::primitive(SchemaType::Int64, true),
            },
        ],
    ))
}

fn row(id: i64, email: &str) -> Datum {
    Datum::Struct(vec![Datum::Int(id), Datum::String(email.into())])
}

fn event(
    schema: &Arc<Prepared>,
    op: &str,
    before: Option<Datum>,
    after: Option<Datum>,
) -> SourceRecord {
    let key = Prepared::new(Schema::structure(
        "shop.public.users.Key",
        false,
        vec![Field {
            name: "id".into(),
            schema: Schema::primitive(SchemaType::Int32, false),
        }],
    ));
    SourceRecord {
        topic: "shop.public.users".into(),
        key: Some((key, Datum::Struct(vec![Datum::Int(7)]))),
        value: Some((
            schema.clone(),
            Datum::Struct(vec![
                before.unwrap_or(Datum::Null),
                after.unwrap_or(Datum::Null),
                Datum::Struct(vec![
                    Datum::Int(1_700_000_000_000),
                    Datum::String("users".into()),
                ]),
                Datum::String(op.into()),
                Datum::Int(1_700_000_000_005),
            ]),
        )),
        timestamp_ms: Some(1_700_000_000_000),
        headers: Vec::new(),
    }
}

fn tombstone() -> SourceRecord {
    SourceRecord {
        value: None,
        ..event(&envelope_schema(), "d", None, None)
    }
}

fn chain(pairs: &[(&str, &str)]) -> Transforms {
    let props: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut problems = Problems::default();
    let t = Transforms::parse(&props, &mut problems);
    assert!(problems.is_empty(), "{}", problems.summary());
    t
}

fn problems(pairs: &[(&str, &str)]) -> Vec<String> {
    let props: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut problems = Problems::default();
    let _ = Transforms::parse(&props, &mut problems);
    problems.keys().map(str::to_owned).collect()
}

fn value_of(record: &SourceRecord) -> (Vec<String>, Vec<Datum>) {
    let (schema, datum) = record.value.as_ref().expect("a value");
    let names = schema
        .schema
        .fields
        .iter()
        .map(|f| f.name.clone())
        .collect();
    let Datum::Struct(values) = datum else {
        panic!("not a struct: {datum:?}")
    };
    (names, values.clone())
}

const UNWRAP: &str = "io.debezium.transforms.ExtractNewRecordState";

#[test]
fn unwrap_turns_changes_into_rows_with_added_fields_and_headers() {
    let schema = envelope_schema();
    let mut t = chain(&[
        ("transforms", "unwrap"),
        ("transforms.unwrap.type", UNWRAP),
        ("transforms.unwrap.add.fields", "op,source.ts_ms"),
        ("transforms.unwrap.add.headers", "op,table"),
    ]);
    let out = t
        .apply(event(
            &schema,
            "u",
            Some(row(7, "a@x")),
            Some(row(7, "b@x")),
        ))
        .unwrap()
        .unwrap();
    let (names, values) = value_of(&out);
    assert_eq!(names, ["id", "email", "__op", "__source_ts_ms"]);
    assert_eq!(
        values,
        [
            Datum::Int(7),
            Datum::String("b@x".into()),
            Datum::String("u".into()),
            Datum::Int(1_700_000_000_000)
        ]
    );
    let (schema_out, _) = out.value.as_ref().unwrap();
    assert_eq!(
        schema_out.schema.name.as_deref(),
        Some("shop.public.users.Value")
    );
    assert!(
        schema_out.schema.fields[3].schema.optional,
        "added fields are optional"
    );
    assert_eq!(
        out.headers,
        [
            ("__op".to_owned(), b"u".to_vec()),
            // A bare name found in `source` keeps its bare name, as in Debezium.
            ("__table".to_owned(), b"users".to_vec())
        ]
    );
    // The output schema is made once per envelope schema.
    let again = t
        .apply(event(&schema, "c", None, Some(row(8, "c@x"))))
        .unwrap()
        .unwrap();
    assert!(Arc::ptr_eq(&again.value.unwrap().0, &out.value.unwrap().0));
    assert_eq!(
        out.key.unwrap().1,
        Datum::Struct(vec![Datum::Int(7)]),
        "the key is kept"
    );
}

#[test]
fn unwrap_handles_deletes_truncates_and_tombstones_as_configured() {
    let schema = envelope_schema();
    let delete = || event(&schema, "d", Some(row(7, "a@x")), None);
    let mut default = chain(&[("transforms", "u"), ("transforms.u.type", UNWRAP)]);
    assert!(
        default.apply(delete()).unwrap().is_none(),
        "deletes dropped"
    );
    assert!(
        default.apply(tombstone()).unwrap().is_none(),
        "tombstones dropped"
    );
    assert!(
        default
            .apply(event(&schema, "t", None, None))
            .unwrap()
            .is_none(),
        "truncates dropped"
    );

    let mut rewrite = chain(&[
        ("transforms", "u"),
        ("transforms.u.type", UNWRAP),
        ("transforms.u.delete.handling.mode", "rewrite"),
        ("transforms.u.drop.tombstones", "false"),
    ]);
    let (names, values) = value_of(&rewrite.apply(delete()).unwrap().unwrap());
    assert_eq!(names, ["id", "email", "__deleted"]);
    assert_eq!(
        values,
        [
            Datum::Int(7),
            Datum::String("a@x".into()),
            Datum::String("true".into())
        ]
    );
    let (_, values) = value_of(
        &rewrite
            .apply(event(&schema, "c", None, Some(row(1, "n"))))
            .unwrap()
            .unwrap(),
    );
    assert_eq!(values[2], Datum::String("false".into()));
    assert!(
        rewrite.apply(tombstone()).unwrap().unwrap().value.is_none(),
        "tombstone kept"
    );

    let mut none = chain(&[
        ("transforms", "u"),
        ("transforms.u.type", UNWRAP),
        ("transforms.u.delete.handling.mode", "none"),
    ]);
    let out = none.apply(delete()).unwrap().unwrap();
    assert!(
        out.value.is_none() && out.key.is_some(),
        "a delete becomes a tombstone"
    );
}

#[test]
fn unwrap_passes_records_that_are_not_change_events() {
    let heartbeat = SourceRecord {
        topic: "__debezium-heartbeat.shop".into(),
        key: None,
        value: Some((Prepared::new(row_schema()), row(1, "x"))),
        timestamp_ms: None,
        headers: Vec::new(),
    };
    let mut t = chain(&[("transforms", "u"), ("transforms.u.type", UNWRAP)]);
    let out = t.apply(heartbeat).unwrap().unwrap();
    assert_eq!(value_of(&out).1, [Datum::Int(1), Datum::String("x".into())]);
}

#[test]
fn regex_router_renames_whole_matches_only() {
    let mut t = chain(&[
        ("transforms", "route"),
        (
            "transforms.route.type",
            "org.apache.kafka.connect.transforms.RegexRouter",
        ),
        ("transforms.route.regex", "shop\\.public\\.(.*)"),
        ("transforms.route.replacement", "tables-$1_v1"),
    ]);
    let out = t
        .apply(event(&envelope_schema(), "c", None, Some(row(1, "x"))))
        .unwrap()
        .unwrap();
    assert_eq!(out.topic, "tables-users_v1");
    let mut other = event(&envelope_schema(), "c", None, Some(row(1, "x")));
    other.topic = "xshop.public.users".into();
    assert_eq!(t.apply(other).unwrap().unwrap().topic, "xshop.public.users");
}

#[test]
fn mask_field_blanks_values_and_reaches_nested_fields_with_v2() {
    let schema = envelope_schema();
    let mut v2 = chain(&[
        ("transforms", "mask"),
        (
            "transforms.mask.type",
            "org.apache.kafka.connect.transforms.MaskField$Value",
        ),
        ("transforms.mask.fields", "after.email,before.email,missing"),
        ("transforms.mask.field.syntax.version", "V2"),
    ]);
    let out = v2
        .apply(event(
            &schema,
            "u",
            Some(row(7, "a@x")),
            Some(row(7, "b@x")),
        ))
        .unwrap()
        .unwrap();
    let (_, values) = value_of(&out);
    assert_eq!(values[0], row(7, ""));
    assert_eq!(values[1], row(7, ""));

    let mut replaced = chain(&[
        ("transforms", "unwrap,mask"),
        ("transforms.unwrap.type", UNWRAP),
        (
            "transforms.mask.type",
            "org.apache.kafka.connect.transforms.MaskField$Value",
        ),
        ("transforms.mask.fields", "email,id"),
        ("transforms.mask.replacement", "0"),
    ]);
    let out = replaced
        .apply(event(&schema, "c", None, Some(row(7, "b@x"))))
        .unwrap()
        .unwrap();
    assert_eq!(value_of(&out).1, [Datum::Int(0), Datum::String("0".into())]);

    let mut key = chain(&[
        ("transforms", "mask"),
        (
            "transforms.mask.type",
            "org.apache.kafka.connect.transforms.MaskField$Key",
        ),
        ("transforms.mask.fields", "id"),
        ("transforms.mask.replacement", "not-a-number"),
    ]);
    let err = key
        .apply(event(&schema, "c", None, Some(row(7, "b@x"))))
        .unwrap_err();
    assert_eq!(err.alias, "mask");
    assert!(err.message.contains("not a valid int32"), "{err}");

    let mut structure = chain(&[
        ("transforms", "mask"),
        (
            "transforms.mask.type",
            "org.apache.kafka.connect.transforms.MaskField$Value",
        ),
        ("transforms.mask.fields", "after"),
    ]);
    assert!(structure
        .apply(event(&schema, "c", None, Some(row(7, "b@x"))))
        .is_err());
    let out = structure
        .apply(event(&schema, "d", Some(row(7, "b@x")), None))
        .unwrap()
        .unwrap();
    assert_eq!(value_of(&out).1[1], Datum::Null, "a null field stays null");
}

#[test]
fn predicates_choose_the_records_a_transform_applies_to() {
    let schema = envelope_schema();
    let mut t = chain(&[
        ("transforms", "tag,untombstoned"),
        (
            "transforms.tag.type",
            "org.apache.kafka.connect.transforms.InsertHeader",
        ),
        ("transforms.tag.header", "origin"),
        ("transforms.tag.value.literal", "pg-main"),
        ("transforms.tag.predicate", "isUsers"),
        (
            "transforms.untombstoned.type",
            "org.apache.kafka.connect.transforms.InsertHeader",
        ),
        ("transforms.untombstoned.header", "live"),
        ("transforms.untombstoned.value.literal", "yes"),
        ("transforms.untombstoned.predicate", "isTombstone"),
        ("transforms.untombstoned.negate", "true"),
        ("predicates", "isUsers,isTombstone"),
        (
            "predicates.isUsers.type",
            "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
        ),
        ("predicates.isUsers.pattern", ".*\\.users"),
        (
            "predicates.isTombstone.type",
            "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
        ),
    ]);
    let out = t
        .apply(event(&schema, "c", None, Some(row(1, "x"))))
        .unwrap()
        .unwrap();
    assert_eq!(
        out.headers,
        [
            ("origin".to_owned(), b"pg-main".to_vec()),
            ("live".to_owned(), b"yes".to_vec())
        ]
    );
    let out = t.apply(tombstone()).unwrap().unwrap();
    assert_eq!(out.headers, [("origin".to_owned(), b"pg-main".to_vec())]);
    let mut other = event(&schema, "c", None, Some(row(1, "x")));
    other.topic = "shop.public.orders".into();
    assert_eq!(t.apply(other).unwrap().unwrap().headers.len(), 1);
}

#[test]
fn configuration_problems_name_the_setting() {
    assert_eq!(problems(&[("transforms", "x")]), ["transforms.x.type"]);
    assert_eq!(
        problems(&[
            ("transforms", "x"),
            ("transforms.x.type", "com.example.Nope")
        ]),
        ["transforms.x.type"]
    );
    assert_eq!(
        problems(&[
            ("transforms", "r"),
            (
                "transforms.r.type",
                "org.apache.kafka.connect.transforms.RegexRouter"
            ),
            ("transforms.r.regex", "(unclosed"),
        ]),
        ["transforms.r.regex", "transforms.r.replacement"]
    );
    assert_eq!(
        problems(&[
            ("transforms", "u"),
            ("transforms.u.type", UNWRAP),
            ("transforms.u.predicate", "nope"),
            ("transforms.u.delete.handling.mode", "explode"),
        ]),
        [
            "transforms.u.delete.handling.mode",
            "transforms.u.predicate"
        ]
    );
}
