//! Bounds on schema input that comes from the network (request bodies and `_schemas` records).
//!
//! The parsers behind the formats (protox, serde_json, apache-avro, jsonschema, and this crate's
//! own walks) recurse once per nesting level, and a request handler runs on a 2 MiB tokio worker
//! stack: a few kilobytes of text nested a thousand levels deep would overflow it and abort the
//! process. So every schema text is measured here first, by a linear scan that recurses nowhere,
//! and refused with a message naming the limit before any recursive parser sees it.

use serde_json::Value;

/// Deepest bracket nesting (`{`, `[`, `(`, `<`) a schema text may have; also the deepest a
/// parsed JSON value or a decoded protobuf message tree may be.
///
/// Real schemas stay far below it: 64 levels is 63 nested protobuf messages, 32 nested JSON
/// Schema objects (`{"properties":{"a":{...}}}` is two levels each) or 21 nested Avro records
/// (record, `fields` array and field object are three). Every recursive walk in the formats
/// has been run at this depth on a 2 MiB stack in an unoptimized build.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Largest schema text accepted, in bytes.
///
/// A registered schema is stored JSON-escaped in one `_schemas` record, and Kafka caps a record
/// batch at about 1 MB by default (`message.max.bytes`); escaping roughly doubles quotes and
/// newlines, so half of that leaves room for the escaping and the rest of the record.
pub const MAX_SCHEMA_BYTES: usize = 512 * 1024;

/// Largest request body accepted, in bytes: a maximal schema after JSON escaping plus its
/// references, with room to spare. Larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Deepest chain of schema references (a schema importing one that imports another ...).
pub const MAX_REFERENCE_DEPTH: usize = 32;

/// Most schemas one schema may reference, directly and transitively, counted once each.
pub const MAX_REFERENCES: usize = 256;

/// Most text all of a schema's references may add up to, in bytes: every one of them is parsed
/// again on each request that names the schema.
pub const MAX_REFERENCED_BYTES: usize = 8 * 1024 * 1024;

/// Most pairs of sub-schemas one JSON Schema compatibility check compares. Nested `oneOf` /
/// `anyOf` alternatives are compared pairwise, which multiplies per level; past this budget
/// the check stops and reports the schemas as too complex to compare.
pub const MAX_COMPARISONS: usize = 100_000;

/// An input that exceeds one of the limits above; the message names the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The text is longer than [`MAX_SCHEMA_BYTES`].
    #[error("is {size} bytes long, more than the limit of {MAX_SCHEMA_BYTES} bytes")]
    TooLarge {
        /// Length of the text in bytes.
        size: usize,
    },
    /// The text or value nests deeper than [`MAX_NESTING_DEPTH`].
    #[error("nests deeper than the limit of {MAX_NESTING_DEPTH} levels{}", at_offset(*.offset))]
    TooDeep {
        /// Byte offset of the bracket that went past the limit, when scanning text.
        offset: Option<usize>,
    },
    /// A `/*` inside a block comment: protox rejects these anyway, and refusing them here
    /// keeps the scan's idea of what is a comment identical to protox's.
    #[error("has a nested block comment at byte {offset}, which .proto files do not allow")]
    NestedComment {
        /// Byte offset of the inner `/*`.
        offset: usize,
    },
}

fn at_offset(offset: Option<usize>) -> String {
    offset
        .map(|o| format!(" (at byte {o})"))
        .unwrap_or_default()
}

/// The lexical rules a text is scanned with, so brackets inside strings and comments are not
/// counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// JSON (Avro and JSON Schema): `"` strings with `\` escapes, no comments.
    Json,
    /// `.proto` text as protox lexes it: `'`/`"` strings that also end at a newline, `//` and
    /// `#` line comments, `/* */` block comments.
    Proto,
}

