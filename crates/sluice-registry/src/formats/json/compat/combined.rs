//! Combined schemas (`allOf`, `anyOf`, `oneOf`) and `not`, by Confluent's structural rules: the
//! combinator may only widen (to `anyOf`, between single-branch forms, ...), a sum may not lose
//! branches nor a product gain them, and the branches must pair up compatibly (a maximum
//! bipartite matching).

use serde_json::{Map, Value};

use super::{Checker, Objects};
use crate::formats::json::pointer::Node;

/// Keywords that describe a schema without constraining the documents it accepts.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "definitions",
    "$defs",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Whether `obj` constrains documents with keywords beside its combination.
pub(super) fn has_base(obj: &Map<String, Value>) -> bool {
    obj.keys().any(|k| {
        !matches!(k.as_str(), "allOf" | "anyOf" | "oneOf") && !ANNOTATIONS.contains(&k.as_str())
    })
}

/// The combinator of a schema (`allOf`, `anyOf` or `oneOf`) and its distinct branches.
pub(super) struct Combined<'a> {
    kind: &'static str,
    branches: Vec<&'a Value>,
}

impl<'a> Combined<'a> {
    pub(super) fn of(obj: &'a Map<String, Value>) -> Option<Self> {
        ["allOf", "anyOf", "oneOf"].into_iter().find_map(|kind| {
            let all = obj.get(kind)?.as_array()?;
            // Branches are a set: a repeated branch adds nothing.
            let mut branches: Vec<&Value> = Vec::with_capacity(all.len());
            for b in all {
                if !branches.contains(&b) {
                    branches.push(b);
                }
            }
            Some(Self { kind, branches })
        })
    }

    fn is_sum(&self) -> bool {
        self.kind != "allOf"
    }
}

/// A maximum matching in the bipartite graph `edges[writer][reader]` (Kuhn's augmenting paths;
/// at most a few hundred branches, bounded by the comparison budget that built the edges).
fn max_matching(edges: &[Vec<bool>], readers: usize) -> usize {
    fn augment(
        w: usize,
        edges: &[Vec<bool>],
        seen: &mut [bool],
        owner: &mut [Option<usize>],
    ) -> bool {
        for (r, _) in edges[w].iter().enumerate().filter(|(_, e)| **e) {
            if seen[r] {
                continue;
            }
            seen[r] = true;
            if owner[r].is_none_or(|o| augment(o, edges, seen, owner)) {
                owner[r] = Some(w);
                return true;
            }
        }
        false
    }
    let mut owner = vec![None; readers];
    (0..edges.len())
        .filter(|&w| augment(w, edges, &mut vec![false; readers], &mut owner))
        .count()
}

impl<'a> Checker<'a> {
    /// `allOf`, `oneOf`, `anyOf` (Confluent's structural rules: the combinator may only
    /// widen, and the branches must pair up) and `not`.
    pub(super) fn check_combinations(&mut self, pair: Objects<'a>, path: &str) {
        let Objects {
            writer,
            w,
            reader,
            r,
        } = pair;
        match (Combined::of(w), Combined::of(r)) {
            (Some(wc), Some(rc)) => self.check_combined(writer, &wc, reader, &rc, path),
            // A plain writer against a combination: a sum needs one branch reading it, a
            // product needs every branch to.
            (None, Some(rc)) => {
                let fits: Vec<bool> = rc
                    .branches
                    .iter()
                    .map(|b| self.try_pair(writer, reader.child(b), path))
                    .collect();
                let ok = if rc.is_sum() {
                    fits.contains(&true)
                } else {
                    !fits.contains(&false)
                };
                if !ok {
                    self.problem(
                        &format!("{path}/{}", rc.kind),
                        "SUM_TYPE_NARROWED: no branch of the reader's combination accepts the writer's data",
                    );
                }
            }
            // A combination against a plain reader: every branch of a sum must be readable, one
            // branch of a product suffices. Keywords beside the combination make the writer a
            // product of them and it, and those keywords were compared already.
            (Some(wc), None) if !has_base(w) => {
                let fits: Vec<bool> = wc
                    .branches
                    .iter()
                    .map(|b| self.try_pair(writer.child(b), reader, path))
                    .collect();
                let ok = if wc.is_sum() {
                    !fits.contains(&false)
                } else {
                    fits.contains(&true)
                };
                if !ok {
                    self.problem(
                        &format!("{path}/{}", wc.kind),
                        "COMBINED_TYPE_CHANGED: the reader cannot read every alternative the writer allowed",
                    );
                }
            }
            (Some(_), None) | (None, None) => {}
        }
        if let Some(rn) = r.get("not") {
            // The reader rejects what `not` matches: fine when the writer rejected at least that.
            let narrowed = match w.get("not") {
                Some(wn) => !self.try_swapped(reader.child(rn), writer.child(wn), path),
                None => true,
            };
            if narrowed {
                self.problem(
                    &format!("{path}/not"),
                    "NOT_TYPE_EXTENDED: the reader rejects more values",
                );
            }
        }
    }

    fn check_combined(
        &mut self,
        writer: Node<'a>,
        wc: &Combined<'a>,
        reader: Node<'a>,
        rc: &Combined<'a>,
        path: &str,
    ) {
        let (wn, rn) = (wc.branches.len(), rc.branches.len());
        let widened = wc.kind == rc.kind
            || rc.kind == "anyOf"
            || (wn == 1 && rn == 1)
            || (wn == 1 && rc.kind == "oneOf")
            || (wc.kind == "allOf" && rn == 1);
        if !widened {
            return self.problem(
                path,
                format!("COMBINED_TYPE_CHANGED: {} became {}", wc.kind, rc.kind),
            );
        }
        // Fewer branches narrow a sum the writer had; more branches extend a product the
        // reader has.
        if rn < wn && wc.is_sum() {
            self.problem(
                &format!("{path}/{}", rc.kind),
                format!("SUM_TYPE_NARROWED: the reader has {rn} alternatives, the writer {wn}"),
            );
        } else if rn > wn && !rc.is_sum() {
            self.problem(
                &format!("{path}/{}", rc.kind),
                format!("PRODUCT_TYPE_EXTENDED: the reader requires {rn} schemas, the writer {wn}"),
            );
        }
        let edges: Vec<Vec<bool>> = wc
            .branches
            .iter()
            .map(|wb| {
                rc.branches
                    .iter()
                    .map(|rb| self.try_pair(writer.child(wb), reader.child(rb), path))
                    .collect()
            })
            .collect();
        if max_matching(&edges, rn) < wn.min(rn) {
            self.problem(
                &format!("{path}/{}", rc.kind),
                "COMBINED_TYPE_SUBSCHEMAS_CHANGED: the branches no longer pair up compatibly",
            );
        }
    }
}
