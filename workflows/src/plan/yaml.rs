//! A YAML tree that remembers where every value was written.
//!
//! serde-based YAML loaders stop at the first error and forget positions once a value is
//! deserialized. To report every problem at once with its line and column, the plan is first
//! read into this small tree from the parser's events, then validated by hand in `parse.rs`.
//!
//! Plans are written by people and may come from CI, so the reader is defensive: anchors and
//! aliases are refused (they allow "billion laughs" expansion), and nesting depth and node
//! count are bounded.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::diagnostic::Diagnostic;

/// Deepest nesting accepted; a real plan needs about six levels.
const MAX_DEPTH: usize = 32;
/// Most nodes accepted in one plan.
const MAX_NODES: usize = 100_000;

/// A YAML value and where it starts.
#[derive(Debug, Clone)]
pub struct Node {
    pub line: usize,
    pub column: usize,
    pub value: Value,
}

/// The shapes a YAML value can take.
#[derive(Debug, Clone)]
pub enum Value {
    /// A scalar; `plain` is false when it was quoted or a block scalar (so `"3"` stays a string).
    Scalar {
        text: String,
        plain: bool,
    },
    Sequence(Vec<Node>),
    /// Entries in file order; duplicates are kept so the validator can report them.
    Mapping(Vec<(Node, Node)>),
}

impl Node {
    fn at(span: &Span, value: Value) -> Self {
        Self {
            line: span.start.line(),
            column: span.start.col() + 1,
            value,
        }
    }

    /// A YAML null: `~`, `null`, or nothing at all.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// Short description of the node's shape for error messages.
    pub fn shape(&self) -> &'static str {
        match &self.value {
            Value::Scalar { .. } if self.is_null() => "nothing (null)",
            Value::Scalar { .. } => "a scalar",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }
}

/// Reads every document of a YAML stream (Kubernetes manifests separated by `---`), with the
/// same limits as a plan; empty documents are skipped.
pub(crate) fn read_documents(text: &str) -> Result<Vec<Node>, Diagnostic> {
    let mut builder = Builder {
        multi: true,
        ..Builder::default()
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| Diagnostic {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            path: String::new(),
            message: format!("invalid YAML: {}", e.info()),
            hint: Some("check indentation and quoting near this position".to_owned()),
        })?;
        builder.push(event, span)?;
    }
    Ok(builder.roots.into_iter().filter(|n| !n.is_null()).collect())
}

/// Reads one YAML document. A syntax error is returned as a single diagnostic at its position.
pub(crate) fn read(text: &str) -> Result<Node, Diagnostic> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| Diagnostic {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            path: String::new(),
            message: format!("invalid YAML: {}", e.info()),
            hint: Some("check indentation and quoting near this position".to_owned()),
        })?;
        if let Some(root) = builder.push(event, span)? {
            return Ok(root);
        }
    }
    Ok(builder.root.unwrap_or(Node {
        line: 1,
        column: 1,
        value: Value::Scalar {
            text: String::new(),
            plain: true,
        },
    }))
}

#[derive(Default)]
struct Builder {
    /// Open sequences and mappings; a mapping keeps a pending key until its value arrives.
    stack: Vec<(Node, Option<Node>)>,
    root: Option<Node>,
    nodes: usize,
    documents: usize,
    /// Several documents are expected: each root is kept in `roots`.
    multi: bool,
    roots: Vec<Node>,
}

impl Builder {
    /// Feeds one event; returns the root when the first document is complete.
    fn push(&mut self, event: Event<'_>, span: Span) -> Result<Option<Node>, Diagnostic> {
        let refuse = |message: &str, hint: &str| Diagnostic {
            line: span.start.line(),
            column: span.start.col() + 1,
            path: String::new(),
            message: message.to_owned(),
            hint: Some(hint.to_owned()),
        };
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 && !self.multi {
                    return Err(refuse(
                        "more than one YAML document in the plan",
                        "a plan file holds exactly one plan; remove the `---` separator",
                    ));
                }
                Ok(None)
            }
            Event::Alias(_) => Err(refuse(
                "YAML aliases (`*name`) are not allowed in plans",
                "write the value out in full",
            )),
            Event::Scalar(text, style, anchor, _) => {
                if anchor != 0 {
                    return Err(refuse(
                        "YAML anchors (`&name`) are not allowed in plans",
                        "write the value out in full",
                    ));
                }
                let plain = matches!(style, ScalarStyle::Plain);
                self.count(&span)?;
                self.attach(Node::at(
                    &span,
                    Value::Scalar {
                        text: text.into_owned(),
                        plain,
                    },
                ))
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if anchor != 0 {
                    return Err(refuse(
                        "YAML anchors (`&name`) are not allowed in plans",
                        "write the value out in full",
                    ));
                }
                if self.stack.len() >= MAX_DEPTH {
                    return Err(refuse(
                        &format!("the plan nests deeper than {MAX_DEPTH} levels"),
                        "flatten the structure; real plans need a handful of levels",
                    ));
                }
                self.count(&span)?;
                let value = if matches!(event, Event::SequenceStart(..)) {
                    Value::Sequence(Vec::new())
                } else {
                    Value::Mapping(Vec::new())
                };
                self.stack.push((Node::at(&span, value), None));
                Ok(None)
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some((node, _)) => self.attach(node),
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }

    fn count(&mut self, span: &Span) -> Result<(), Diagnostic> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Diagnostic {
                line: span.start.line(),
                column: span.start.col() + 1,
                path: String::new(),
                message: format!("the plan has more than {MAX_NODES} values"),
                hint: Some("split it into several plans".to_owned()),
            });
        }
        Ok(())
    }

    fn attach(&mut self, node: Node) -> Result<Option<Node>, Diagnostic> {
        let Some((parent, pending_key)) = self.stack.last_mut() else {
            if self.multi {
                self.roots.push(node);
                return Ok(None);
            }
            self.root = Some(node.clone());
            return Ok(Some(node));
        };
        match &mut parent.value {
            Value::Sequence(items) => items.push(node),
            Value::Mapping(entries) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push((key, node)),
            },
            Value::Scalar { .. } => {}
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let root = read("a: 1\nb:\n  - x\n").expect("valid yaml");
        let Value::Mapping(entries) = root.value else {
            panic!("expected a mapping")
        };
        assert_eq!((entries[0].0.line, entries[0].0.column), (1, 1));
        let Value::Sequence(items) = &entries[1].1.value else {
            panic!("expected a list")
        };
        assert_eq!((items[0].line, items[0].column), (3, 5));
    }

    #[test]
    fn a_stream_reads_every_document() {
        let docs = read_documents("a: 1\n---\nb: 2\n---\n").expect("valid yaml");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].line, 3);
    }

    #[test]
    fn aliases_are_refused() {
        let err = read("a: &x [1]\nb: *x\n").expect_err("anchors refused");
        assert!(err.message.contains("anchors"), "{}", err.message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(100) + &"]".repeat(100);
        let err = read(&text).expect_err("too deep");
        assert!(err.message.contains("nests deeper"), "{}", err.message);
    }
}