/// Checks the size and bracket nesting of a schema text before it is parsed.
///
/// Linear in the text and allocation-free apart from the bracket stack, which never grows past
/// [`MAX_NESTING_DEPTH`]. A closing bracket only closes the innermost open one when they
/// match; a stray or mismatched closer is ignored, so the depth measured is never below the
/// depth a recursive parser would reach on the same text.
pub fn check_text(text: &str, syntax: Syntax) -> Result<(), LimitError> {
    if text.len() > MAX_SCHEMA_BYTES {
        return Err(LimitError::TooLarge { size: text.len() });
    }
    let bytes = text.as_bytes();
    let mut open: Vec<u8> = Vec::with_capacity(MAX_NESTING_DEPTH);
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match (b, syntax) {
            (b'"', _) | (b'\'', Syntax::Proto) => i = skip_string(bytes, i, syntax),
            (b'#', Syntax::Proto) => i = skip_line(bytes, i),
            (b'/', Syntax::Proto) if bytes.get(i + 1) == Some(&b'/') => i = skip_line(bytes, i),
            (b'/', Syntax::Proto) if bytes.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(bytes, i)?
            }
            (b'{' | b'[' | b'(' | b'<', _) => {
                // `(` and `<` only nest in .proto (options, map<>, text-format values); in
                // JSON they are invalid outside strings, and counting them is harmless.
                if open.len() == MAX_NESTING_DEPTH {
                    return Err(LimitError::TooDeep { offset: Some(i) });
                }
                open.push(b);
                i += 1;
            }
            (b'}' | b']' | b')' | b'>', _) => {
                if open.last().copied() == Some(opener_of(b)) {
                    open.pop();
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn opener_of(closer: u8) -> u8 {
    match closer {
        b'}' => b'{',
        b']' => b'[',
        b')' => b'(',
        _ => b'<',
    }
}

/// Index just past the string starting with the quote at `start`. Bytes are scanned, not
/// chars: UTF-8 continuation bytes never equal an ASCII quote, backslash or newline.
fn skip_string(bytes: &[u8], start: usize, syntax: Syntax) -> usize {
    let quote = bytes.get(start).copied().unwrap_or(b'"');
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => {
                // protox only consumes the next byte as part of the escape for these; any
                // other escape is an error that leaves the next byte to be lexed on its own.
                let next = bytes.get(i + 1).copied();
                let escaped = match syntax {
                    Syntax::Json => next.is_some(),
                    Syntax::Proto => matches!(next, Some(b'\\' | b'\'' | b'"')),
                };
                i += if escaped { 2 } else { 1 };
            }
            // protox ends an unterminated string at the newline and lexes on from there.
            b'\n' if syntax == Syntax::Proto => return i + 1,
            _ if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Index just past the line comment starting at `start` (its newline included).
fn skip_line(bytes: &[u8], start: usize) -> usize {
    match bytes
        .get(start..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
    {
        Some(n) => start + n + 1,
        None => bytes.len(),
    }
}

/// Index just past the block comment whose `/*` is at `start`; an unterminated one runs to the
/// end, as in protox.
fn skip_block_comment(bytes: &[u8], start: usize) -> Result<usize, LimitError> {
    let mut i = start + 2;
    while let Some(&b) = bytes.get(i) {
        let next = bytes.get(i + 1).copied();
        match (b, next) {
            (b'*', Some(b'/')) => return Ok(i + 2),
            // protox nests block comments (reporting an error), which would make its notion
            // of where this comment ends differ from a plain scan; refuse instead.
            (b'/', Some(b'*')) => return Err(LimitError::NestedComment { offset: i }),
            _ => i += 1,
        }
    }
    Ok(bytes.len())
}

/// Checks that a parsed JSON value nests no deeper than [`MAX_NESTING_DEPTH`], without
/// recursing (the value may have been assembled from several texts, e.g. Avro references).
pub fn check_value_depth(value: &Value) -> Result<(), LimitError> {
    let mut pending: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth + 1 > MAX_NESTING_DEPTH {
            return Err(LimitError::TooDeep { offset: None });
        }
        pending.extend(children.map(|c| (c, depth + 1)));
    }
    Ok(())
}

/// Stack size of a tokio worker thread, which runs the request handlers.
#[cfg(test)]
pub(crate) const HANDLER_STACK: usize = 2 * 1024 * 1024;

/// Runs `f` on a thread with a [`HANDLER_STACK`]-sized stack, as a request handler would run
/// it, and returns its result. A stack overflow there aborts the whole test binary, which is
/// the point: the tests below prove the limits keep every parser inside that stack.
#[cfg(test)]
pub(crate) fn on_handler_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let handle = std::thread::Builder::new()
        .stack_size(HANDLER_STACK)
        .spawn(f)
        .unwrap_or_else(|e| panic!("cannot start a test thread: {e}"));
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, depth: usize) -> String {
        format!("{}{}", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn depth_at_the_limit_passes_and_one_more_is_refused() {
        for syntax in [Syntax::Json, Syntax::Proto] {
            assert_eq!(
                check_text(&nested("[", "]", MAX_NESTING_DEPTH), syntax),
                Ok(())
            );
            let err = check_text(&nested("[", "]", MAX_NESTING_DEPTH + 1), syntax);
            assert_eq!(
                err,
                Err(LimitError::TooDeep {
                    offset: Some(MAX_NESTING_DEPTH)
                })
            );
        }
        let msg = LimitError::TooDeep { offset: Some(3) }.to_string();
        assert!(msg.contains("limit of 64 levels"), "{msg}");
    }

    #[test]
    fn the_scan_itself_does_not_recurse() {
        // Text as deep as the size limit allows, scanned on a handler-sized stack.
        let text = "[".repeat(MAX_SCHEMA_BYTES);
        let verdicts = on_handler_stack(move || {
            (
                check_text(&text, Syntax::Json),
                check_text(&text, Syntax::Proto),
            )
        });
        let refused = Err(LimitError::TooDeep {
            offset: Some(MAX_NESTING_DEPTH),
        });
        assert_eq!(verdicts, (refused.clone(), refused));
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let deep = "{".repeat(MAX_NESTING_DEPTH + 1);
        for text in [
            format!("\"{deep}\""),
            format!("\"\\\"{deep}\""),
            format!("[\"{deep}\"]"),
        ] {
            assert_eq!(check_text(&text, Syntax::Json), Ok(()), "{text}");
        }
        for text in [
            format!("// {deep}\nmessage A {{}}"),
            format!("# {deep}\n"),
            format!("/* {deep} */"),
            format!("/* {deep}"),
            format!("option x = '{deep}';"),
            format!("option x = \"\\\"{deep}\";"),
        ] {
            assert_eq!(check_text(&text, Syntax::Proto), Ok(()), "{text}");
        }
    }

    #[test]
    fn proto_strings_end_at_a_newline_like_protox() {
        // An unterminated string must not hide the brackets on the following lines.
        let text = format!("option x = \"oops\n{}", "message A {".repeat(100));
        assert!(matches!(
            check_text(&text, Syntax::Proto),
            Err(LimitError::TooDeep { .. })
        ));
        // `\q` is not an escape that swallows the quote after it.
        let text = format!("option x = '\\q'{}", "{".repeat(100));
        assert!(check_text(&text, Syntax::Proto).is_err());
    }

    #[test]
    fn mismatched_closers_do_not_lower_the_depth() {
        let text = "message A { ) ".repeat(MAX_NESTING_DEPTH + 1);
        assert!(check_text(&text, Syntax::Proto).is_err());
    }

    #[test]
    fn nested_block_comments_are_refused() {
        let text = format!("/* /* */ \" */ {}", "{".repeat(100));
        assert_eq!(
            check_text(&text, Syntax::Proto),
            Err(LimitError::NestedComment { offset: 3 })
        );
    }

    #[test]
    fn size_limit() {
        let text = " ".repeat(MAX_SCHEMA_BYTES + 1);
        let err = check_text(&text, Syntax::Json);
        assert_eq!(
            err,
            Err(LimitError::TooLarge {
                size: MAX_SCHEMA_BYTES + 1
            })
        );
        assert!(check_text(&" ".repeat(MAX_SCHEMA_BYTES), Syntax::Json).is_ok());
    }

    #[test]
    fn value_depth() {
        let ok: Value =
            serde_json::from_str(&nested("[", "]", MAX_NESTING_DEPTH)).unwrap_or(Value::Null);
        assert_eq!(check_value_depth(&ok), Ok(()));
        let mut deep = Value::Null;
        for _ in 0..1000 {
            deep = Value::Array(vec![deep]);
        }
        assert_eq!(
            check_value_depth(&deep),
            Err(LimitError::TooDeep { offset: None })
        );
        // Dropping a deep value recurses too; take it apart without recursion.
        let mut v = deep;
        while let Value::Array(mut items) = v {
            v = items.pop().unwrap_or(Value::Null);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = check_text(&text, Syntax::Json);
            let _ = check_text(&text, Syntax::Proto);
        }

        #[test]
        fn lexically_tricky_text_never_panics(text in "[{}()<>\\[\\]'\"/*#\\\\\n a]{0,200}") {
            let _ = check_text(&text, Syntax::Json);
            let _ = check_text(&text, Syntax::Proto);
        }

        #[test]
        fn measured_depth_is_exact_for_plain_brackets(depth in 0usize..(2 * MAX_NESTING_DEPTH)) {
            let text = nested("{", "}", depth);
            let verdict = check_text(&text, Syntax::Proto);
            proptest::prop_assert_eq!(verdict.is_ok(), depth <= MAX_NESTING_DEPTH);
        }
    }
}
