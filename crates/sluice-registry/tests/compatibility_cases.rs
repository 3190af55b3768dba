//! Table-driven compatibility verdicts from Confluent's documented rules, for every format and
//! level. Each case: level, earlier versions (oldest first), the new schema, expected verdict.

use sluice_registry::formats::{CompatibilityLevel, ParsedSchema, SchemaType};

struct Case {
    name: &'static str,
    level: &'static str,
    previous: &'static [&'static str],
    new: &'static str,
    compatible: bool,
}

const fn case(
    name: &'static str,
    level: &'static str,
    previous: &'static [&'static str],
    new: &'static str,
    compatible: bool,
) -> Case {
    Case {
        name,
        level,
        previous,
        new,
        compatible,
    }
}

fn run(ty: SchemaType, cases: &[Case]) {
    let mut failures = Vec::new();
    for c in cases {
        let parse = |text: &str| {
            ParsedSchema::parse(ty, text, &[]).unwrap_or_else(|e| panic!("{}: {e}: {text}", c.name))
        };
        let level: CompatibilityLevel = c.level.parse().unwrap_or_else(|e| panic!("{e}"));
        let previous: Vec<ParsedSchema> = c.previous.iter().map(|s| parse(s)).collect();
        let problems = level.problems(&parse(c.new), &previous);
        if problems.is_empty() != c.compatible {
            failures.push(format!(
                "{} ({}): expected compatible={}, problems={problems:?}",
                c.name, c.level, c.compatible
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------- AVRO
const A_V1: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#;
const A_ADD_DEFAULT: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":"x"}]}"#;
const A_ADD_NO_DEFAULT: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}"#;
const A_EMPTY: &str = r#"{"type":"record","name":"R","fields":[]}"#;
const A_A_DEFAULT: &str =
    r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":0}]}"#;
const A_A_DEFAULT_1: &str =
    r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":1}]}"#;
const A_LONG: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#;
const A_FLOAT: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"float"}]}"#;
const A_DOUBLE: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"double"}]}"#;
const A_STRING: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
const A_BYTES: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"bytes"}]}"#;
const A_S_DEFAULT: &str =
    r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string","default":""}]}"#;
const E2: &str = r#"{"type":"enum","name":"E","symbols":["A","B"]}"#;
const E3: &str = r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#;
const U2: &str = r#"["null","string"]"#;
const U3: &str = r#"["null","string","int"]"#;
const S: &str = r#""string""#;
const ARR_INT: &str = r#"{"type":"array","items":"int"}"#;
const ARR_LONG: &str = r#"{"type":"array","items":"long"}"#;
const MAP_LONG: &str = r#"{"type":"map","values":"long"}"#;
const MAP_INT: &str = r#"{"type":"map","values":"int"}"#;
const FIX4: &str = r#"{"type":"fixed","name":"F","size":4}"#;
const FIX8: &str = r#"{"type":"fixed","name":"F","size":8}"#;
const RENAMED_RECORD: &str =
    r#"{"type":"record","name":"Other","fields":[{"name":"a","type":"int"}]}"#;
const RENAMED_FIELD: &str = r#"{"type":"record","name":"R","fields":[{"name":"z","type":"int"}]}"#;
const ALIASED_FIELD: &str =
    r#"{"type":"record","name":"R","fields":[{"name":"z","type":"int","aliases":["a"]}]}"#;
const A_NULLABLE: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"n","type":["null","string"],"default":null}]}"#;
const A_AS_ENUM: &str = r#"{"type":"enum","name":"R","symbols":["A"]}"#;

