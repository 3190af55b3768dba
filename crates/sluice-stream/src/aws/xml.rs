//! The query protocol's XML answers, read into a small element tree (names without namespace
//! prefixes, text content) that callers walk by element names.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Deeper answers are not AWS's.
const MAX_DEPTH: usize = 32;

/// One element.
#[derive(Debug, Clone, Default)]
pub(crate) struct Element {
    /// Local name.
    pub(crate) name: String,
    /// Text directly inside, unescaped.
    pub(crate) text: String,
    children: Vec<usize>,
}

/// A parsed document: element 0 is a synthetic root.
#[derive(Debug, Clone, Default)]
pub(crate) struct XmlDoc {
    nodes: Vec<Element>,
}

impl XmlDoc {
    /// Parses `bytes`.
    pub(crate) fn parse(bytes: &[u8]) -> Result<XmlDoc, String> {
        let mut reader = Reader::from_reader(bytes);
        let mut nodes = vec![Element::default()];
        let mut stack = vec![0usize];
        let mut buf = Vec::new();
        loop {
            let event = reader
                .read_event_into(&mut buf)
                .map_err(|e| format!("malformed XML: {e}"))?;
            match event {
                Event::Start(start) => {
                    if stack.len() > MAX_DEPTH {
                        return Err(format!("XML nested deeper than {MAX_DEPTH}"));
                    }
                    let id = open(&mut nodes, &stack, start.local_name().as_ref());
                    stack.push(id);
                }
                Event::Empty(start) => {
                    open(&mut nodes, &stack, start.local_name().as_ref());
                }
                Event::End(_) if stack.len() > 1 => {
                    stack.pop();
                }
                Event::Text(t) => {
                    let text = t
                        .unescape()
                        .map_err(|e| format!("malformed XML text: {e}"))?;
                    if let Some(&cur) = stack.last() {
                        nodes[cur].text.push_str(text.trim());
                    }
                }
                Event::CData(t) => {
                    if let Some(&cur) = stack.last() {
                        nodes[cur].text.push_str(&String::from_utf8_lossy(&t));
                    }
                }
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        Ok(XmlDoc { nodes })
    }

    /// Every element reached from the root by the names of `path`, at any depth for the first
    /// name and as direct children after it.
    pub(crate) fn find(&self, path: &[&str]) -> Vec<usize> {
        let Some((first, rest)) = path.split_first() else {
            return Vec::new();
        };
        let mut current: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].name == *first)
            .collect();
        for name in rest {
            current = current
                .iter()
                .flat_map(|&i| self.nodes[i].children.iter().copied())
                .filter(|&c| self.nodes[c].name == *name)
                .collect();
        }
        current
    }

    /// The text of `node`'s first child named `name`.
    pub(crate) fn child_text(&self, node: usize, name: &str) -> Option<&str> {
        self.nodes
            .get(node)?
            .children
            .iter()
            .map(|&c| &self.nodes[c])
            .find(|c| c.name == name)
            .map(|c| c.text.as_str())
    }
}

/// Adds an element called `name` under the innermost open one; its id.
fn open(nodes: &mut Vec<Element>, stack: &[usize], name: &[u8]) -> usize {
    let id = nodes.len();
    nodes.push(Element {
        name: String::from_utf8_lossy(name).into_owned(),
        ..Element::default()
    });
    let parent = stack.last().copied().unwrap_or(0);
    nodes[parent].children.push(id);
    id
}

/// The `Code` and `Message` of a query-protocol `ErrorResponse`.
pub(crate) fn query_error(doc: &XmlDoc) -> Option<(String, String)> {
    let error = *doc.find(&["Error"]).first()?;
    let code = doc.child_text(error, "Code")?.to_owned();
    let message = doc.child_text(error, "Message").unwrap_or("").to_owned();
    Some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_batch_answer_and_an_error() {
        let doc = XmlDoc::parse(
            br#"<?xml version="1.0"?><PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
            <PublishBatchResult><Successful><member><Id>0</Id><MessageId>m-0</MessageId></member></Successful>
            <Failed><member><Id>1</Id><Code>InvalidParameter</Code><Message>a &amp; b</Message><SenderFault>true</SenderFault></member></Failed>
            </PublishBatchResult></PublishBatchResponse>"#,
        )
        .unwrap_or_default();
        let ok = doc.find(&["Successful", "member"]);
        assert_eq!(ok.len(), 1);
        assert_eq!(doc.child_text(ok[0], "MessageId"), Some("m-0"));
        let failed = doc.find(&["Failed", "member"]);
        assert_eq!(doc.child_text(failed[0], "Message"), Some("a & b"));

        let err = XmlDoc::parse(
            b"<ErrorResponse><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message></Error></ErrorResponse>",
        )
        .unwrap_or_default();
        assert_eq!(
            query_error(&err),
            Some(("NotFound".to_owned(), "Topic does not exist".to_owned()))
        );
    }

    #[test]
    fn hostile_documents_are_refused() {
        let deep = "<a>".repeat(100);
        assert!(XmlDoc::parse(deep.as_bytes()).is_err());
        assert!(XmlDoc::parse(b"<a>&bogus;</a>").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            if let Ok(doc) = XmlDoc::parse(&bytes) {
                let _ = query_error(&doc);
                let _ = doc.find(&["Successful", "member"]);
            }
        }

        #[test]
        fn tag_soup_parses_or_fails_cleanly(parts in proptest::collection::vec(
            proptest::sample::select(vec!["<a>", "</a>", "<b/>", "<Error>", "</Error>", "<Code>", "</Code>", "x", "&amp;", "&", "<![CDATA[y]]>", "<?xml version=\"1.0\"?>"]),
            0..200,
        )) {
            let text: String = parts.concat();
            if let Ok(doc) = XmlDoc::parse(text.as_bytes()) {
                let _ = query_error(&doc);
            }
        }
    }
}
