//! Confluent's JSON Schema compatibility rules: whether every document valid against the
//! writer's schema is valid against the reader's, keyword by keyword, with Confluent's names for
//! the differences (`PATTERN_ADDED`, `PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL`, ...).
//!
//! `$ref`s are followed on both sides ([`pointer`]). Recursive schemas (a `$ref` back to an
//! enclosing schema) would make the comparison endless, so a pair of sub-schemas already being
//! compared further up is taken as compatible (the rest of the comparison decides), the walk is
//! at most [`MAX_CHECK_DEPTH`] deep, and at most [`MAX_COMPARISONS`] pairs are compared.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

mod combined;

use combined::{has_base, Combined};

use super::pointer::{deref, Node};
use super::JsonSchema;
use crate::formats::limits::{MAX_COMPARISONS, MAX_NESTING_DEPTH};

/// Deepest the comparison walks, counting sub-schemas reached through `$ref`s: text nesting is
/// bounded by the limits, but a chain of definitions referring to one another nests deeper
/// than any one text.
const MAX_CHECK_DEPTH: usize = 2 * MAX_NESTING_DEPTH;

/// Why data valid against `writer` may be invalid against `reader` (Confluent's rules).
///
/// At most [`MAX_COMPARISONS`] pairs of sub-schemas are compared and at most
/// `MAX_CHECK_DEPTH` (twice [`MAX_NESTING_DEPTH`]) levels deep; schemas needing more are reported as incompatible, with a
/// problem saying so.
pub fn read_problems(writer: &JsonSchema, reader: &JsonSchema) -> Vec<String> {
    let mut checker = Checker {
        writer_docs: &writer.references,
        reader_docs: &reader.references,
        out: Vec::new(),
        left: MAX_COMPARISONS,
        exhausted: false,
        too_deep: false,
        in_progress: HashSet::new(),
        depth: 0,
        equal_docs: HashMap::new(),
        equal_references: writer.references == reader.references,
        patterns: HashMap::new(),
    };
    checker.check(Node::root(&writer.root), Node::root(&reader.root), "#");
    let mut out = checker.out;
    if checker.exhausted {
        out.push(format!(
            "#: the schemas are too complex to compare: the check needs more than the limit of {MAX_COMPARISONS} sub-schema comparisons"
        ));
    }
    if checker.too_deep {
        out.push(format!(
            "#: the schemas are too deep to compare: their $refs nest deeper than the limit of {MAX_CHECK_DEPTH} levels"
        ));
    }
    out
}

/// Two object schemas being compared, each with the node it is the value of.
#[derive(Clone, Copy)]
struct Objects<'a> {
    writer: Node<'a>,
    w: &'a Map<String, Value>,
    reader: Node<'a>,
    r: &'a Map<String, Value>,
}

/// One compatibility check in progress.
struct Checker<'a> {
    writer_docs: &'a HashMap<String, Value>,
    reader_docs: &'a HashMap<String, Value>,
    out: Vec<String>,
    /// Comparisons left.
    left: usize,
    exhausted: bool,
    too_deep: bool,
    /// Pairs of sub-schemas (by address) being compared further up the walk.
    in_progress: HashSet<(usize, usize)>,
    depth: usize,
    /// Whether two documents (by address) are equal, as found so far.
    equal_docs: HashMap<(usize, usize), bool>,
    /// Whether both schemas reference the same documents.
    equal_references: bool,
    /// `patternProperties` regexes compiled so far (`None`: not a regex this crate runs).
    patterns: HashMap<&'a str, Option<regex::Regex>>,
}

/// Largest compiled `patternProperties` regex, in bytes: patterns come from the network.
const MAX_PATTERN_BYTES: usize = 1 << 20;

/// Whether `v` has a `$ref` anywhere (walked without recursion).
fn has_ref(v: &Value) -> bool {
    let mut pending = vec![v];
    while let Some(v) = pending.pop() {
        match v {
            Value::Object(o) => {
                if o.contains_key("$ref") {
                    return true;
                }
                pending.extend(o.values());
            }
            Value::Array(a) => pending.extend(a),
            _ => {}
        }
    }
    false
}

fn address(v: &Value) -> usize {
    v as *const Value as usize
}