#[test]
fn avro_cases() {
    let cases = [
        case(
            "add field with default",
            "BACKWARD",
            &[A_V1],
            A_ADD_DEFAULT,
            true,
        ),
        case(
            "add field without default",
            "BACKWARD",
            &[A_V1],
            A_ADD_NO_DEFAULT,
            false,
        ),
        case("remove field", "BACKWARD", &[A_V1], A_EMPTY, true),
        case(
            "remove field without default",
            "FORWARD",
            &[A_V1],
            A_EMPTY,
            false,
        ),
        case(
            "remove field with default",
            "FORWARD",
            &[A_A_DEFAULT],
            A_EMPTY,
            true,
        ),
        case(
            "add field without default",
            "FORWARD",
            &[A_V1],
            A_ADD_NO_DEFAULT,
            true,
        ),
        case(
            "add field without default",
            "FULL",
            &[A_V1],
            A_ADD_NO_DEFAULT,
            false,
        ),
        case(
            "add field with default",
            "FULL",
            &[A_V1],
            A_ADD_DEFAULT,
            true,
        ),
        case("int to long", "BACKWARD", &[A_V1], A_LONG, true),
        case("long to int", "BACKWARD", &[A_LONG], A_V1, false),
        case("int to long", "FORWARD", &[A_V1], A_LONG, false),
        case("float to double", "BACKWARD", &[A_FLOAT], A_DOUBLE, true),
        case("int to string", "BACKWARD", &[A_V1], A_STRING, false),
        case("string to bytes", "BACKWARD", &[A_STRING], A_BYTES, true),
        case("enum symbol added", "BACKWARD", &[E2], E3, true),
        case("enum symbol removed", "BACKWARD", &[E3], E2, false),
        case("enum symbol added", "FORWARD", &[E2], E3, false),
        case("union branch added", "BACKWARD", &[U2], U3, true),
        case("union branch removed", "BACKWARD", &[U3], U2, false),
        case("type to union containing it", "BACKWARD", &[S], U2, true),
        case("union to single type", "BACKWARD", &[U2], S, false),
        case("record renamed", "BACKWARD", &[A_V1], RENAMED_RECORD, false),
        case(
            "field renamed without alias",
            "BACKWARD",
            &[A_V1],
            RENAMED_FIELD,
            false,
        ),
        case(
            "array items int to long",
            "BACKWARD",
            &[ARR_INT],
            ARR_LONG,
            true,
        ),
        case(
            "map values long to int",
            "BACKWARD",
            &[MAP_LONG],
            MAP_INT,
            false,
        ),
        case("fixed size changed", "BACKWARD", &[FIX4], FIX8, false),
        case("anything goes", "NONE", &[A_V1], A_STRING, true),
        case(
            "transitive history",
            "BACKWARD",
            &[A_STRING, A_EMPTY],
            A_A_DEFAULT,
            true,
        ),
        case(
            "transitive history",
            "BACKWARD_TRANSITIVE",
            &[A_STRING, A_EMPTY],
            A_A_DEFAULT,
            false,
        ),
        case(
            "transitive forward",
            "FORWARD",
            &[A_S_DEFAULT, A_EMPTY],
            A_V1,
            true,
        ),
        case(
            "transitive forward",
            "FORWARD_TRANSITIVE",
            &[A_S_DEFAULT, A_EMPTY],
            A_V1,
            false,
        ),
        case(
            "transitive full",
            "FULL",
            &[A_STRING, A_EMPTY],
            A_A_DEFAULT,
            true,
        ),
        case(
            "transitive full",
            "FULL_TRANSITIVE",
            &[A_STRING, A_EMPTY],
            A_A_DEFAULT,
            false,
        ),
        case(
            "nullable field with null default",
            "FULL",
            &[A_V1],
            A_NULLABLE,
            true,
        ),
        case("record to enum", "BACKWARD", &[A_V1], A_AS_ENUM, false),
        case(
            "default value changed",
            "FULL",
            &[A_A_DEFAULT],
            A_A_DEFAULT_1,
            true,
        ),
        case("first version", "BACKWARD", &[], A_V1, true),
        case("long to int forward", "FORWARD", &[A_LONG], A_V1, true),
        case(
            "field renamed with alias",
            "NONE",
            &[A_V1],
            ALIASED_FIELD,
            true,
        ),
    ];
    assert!(cases.len() >= 30);
    run(SchemaType::Avro, &cases);
}

// ---------------------------------------------------------------- PROTOBUF
const P_V1: &str = "syntax = \"proto3\"; package p; message M { string id = 1; int32 n = 2; }";
const P_ADD: &str =
    "syntax = \"proto3\"; package p; message M { string id = 1; int32 n = 2; string extra = 3; }";
const P_REMOVE: &str = "syntax = \"proto3\"; package p; message M { string id = 1; }";
const P_RENAME: &str =
    "syntax = \"proto3\"; package p; message M { string ident = 1; int32 count = 2; }";
const P_PACKAGE: &str = "syntax = \"proto3\"; package q; message M { string id = 1; int32 n = 2; }";
const P_TWO: &str = "syntax = \"proto3\"; package p; message M { string id = 1; int32 n = 2; } message Other { string x = 1; }";
const P_INT64: &str = "syntax = \"proto3\"; package p; message M { string id = 1; int64 n = 2; }";
const P_UINT64: &str = "syntax = \"proto3\"; package p; message M { string id = 1; uint64 n = 2; }";
const P_BOOL: &str = "syntax = \"proto3\"; package p; message M { string id = 1; bool n = 2; }";
const P_SINT32: &str = "syntax = \"proto3\"; package p; message M { string id = 1; sint32 n = 2; }";
const P_SINT64: &str = "syntax = \"proto3\"; package p; message M { string id = 1; sint64 n = 2; }";
const P_FIXED32: &str =
    "syntax = \"proto3\"; package p; message M { string id = 1; fixed32 n = 2; }";
const P_SFIXED32: &str =
    "syntax = \"proto3\"; package p; message M { string id = 1; sfixed32 n = 2; }";
const P_FIXED64: &str =
    "syntax = \"proto3\"; package p; message M { string id = 1; fixed64 n = 2; }";
const P_BYTES_ID: &str = "syntax = \"proto3\"; package p; message M { bytes id = 1; int32 n = 2; }";
const P_INT_ID: &str = "syntax = \"proto3\"; package p; message M { int32 id = 1; int32 n = 2; }";
const P_FLOAT: &str = "syntax = \"proto3\"; package p; message M { string id = 1; float n = 2; }";
const P_DOUBLE: &str = "syntax = \"proto3\"; package p; message M { string id = 1; double n = 2; }";
const P_MSG_FIELD: &str = "syntax = \"proto3\"; package p; message A { string x = 1; } message B { string x = 1; } message M { string id = 1; A n = 2; }";
const P_MSG_FIELD_B: &str = "syntax = \"proto3\"; package p; message A { string x = 1; } message B { string x = 1; } message M { string id = 1; B n = 2; }";
const P_SCALAR_TO_MSG: &str = "syntax = \"proto3\"; package p; message A { string x = 1; } message M { string id = 1; A n = 2; }";
const P_ENUM: &str = "syntax = \"proto3\"; package p; enum E { E0 = 0; E1 = 1; } message M { string id = 1; E n = 2; }";
const P_ENUM_MORE: &str = "syntax = \"proto3\"; package p; enum E { E0 = 0; E1 = 1; E2 = 2; } message M { string id = 1; E n = 2; }";
const P_ENUM_LESS: &str =
    "syntax = \"proto3\"; package p; enum E { E0 = 0; } message M { string id = 1; E n = 2; }";
const P_ONEOF_ONE: &str =
    "syntax = \"proto3\"; package p; message M { string id = 1; oneof o { int32 n = 2; } }";
const P_ONEOF_TWO: &str =
    "syntax = \"proto3\"; package p; message M { oneof o { string id = 1; int32 n = 2; } }";
const P_ONEOF_EXISTING_V1: &str =
    "syntax = \"proto3\"; package p; message M { string id = 1; oneof o { int32 n = 2; } }";