fn types_of(v: &Map<String, Value>) -> Option<Vec<String>> {
    match v.get("type")? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

/// The rule `obj` has for properties it does not list by name or pattern
/// (`additionalProperties`, or 2019-09's `unevaluatedProperties`); absent means anything.
fn additional(obj: &Map<String, Value>) -> Option<&Value> {
    obj.get("additionalProperties")
        .or_else(|| obj.get("unevaluatedProperties"))
}

fn required(obj: &Map<String, Value>) -> Vec<&str> {
    obj.get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn is_empty_schema(v: &Value) -> bool {
    matches!(v, Value::Bool(true)) || v.as_object().is_some_and(Map::is_empty)
}

/// `(property, dependency)` pairs of every draft's dependency keywords.
fn dependencies(obj: &Map<String, Value>) -> Vec<(&String, &Value)> {
    ["dependencies", "dependentRequired", "dependentSchemas"]
        .iter()
        .filter_map(|k| obj.get(*k).and_then(Value::as_object))
        .flatten()
        .collect()
}

fn num(obj: &Map<String, Value>, key: &str) -> Option<f64> {
    obj.get(key).and_then(Value::as_f64)
}

/// The array keywords of a schema in one form whatever its draft: the positional schemas
/// (draft-07 `items: [...]`, 2020-12 `prefixItems`) and the schema of the items after them
/// (draft-07 `additionalItems` after a tuple, otherwise `items`); `None` means any item.
struct ArrayShape<'a> {
    tuple: &'a [Value],
    rest: Option<&'a Value>,
}

impl<'a> ArrayShape<'a> {
    fn of(obj: &'a Map<String, Value>) -> Self {
        let unevaluated = obj.get("unevaluatedItems");
        match (obj.get("prefixItems"), obj.get("items")) {
            (Some(Value::Array(tuple)), rest) => Self {
                tuple,
                rest: rest.or(unevaluated),
            },
            (_, Some(Value::Array(tuple))) => Self {
                tuple,
                rest: obj.get("additionalItems").or(unevaluated),
            },
            (_, rest) => Self {
                tuple: &[],
                rest: rest.or(unevaluated),
            },
        }
    }

    fn is_constrained(&self) -> bool {
        !self.tuple.is_empty() || self.rest.is_some_and(|r| !is_empty_schema(r))
    }

    /// The schema item `i` must match; `None` when any value goes.
    fn item(&self, i: usize) -> Option<&'a Value> {
        self.tuple.get(i).or(self.rest)
    }
}

/// Whether multiples of `writer` are always multiples of `reader`.
fn divides(reader: f64, writer: f64) -> bool {
    if reader == 0.0 {
        return false;
    }
    let ratio = writer / reader;
    (ratio - ratio.round()).abs() < 1e-9
}

impl<'a> Checker<'a> {
    /// Takes one comparison; false once none are left.
    fn take(&mut self) -> bool {
        match self.left.checked_sub(1) {
            Some(left) => {
                self.left = left;
                true
            }
            None => {
                self.exhausted = true;
                false
            }
        }
    }

    fn problem(&mut self, path: &str, what: impl std::fmt::Display) {
        self.out.push(format!("{path}: {what}"));
    }

    /// Problems of `writer` against `reader`, on a scratch list (for alternatives of a
    /// `oneOf`/`anyOf`, which are tried rather than reported).
    fn try_pair(&mut self, writer: Node<'a>, reader: Node<'a>, path: &str) -> bool {
        let saved = std::mem::take(&mut self.out);
        self.check(writer, reader, path);
        let fits = self.out.is_empty();
        self.out = saved;
        fits
    }

    /// Whether two sub-schemas certainly accept the same documents: equal texts whose `$ref`s
    /// resolve in equal documents.
    fn same_meaning(&mut self, writer: Node<'a>, reader: Node<'a>) -> bool {
        if writer.value != reader.value || !self.equal_references {
            return false;
        }
        if std::ptr::eq(writer.doc, reader.doc) || !has_ref(writer.value) {
            return true;
        }
        let docs = (address(writer.doc), address(reader.doc));
        *self
            .equal_docs
            .entry(docs)
            .or_insert_with(|| writer.doc == reader.doc)
    }