const P_ONEOF_EXISTING_V2: &str =
    "syntax = \"proto3\"; package p; message M { oneof o { string id = 1; int32 n = 2; } }";
const P_ONEOF_REMOVED_FIELD: &str =
    "syntax = \"proto3\"; package p; message M { oneof o { string id = 1; } }";
const P_ONEOF_NEW_FIELDS: &str = "syntax = \"proto3\"; package p; message M { string id = 1; int32 n = 2; oneof o { string a = 3; string b = 4; } }";
const P2_V1: &str = "syntax = \"proto2\"; package p; message M { optional string id = 1; }";
const P2_REQ_ADDED: &str =
    "syntax = \"proto2\"; package p; message M { optional string id = 1; required int32 n = 2; }";
const P2_REQ: &str =
    "syntax = \"proto2\"; package p; message M { optional string id = 1; required int32 n = 2; }";
const P_REPEATED_ID: &str =
    "syntax = \"proto3\"; package p; message M { repeated string id = 1; int32 n = 2; }";
const P_REPEATED_N: &str =
    "syntax = \"proto3\"; package p; message M { string id = 1; repeated int32 n = 2; }";
const P_NESTED: &str = "syntax = \"proto3\"; package p; message M { string id = 1; int32 n = 2; message In { string x = 1; } }";
const P_NESTED_ADD: &str = "syntax = \"proto3\"; package p; message M { string id = 1; int32 n = 2; message In { string x = 1; int64 y = 2; } }";
const P_STRING_N: &str =
    "syntax = \"proto3\"; package p; message M { string id = 1; string n = 2; }";

#[test]
fn protobuf_cases() {
    let cases = [
        case("field added", "BACKWARD", &[P_V1], P_ADD, true),
        case("field removed", "BACKWARD", &[P_V1], P_REMOVE, true),
        case("fields renamed", "BACKWARD", &[P_V1], P_RENAME, true),
        case("package changed", "BACKWARD", &[P_V1], P_PACKAGE, false),
        case("message removed", "BACKWARD", &[P_TWO], P_V1, false),
        case("message added", "BACKWARD", &[P_V1], P_TWO, true),
        case("message added", "FORWARD", &[P_V1], P_TWO, false),
        case("int32 to int64", "BACKWARD", &[P_V1], P_INT64, true),
        case("int32 to uint64", "BACKWARD", &[P_V1], P_UINT64, true),
        case("int32 to bool", "BACKWARD", &[P_V1], P_BOOL, true),
        case("sint32 to sint64", "BACKWARD", &[P_SINT32], P_SINT64, true),
        case("int32 to sint32", "BACKWARD", &[P_V1], P_SINT32, false),
        case(
            "fixed32 to sfixed32",
            "BACKWARD",
            &[P_FIXED32],
            P_SFIXED32,
            true,
        ),
        case(
            "fixed64 to fixed32",
            "BACKWARD",
            &[P_FIXED64],
            P_FIXED32,
            false,
        ),
        case("string to bytes", "BACKWARD", &[P_V1], P_BYTES_ID, true),
        case("string to int32", "BACKWARD", &[P_V1], P_INT_ID, false),
        case("float to double", "BACKWARD", &[P_FLOAT], P_DOUBLE, false),
        case(
            "scalar to message",
            "BACKWARD",
            &[P_V1],
            P_SCALAR_TO_MSG,
            false,
        ),
        case(
            "message type changed",
            "BACKWARD",
            &[P_MSG_FIELD],
            P_MSG_FIELD_B,
            false,
        ),
        case("enum to int32", "BACKWARD", &[P_ENUM], P_V1, true),
        case("enum value added", "BACKWARD", &[P_ENUM], P_ENUM_MORE, true),
        case(
            "enum value removed",
            "BACKWARD",
            &[P_ENUM],
            P_ENUM_LESS,
            true,
        ),
        case(
            "one field into new oneof",
            "BACKWARD",
            &[P_V1],
            P_ONEOF_ONE,
            true,
        ),
        case(
            "two fields into new oneof",
            "BACKWARD",
            &[P_V1],
            P_ONEOF_TWO,
            false,
        ),
        case(
            "field into existing oneof",
            "BACKWARD",
            &[P_ONEOF_EXISTING_V1],
            P_ONEOF_EXISTING_V2,
            false,
        ),
        case(
            "field removed from oneof",
            "BACKWARD",
            &[P_ONEOF_TWO],
            P_ONEOF_REMOVED_FIELD,
            false,
        ),
        case(
            "oneof added with new fields",
            "BACKWARD",
            &[P_V1],
            P_ONEOF_NEW_FIELDS,
            true,
        ),
        case(
            "required field added",
            "BACKWARD",
            &[P2_V1],
            P2_REQ_ADDED,
            false,
        ),
        case(
            "required field removed",
            "BACKWARD",
            &[P2_REQ],
            P2_V1,
            false,
        ),
        case(
            "string to repeated string",
            "BACKWARD",
            &[P_V1],
            P_REPEATED_ID,
            true,
        ),
        case(
            "int32 to repeated int32",
            "BACKWARD",
            &[P_V1],
            P_REPEATED_N,
            false,
        ),
        case(
            "nested message removed",
            "BACKWARD",
            &[P_NESTED],
            P_V1,
            false,
        ),
        case(
            "nested message field added",
            "BACKWARD",
            &[P_NESTED],
            P_NESTED_ADD,
            true,
        ),
        case("package changed", "NONE", &[P_V1], P_PACKAGE, true),
        case("field added", "FULL", &[P_V1], P_ADD, true),
        case("message added", "FULL", &[P_V1], P_TWO, false),
        case(
            "transitive history",
            "BACKWARD",
            &[P_V1, P_REMOVE],
            P_STRING_N,
            true,
        ),
        case(
            "transitive history",
            "BACKWARD_TRANSITIVE",
            &[P_V1, P_REMOVE],
            P_STRING_N,
            false,
        ),
        case(
            "transitive history",
            "FORWARD_TRANSITIVE",
            &[P_V1, P_REMOVE],
            P_STRING_N,
            false,
        ),
        case(
            "transitive history",
            "FULL_TRANSITIVE",
            &[P_V1, P_REMOVE],
            P_STRING_N,
            false,
        ),
    ];
    assert!(cases.len() >= 30);
    run(SchemaType::Protobuf, &cases);
}

// ---------------------------------------------------------------- JSON
const J_OPEN: &str = r#"{"type":"object","properties":{"a":{"type":"string"}}}"#;
const J_OPEN_ADD: &str =
    r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}"#;
const J_CLOSED: &str =
    r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}"#;
const J_CLOSED_ADD: &str = r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":false}"#;
const J_OPEN_NONE: &str = r#"{"type":"object","properties":{}}"#;
const J_CLOSED_NONE: &str = r#"{"type":"object","properties":{},"additionalProperties":false}"#;
const J_REQ: &str = r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#;
const J_INT: &str = r#"{"type":"object","properties":{"a":{"type":"integer"}}}"#;
const J_NUM: &str = r#"{"type":"object","properties":{"a":{"type":"number"}}}"#;
const J_ENUM2: &str = r#"{"type":"string","enum":["x","y"]}"#;
const J_ENUM3: &str = r#"{"type":"string","enum":["x","y","z"]}"#;
const J_STR: &str = r#"{"type":"string"}"#;
const J_MAX5: &str = r#"{"type":"string","maxLength":5}"#;
const J_MAX9: &str = r#"{"type":"string","maxLength":9}"#;
const J_MIN0: &str = r#"{"type":"integer","minimum":0}"#;
const J_MIN5: &str = r#"{"type":"integer","minimum":5}"#;
const J_ARR_S: &str = r#"{"type":"array","items":{"type":"string"}}"#;
const J_ARR_I: &str = r#"{"type":"array","items":{"type":"integer"}}"#;