    /// [`Checker::check`] with the roles swapped: whether what `reader` accepts, `writer`
    /// accepts too (for `not`, whose sense is inverted).
    fn try_swapped(&mut self, reader: Node<'a>, writer: Node<'a>, path: &str) -> bool {
        std::mem::swap(&mut self.writer_docs, &mut self.reader_docs);
        let fits = self.try_pair(reader, writer, path);
        std::mem::swap(&mut self.writer_docs, &mut self.reader_docs);
        fits
    }

    fn check(&mut self, writer: Node<'a>, reader: Node<'a>, path: &str) {
        if !self.take() {
            return;
        }
        let (writer, reader) = match (
            deref(writer, self.writer_docs),
            deref(reader, self.reader_docs),
        ) {
            (Ok(w), Ok(r)) => (w, r),
            (w, r) => {
                // Unresolvable on either side: identical texts still mean the same thing.
                if writer.value != reader.value {
                    for e in [w.err(), r.err()].into_iter().flatten() {
                        self.problem(path, format!("cannot resolve $ref '{}': define it in the schema or register the schema it names and list it in the request's references", e.0));
                    }
                }
                return;
            }
        };
        // A writer schema of `false` writes nothing the reader could fail on.
        if is_empty_schema(reader.value)
            || writer.value == &Value::Bool(false)
            || self.same_meaning(writer, reader)
        {
            return;
        }
        let key = (address(writer.value), address(reader.value));
        if self.in_progress.contains(&key) {
            return;
        }
        if self.depth >= MAX_CHECK_DEPTH {
            self.too_deep = true;
            return;
        }
        self.in_progress.insert(key);
        self.depth += 1;
        self.check_objects(writer, reader, path);
        self.depth -= 1;
        self.in_progress.remove(&key);
    }

    fn check_objects(&mut self, writer: Node<'a>, reader: Node<'a>, path: &str) {
        let (w, r) = match (writer.value, reader.value) {
            (Value::Object(w), Value::Object(r)) => (w, r),
            (_, Value::Bool(false)) => {
                return self.problem(path, "the reader rejects everything");
            }
            (Value::Bool(true), _) => {
                return self.problem(
                    path,
                    "the writer accepts anything but the reader is restricted",
                );
            }
            _ => return,
        };
        let pair = Objects {
            writer,
            w,
            reader,
            r,
        };
        // A writer that is only a combination constrains nothing outside its branches.
        if has_base(w) || Combined::of(w).is_none() {
            self.check_types(w, r, path);
            self.check_bounds(w, r, path);
            self.check_values(w, r, path);
            self.check_properties(pair, path);
            self.check_arrays(pair, path);
        }
        self.check_combinations(pair, path);
    }

    fn check_types(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str) {
        let Some(rt) = types_of(r) else { return };
        let Some(wt) = types_of(w) else {
            return self.problem(
                path,
                format!("TYPE_CHANGED: the writer allowed any type, the reader only {rt:?}"),
            );
        };
        for t in &wt {
            let widened = t == "integer" && rt.iter().any(|x| x == "number");
            if !rt.contains(t) && !widened {
                self.problem(
                    path,
                    format!("TYPE_CHANGED: type '{t}' of the writer is not accepted by the reader"),
                );
            }
        }
    }

    /// Numeric, length and count bounds, `multipleOf` and `uniqueItems`.
    fn check_bounds(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str) {
        for (key, name, tighter_is_larger) in [
            ("minLength", "MIN_LENGTH", true),
            ("minimum", "MINIMUM", true),
            ("exclusiveMinimum", "EXCLUSIVE_MINIMUM", true),
            ("minItems", "MIN_ITEMS", true),
            ("minProperties", "MIN_PROPERTIES", true),
            ("minContains", "MIN_CONTAINS", true),
            ("maxLength", "MAX_LENGTH", false),
            ("maximum", "MAXIMUM", false),
            ("exclusiveMaximum", "EXCLUSIVE_MAXIMUM", false),
            ("maxItems", "MAX_ITEMS", false),
            ("maxProperties", "MAX_PROPERTIES", false),
            ("maxContains", "MAX_CONTAINS", false),
        ] {
            let Some(rv) = num(r, key) else { continue };
            match num(w, key) {
                None => self.problem(path, format!("{name}_ADDED: {key} {rv} was added")),
                Some(wv) if tighter_is_larger && rv > wv => self.problem(
                    path,
                    format!("{name}_INCREASED: {key} rose from {wv} to {rv}"),
                ),
                Some(wv) if !tighter_is_larger && rv < wv => self.problem(
                    path,
                    format!("{name}_DECREASED: {key} fell from {wv} to {rv}"),
                ),
                Some(_) => {}
            }
        }
        if let Some(rm) = num(r, "multipleOf") {
            match num(w, "multipleOf") {
                None => self.problem(path, format!("MULTIPLE_OF_ADDED: multipleOf {rm} was added")),
                Some(wm) if !divides(rm, wm) => self.problem(
                    path,
                    format!("MULTIPLE_OF_CHANGED: multipleOf {wm} became {rm}, which does not divide it"),
                ),
                Some(_) => {}
            }
        }
        let unique = |o: &Map<String, Value>| o.get("uniqueItems") == Some(&Value::Bool(true));
        if unique(r) && !unique(w) {
            self.problem(path, "UNIQUE_ITEMS_ADDED: the reader requires unique items");
        }
    }