#[test]
fn json_cases() {
    let cases = [
        case(
            "optional property added to closed model",
            "BACKWARD",
            &[J_CLOSED],
            J_CLOSED_ADD,
            true,
        ),
        case(
            "property added to open model",
            "BACKWARD",
            &[J_OPEN],
            J_OPEN_ADD,
            false,
        ),
        case(
            "property removed from open model",
            "BACKWARD",
            &[J_OPEN],
            J_OPEN_NONE,
            true,
        ),
        case(
            "property removed from closed model",
            "BACKWARD",
            &[J_CLOSED],
            J_CLOSED_NONE,
            false,
        ),
        case(
            "required property added",
            "BACKWARD",
            &[J_OPEN],
            J_REQ,
            false,
        ),
        case("required removed", "BACKWARD", &[J_REQ], J_OPEN, true),
        case("integer to number", "BACKWARD", &[J_INT], J_NUM, true),
        case("number to integer", "BACKWARD", &[J_NUM], J_INT, false),
        case("string to integer", "BACKWARD", &[J_OPEN], J_INT, false),
        case("enum added", "BACKWARD", &[J_STR], J_ENUM2, false),
        case("enum extended", "BACKWARD", &[J_ENUM2], J_ENUM3, true),
        case("enum narrowed", "BACKWARD", &[J_ENUM3], J_ENUM2, false),
        case("maxLength increased", "BACKWARD", &[J_MAX5], J_MAX9, true),
        case("maxLength decreased", "BACKWARD", &[J_MAX9], J_MAX5, false),
        case("minimum increased", "BACKWARD", &[J_MIN0], J_MIN5, false),
        case("open to closed", "BACKWARD", &[J_OPEN], J_CLOSED, false),
        case("closed to open", "BACKWARD", &[J_CLOSED], J_OPEN, true),
        case("items type changed", "BACKWARD", &[J_ARR_S], J_ARR_I, false),
        case("required property added", "FORWARD", &[J_OPEN], J_REQ, true),
        case("enum extended", "FORWARD", &[J_ENUM2], J_ENUM3, false),
        case("anything", "NONE", &[J_STR], J_INT, true),
        case("closed to open", "FULL", &[J_CLOSED], J_OPEN, false),
    ];
    assert!(cases.len() >= 15);
    run(SchemaType::Json, &cases);
}

// JSON Schema rules Confluent's registry applies, each case named after Confluent's difference
// type (its `errorType`); the expected verdicts are those of Confluent's default (STRICT) policy.
const J_PATTERN: &str = r#"{"type":"string","pattern":"^a"}"#;
const J_PATTERN_B: &str = r#"{"type":"string","pattern":"^b"}"#;
const J_TUPLE1: &str = r#"{"type":"array","items":[{"type":"string"}],"additionalItems":false}"#;
const J_TUPLE2: &str =
    r#"{"type":"array","items":[{"type":"string"},{"type":"number"}],"additionalItems":false}"#;
const J_TUPLE1_INT: &str =
    r#"{"type":"array","items":[{"type":"integer"}],"additionalItems":false}"#;
const J_PREFIX1: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"array","prefixItems":[{"type":"string"}],"items":false}"#;
const J_PREFIX2: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"array","prefixItems":[{"type":"string"},{"type":"number"}],"items":false}"#;
const J_REF_DEF_STR: &str = r##"{"type":"object","properties":{"a":{"$ref":"#/definitions/t"}},"definitions":{"t":{"type":"string"}}}"##;
const J_REF_DEF_INT: &str = r##"{"type":"object","properties":{"a":{"$ref":"#/definitions/t"}},"definitions":{"t":{"type":"integer"}}}"##;
const J_REF_DEFS_INT: &str = r##"{"type":"object","properties":{"a":{"$ref":"#/$defs/t"}},"$defs":{"t":{"type":"integer"}}}"##;
const J_INLINE_STR: &str = r#"{"type":"object","properties":{"a":{"type":"string"}}}"#;
const J_TREE_STR: &str = r##"{"$ref":"#/definitions/node","definitions":{"node":{"type":"object","properties":{"v":{"type":"string"},"next":{"$ref":"#/definitions/node"}}}}}"##;
const J_TREE_INT: &str = r##"{"$ref":"#/definitions/node","definitions":{"node":{"type":"object","properties":{"v":{"type":"integer"},"next":{"$ref":"#/definitions/node"}}}}}"##;
const J_ONE_OF_1: &str = r#"{"oneOf":[{"type":"string"}]}"#;
const J_ONE_OF_2: &str = r#"{"oneOf":[{"type":"string"},{"type":"number"}]}"#;
const J_ANY_OF_2: &str = r#"{"anyOf":[{"type":"string"},{"type":"number"}]}"#;
const J_ALL_OF_1: &str = r#"{"allOf":[{"type":"string"}]}"#;
const J_ALL_OF_2: &str = r#"{"allOf":[{"type":"string"},{"maxLength":5}]}"#;
const J_CLOSED_PATTERN: &str =
    r#"{"type":"object","additionalProperties":false,"properties":{"i_x":{"type":"integer"}}}"#;
const J_CLOSED_BY_PATTERN: &str = r#"{"type":"object","additionalProperties":false,"patternProperties":{"^i_":{"type":"number"}}}"#;
const J_CLOSED_BY_PATTERN_STR: &str = r#"{"type":"object","additionalProperties":false,"patternProperties":{"^i_":{"type":"string"}}}"#;