    /// `pattern`, `enum`, `const` and `dependencies`.
    fn check_values(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str) {
        if let Some(rp) = r.get("pattern").and_then(Value::as_str) {
            match w.get("pattern").and_then(Value::as_str) {
                None => self.problem(path, format!("PATTERN_ADDED: pattern '{rp}' was added")),
                Some(wp) if wp != rp => self.problem(
                    path,
                    format!("PATTERN_CHANGED: pattern '{wp}' became '{rp}'"),
                ),
                Some(_) => {}
            }
        }
        if let Some(re) = r.get("enum").and_then(Value::as_array) {
            let written: Option<Vec<&Value>> = match (w.get("enum"), w.get("const")) {
                (Some(Value::Array(we)), _) => Some(we.iter().collect()),
                (_, Some(c)) => Some(vec![c]),
                _ => None,
            };
            match written {
                Some(values) => {
                    for v in values.into_iter().filter(|v| !re.contains(v)) {
                        self.problem(path, format!("ENUM_ARRAY_NARROWED: value {v} was removed"));
                    }
                }
                None => self.problem(path, "ENUM_ARRAY_CHANGED: enum was added"),
            }
        }
        if let Some(rc) = r.get("const") {
            let same = match (w.get("const"), w.get("enum")) {
                (Some(wc), _) => wc == rc,
                (None, Some(Value::Array(we))) => we.iter().all(|v| v == rc),
                _ => false,
            };
            if !same {
                self.problem(path, format!("CONST_CHANGED: the reader only accepts {rc}"));
            }
        }
        let (wd, rd) = (dependencies(w), dependencies(r));
        for (name, rv) in rd {
            match wd.iter().find(|(n, _)| *n == name).map(|(_, v)| *v) {
                None => self.problem(
                    path,
                    format!("DEPENDENCY_ADDED: a dependency of property '{name}' was added"),
                ),
                Some(wv) if wv != rv => {
                    let extended = match (wv.as_array(), rv.as_array()) {
                        (Some(wa), Some(ra)) => ra.iter().any(|x| !wa.contains(x)),
                        _ => true,
                    };
                    if extended {
                        self.problem(
                            path,
                            format!("DEPENDENCY_CHANGED: the dependency of property '{name}' became stricter"),
                        );
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// The schema `obj` gives a property it does not list: the first `patternProperties`
    /// schema whose regex matches `name`, else `additionalProperties` (absent: anything).
    fn unlisted_property(&mut self, obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
        if let Some(patterns) = obj.get("patternProperties").and_then(Value::as_object) {
            for (pattern, schema) in patterns {
                let regex = self.patterns.entry(pattern.as_str()).or_insert_with(|| {
                    regex::RegexBuilder::new(pattern)
                        .size_limit(MAX_PATTERN_BYTES)
                        .build()
                        .ok()
                });
                if regex.as_ref().is_some_and(|re| re.is_match(name)) {
                    return Some(schema);
                }
            }
        }
        additional(obj)
    }

    fn check_properties(&mut self, pair: Objects<'a>, path: &str) {
        let Objects {
            writer,
            w,
            reader,
            r,
        } = pair;
        let empty: &'a Map<String, Value> = EMPTY.get_or_init(Map::new);
        let wp = w
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(empty);
        let rp = r
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(empty);
        let w_req = required(w);
        // Like Confluent, a newly required name counts only where the reader declares it.
        for req in required(r) {
            let declared = rp.get(req);
            if w_req.contains(&req) || declared.is_none() {
                continue;
            }
            if !declared
                .and_then(Value::as_object)
                .is_some_and(|p| p.contains_key("default"))
            {
                self.problem(
                    path,
                    format!("REQUIRED_ATTRIBUTE_ADDED: property '{req}' became required"),
                );
            }
        }
        for (name, rs) in rp {
            let sub = format!("{path}/properties/{name}");
            if let Some(ws) = wp.get(name) {
                self.check(writer.child(ws), reader.child(rs), &sub);
                continue;
            }
            // Data from the writer may carry this property with whatever the writer allowed
            // for properties it did not list.
            match self.unlisted_property(w, name) {
                Some(ws) => self.check(writer.child(ws), reader.child(rs), &sub),
                None if !is_empty_schema(rs) => self.problem(
                    &sub,
                    "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL: the writer allowed any value here",
                ),
                None => {}
            }
        }
        for (name, ws) in wp {
            if rp.contains_key(name) {
                continue;
            }
            let sub = format!("{path}/properties/{name}");
            match self.unlisted_property(r, name) {
                Some(Value::Bool(false)) if ws != &Value::Bool(false) => self.problem(
                    &sub,
                    "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL: the reader rejects this property",
                ),
                Some(rs) => self.check(writer.child(ws), reader.child(rs), &sub),
                None => {}
            }
        }
        // What neither side lists: the writer's rule for unlisted properties against the
        // reader's (`additionalProperties` absent is `true`).
        let wa = additional(w).unwrap_or(&Value::Bool(true));
        if let Some(ra) = additional(r) {
            let sub = format!("{path}/additionalProperties");
            match (wa, ra) {
                (Value::Bool(true), Value::Bool(false)) => self.problem(
                    &sub,
                    "ADDITIONAL_PROPERTIES_REMOVED: the reader closed the content model",
                ),
                (Value::Bool(true), Value::Object(o)) if !o.is_empty() => self.problem(
                    &sub,
                    "ADDITIONAL_PROPERTIES_NARROWED: the reader restricts properties the writer allowed freely",
                ),
                (Value::Object(_), Value::Object(_)) | (Value::Object(_), Value::Bool(false)) => {
                    self.check(writer.child(wa), reader.child(ra), &sub)
                }
                _ => {}
            }
        }
    }

    fn check_arrays(&mut self, pair: Objects<'a>, path: &str) {
        let Objects {
            writer,
            w,
            reader,
            r,
        } = pair;
        let (ws, rs) = (ArrayShape::of(w), ArrayShape::of(r));
        if ws.tuple.is_empty() && rs.tuple.is_empty() {
            // Without a tuple `additionalItems` constrains nothing, but Confluent compares it.
            if let Some(ra) = r.get("additionalItems") {
                let wa = w.get("additionalItems").unwrap_or(&Value::Bool(true));
                self.check(
                    writer.child(wa),
                    reader.child(ra),
                    &format!("{path}/additionalItems"),
                );
            }
        }
        if !rs.is_constrained() {
            return;
        }
        let writer_makes_arrays = types_of(w).is_some_and(|t| t.iter().any(|x| x == "array"));
        if ws.tuple.is_empty() && ws.rest.is_none() && !writer_makes_arrays {
            return;
        }
        // Every position either tuple names, then the items after both tuples.
        for i in 0..ws.tuple.len().max(rs.tuple.len()) {
            let sub = format!("{path}/items/{i}");
            match (ws.item(i), rs.item(i)) {
                (_, None) => {}
                (None, Some(ri)) if !is_empty_schema(ri) => self.problem(
                    &sub,
                    "ITEM_ADDED_TO_OPEN_CONTENT_MODEL: the writer allowed any item here",
                ),
                (None, Some(_)) => {}
                (Some(wi), Some(ri)) => self.check(writer.child(wi), reader.child(ri), &sub),
            }
        }
        match (ws.rest, rs.rest) {
            (_, None) => {}
            (None, Some(ri)) if !is_empty_schema(ri) => self.problem(
                &format!("{path}/items"),
                "ITEMS_ADDED: the writer allowed any items",
            ),
            (None, Some(_)) => {}
            (Some(wi), Some(ri)) => {
                self.check(writer.child(wi), reader.child(ri), &format!("{path}/items"))
            }
        }
    }
}

static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