#[test]
fn json_cases_named_after_confluent_differences() {
    let cases = [
        case("PATTERN_ADDED", "BACKWARD", &[J_STR], J_PATTERN, false),
        case("PATTERN_REMOVED", "BACKWARD", &[J_PATTERN], J_STR, true),
        case(
            "PATTERN_CHANGED",
            "BACKWARD",
            &[J_PATTERN],
            J_PATTERN_B,
            false,
        ),
        case(
            "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL (draft-07 tuple)",
            "BACKWARD",
            &[J_TUPLE1],
            J_TUPLE2,
            true,
        ),
        case(
            "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL (draft-07 tuple)",
            "BACKWARD",
            &[J_TUPLE2],
            J_TUPLE1,
            false,
        ),
        case(
            "TYPE_CHANGED at a tuple position",
            "BACKWARD",
            &[J_TUPLE1],
            J_TUPLE1_INT,
            false,
        ),
        case(
            "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL (2020-12 prefixItems)",
            "BACKWARD",
            &[J_PREFIX1],
            J_PREFIX2,
            true,
        ),
        case(
            "TYPE_CHANGED through $ref #/definitions",
            "BACKWARD",
            &[J_REF_DEF_STR],
            J_REF_DEF_INT,
            false,
        ),
        case(
            "TYPE_CHANGED through $ref #/$defs",
            "BACKWARD",
            &[J_REF_DEF_STR],
            J_REF_DEFS_INT,
            false,
        ),
        case(
            "inlining a $ref changes nothing",
            "BACKWARD",
            &[J_REF_DEF_STR],
            J_INLINE_STR,
            true,
        ),
        case(
            "TYPE_CHANGED inside a recursive schema",
            "BACKWARD",
            &[J_TREE_STR],
            J_TREE_INT,
            false,
        ),
        case(
            "a recursive schema against itself",
            "FULL",
            &[J_TREE_STR],
            J_TREE_STR,
            true,
        ),
        case(
            "MULTIPLE_OF_ADDED",
            "BACKWARD",
            &[J_INT],
            r#"{"type":"integer","multipleOf":2}"#,
            false,
        ),
        case(
            "MULTIPLE_OF_REDUCED",
            "BACKWARD",
            &[r#"{"type":"integer","multipleOf":4}"#],
            r#"{"type":"integer","multipleOf":2}"#,
            true,
        ),
        case(
            "UNIQUE_ITEMS_ADDED",
            "BACKWARD",
            &[J_ARR_S],
            r#"{"type":"array","items":{"type":"string"},"uniqueItems":true}"#,
            false,
        ),
        case(
            "DEPENDENCY_ARRAY_ADDED",
            "BACKWARD",
            &[J_OPEN],
            r#"{"type":"object","properties":{"a":{"type":"string"}},"dependencies":{"a":["b"]}}"#,
            false,
        ),
        case(
            "NOT_TYPE_EXTENDED",
            "BACKWARD",
            &[J_OPEN],
            r#"{"not":{"type":"string"}}"#,
            false,
        ),
        case(
            "SUM_TYPE_EXTENDED",
            "BACKWARD",
            &[J_ONE_OF_1],
            J_ONE_OF_2,
            true,
        ),
        case(
            "SUM_TYPE_NARROWED",
            "BACKWARD",
            &[J_ONE_OF_2],
            J_ONE_OF_1,
            false,
        ),
        case(
            "COMBINED_TYPE_EXTENDED (oneOf to anyOf)",
            "BACKWARD",
            &[J_ONE_OF_2],
            J_ANY_OF_2,
            true,
        ),
        case(
            "COMBINED_TYPE_CHANGED (anyOf to oneOf)",
            "BACKWARD",
            &[J_ANY_OF_2],
            J_ONE_OF_2,
            false,
        ),
        case(
            "PRODUCT_TYPE_EXTENDED",
            "BACKWARD",
            &[J_ALL_OF_1],
            J_ALL_OF_2,
            false,
        ),
        case(
            "PRODUCT_TYPE_NARROWED",
            "BACKWARD",
            &[J_ALL_OF_2],
            J_ALL_OF_1,
            true,
        ),
        case(
            "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            "BACKWARD",
            &[J_CLOSED_PATTERN],
            J_CLOSED_BY_PATTERN,
            true,
        ),
        case(
            "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            "BACKWARD",
            &[J_CLOSED_PATTERN],
            J_CLOSED_BY_PATTERN_STR,
            false,
        ),
        case(
            "ADDITIONAL_PROPERTIES_NARROWED",
            "BACKWARD",
            &[r#"{"additionalProperties":true}"#],
            r#"{"additionalProperties":{"type":"number"}}"#,
            false,
        ),
        case(
            "REQUIRED_ATTRIBUTE_ADDED only counts declared properties",
            "BACKWARD",
            &[J_OPEN],
            r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["undeclared"]}"#,
            true,
        ),
    ];
    run(SchemaType::Json, &cases);
}

#[test]
fn json_refs_into_other_subjects_are_compared() {
    use sluice_registry::formats::ResolvedReference;
    let reference = |ty: &str| ResolvedReference {
        name: "address.json".into(),
        schema: format!(r#"{{"type":"object","properties":{{"zip":{{"type":"{ty}"}}}}}}"#),
    };
    let user = r#"{"type":"object","properties":{"home":{"$ref":"address.json"}}}"#;
    let parse = |r: ResolvedReference| {
        ParsedSchema::parse(SchemaType::Json, user, &[r]).unwrap_or_else(|e| panic!("{e}"))
    };
    let (old, same, changed) = (
        parse(reference("string")),
        parse(reference("string")),
        parse(reference("integer")),
    );
    let level = CompatibilityLevel::Backward;
    assert!(level.problems(&same, std::slice::from_ref(&old)).is_empty());
    let problems = level.problems(&changed, &[old]);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("/properties/home/properties/zip") && p.contains("TYPE_CHANGED")),
        "{problems:?}"
    );
}
