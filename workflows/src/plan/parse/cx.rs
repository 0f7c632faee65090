//! The parser's toolkit, shared by every document Cutover reads (plans, trigger rules,
//! drill plans): the frame that limits size and collects problems, and the readers of
//! strings, names, numbers, durations and secret references that report with positions.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::plan::diagnostic::{Diagnostic, Diagnostics};
use crate::plan::types::SecretRef;
use crate::plan::yaml::{self, Node, Value};

/// Longest duration accepted anywhere in a plan.
const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// What kind of YAML document is parsed, for the size check and its message.
pub struct Document {
    /// "plan", "rules file", "drill plan".
    pub what: &'static str,
    pub max_bytes: usize,
    /// What to do about an oversized one.
    pub hint: &'static str,
}

/// The shared frame of every document Cutover reads: the size limit, YAML with positions, and
/// `read`'s problems sorted by position — all of them, or the value.
pub fn parse_document<T>(
    text: &str,
    doc: Document,
    read: impl FnOnce(&mut Cx, &Node) -> Option<T>,
) -> Result<T, Diagnostics> {
    if text.len() > doc.max_bytes {
        return Err(Diagnostics(vec![Diagnostic {
            line: 1,
            column: 1,
            path: String::new(),
            message: format!(
                "the {what} is {} bytes; {what}s are limited to {} bytes",
                text.len(),
                doc.max_bytes,
                what = doc.what,
            ),
            hint: Some(doc.hint.to_owned()),
        }]));
    }
    let root = yaml::read(text).map_err(|d| Diagnostics(vec![d]))?;
    let mut cx = Cx::default();
    let value = read(&mut cx, &root);
    if cx.problems.is_empty() {
        value.ok_or_else(Diagnostics::default)
    } else {
        cx.problems.sort_by_key(|d| (d.line, d.column));
        Err(Diagnostics(cx.problems))
    }
}

#[derive(Default)]
pub struct Cx {
    problems: Vec<Diagnostic>,
    /// A plan's Kubernetes target, once read: its deploy and rollback steps act there.
    pub(crate) kube: Option<crate::plan::kube::KubeTarget>,
    /// A plan's `vars:` names, once read: what `${vars.NAME}` may refer to.
    pub(crate) vars: std::collections::BTreeSet<String>,
}

/// The entries of one mapping, with bookkeeping of which keys were used.
pub struct Fields<'a> {
    pub node: &'a Node,
    pub path: String,
    pub entries: BTreeMap<String, (&'a Node, &'a Node)>,
}

impl Cx {
    /// The problems reported so far, in report order; the context starts afresh.
    pub(crate) fn take_problems(&mut self) -> Vec<Diagnostic> {
        std::mem::take(&mut self.problems)
    }

    pub fn report(&mut self, node: &Node, path: &str, message: impl Into<String>, hint: &str) {
        self.problems.push(Diagnostic {
            line: node.line,
            column: node.column,
            path: path.to_owned(),
            message: message.into(),
            hint: (!hint.is_empty()).then(|| hint.to_owned()),
        });
    }

    /// Opens a mapping; reports duplicates and keys that are not scalars.
    pub fn fields<'a>(&mut self, node: &'a Node, path: &str) -> Option<Fields<'a>> {
        let Value::Mapping(entries) = &node.value else {
            self.report(
                node,
                path,
                format!(
                    "expected a mapping of keys to values, found {}",
                    node.shape()
                ),
                "write `key: value` pairs, one per line",
            );
            return None;
        };
        let mut map = BTreeMap::new();
        for (key, value) in entries {
            let Value::Scalar { text, .. } = &key.value else {
                self.report(key, path, "a key must be a plain word", "");
                continue;
            };
            if map.insert(text.clone(), (key, value)).is_some() {
                self.report(
                    key,
                    &join(path, text),
                    format!("`{text}` is given twice"),
                    "keep one of them",
                );
            }
        }
        Some(Fields {
            node,
            path: path.to_owned(),
            entries: map,
        })
    }

    /// Reports every key not in `known`, suggesting the closest known one.
    pub fn unknown_keys(&mut self, fields: &Fields<'_>, known: &[&str]) {
        for (name, (key, _)) in &fields.entries {
            if known.contains(&name.as_str()) {
                continue;
            }
            let hint = match closest(name, known) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("known keys here: {}", known.join(", ")),
            };
            self.report(
                key,
                &join(&fields.path, name),
                format!("unknown key `{name}`"),
                &hint,
            );
        }
    }

    pub fn required<'a>(&mut self, fields: &Fields<'a>, key: &str, hint: &str) -> Option<&'a Node> {
        let found = fields.get(key);
        if found.is_none() {
            self.report(
                fields.node,
                &fields.path,
                format!("missing required key `{key}`"),
                hint,
            );
        }
        found
    }

    pub fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Scalar { text, .. } if !node.is_null() => Some(text.clone()),
            _ => {
                self.report(
                    node,
                    path,
                    format!("expected a string, found {}", node.shape()),
                    "",
                );
                None
            }
        }
    }

    /// A name that ends up in workflow IDs, paths or logs ([`crate::name::Name`]'s rules).
    pub fn name(&mut self, node: &Node, path: &str, what: &str) -> Option<String> {
        let text = self.string(node, path)?;
        match crate::name::Name::parse(&text) {
            Ok(name) => Some(name.into()),
            Err(_) => {
                self.report(
                    node,
                    path,
                    format!("`{}` is not a valid {what}", truncate(&text)),
                    crate::name::NAME_RULES,
                );
                None
            }
        }
    }

    pub fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let text = self.string(node, path)?;
        let hint = "write a duration such as `90s`, `5m` or `1h 30m`";
        if text.trim_start().starts_with('-') {
            self.report(node, path, format!("`{text}` is negative"), hint);
            return None;
        }
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d.is_zero() => {
                self.report(node, path, "a duration of zero is not allowed", hint);
                None
            }
            Ok(d) if d > MAX_DURATION => {
                self.report(
                    node,
                    path,
                    format!("`{text}` is longer than the 30 days allowed"),
                    hint,
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.report(
                    node,
                    path,
                    format!("`{}` is not a duration ({e})", truncate(&text)),
                    hint,
                );
                None
            }
        }
    }

    pub fn integer(&mut self, node: &Node, path: &str, min: u64, max: u64) -> Option<u64> {
        let text = self.string(node, path)?;
        match text.trim().parse::<i128>() {
            Ok(n) if n >= i128::from(min) && n <= i128::from(max) => u64::try_from(n).ok(),
            Ok(n) => {
                self.report(
                    node,
                    path,
                    format!("{n} is out of range"),
                    &format!("use a whole number from {min} to {max}"),
                );
                None
            }
            Err(_) => {
                self.report(
                    node,
                    path,
                    format!("`{}` is not a whole number", truncate(&text)),
                    &format!("use a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    pub fn string_list(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                path,
                format!("expected a list, found {}", node.shape()),
                "write `[a, b]` or one `- item` per line",
            );
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            out.push(self.string(item, &format!("{path}[{i}]"))?);
        }
        Some(out)
    }

    /// `{ env: VAR }` or `{ file: /path }`.
    pub fn secret_ref(&mut self, node: &Node, path: &str) -> Option<SecretRef> {
        let hint = "write `{ env: VAR }` or `{ file: /path/to/secret }`";
        let reference = self.fields(node, path)?;
        self.unknown_keys(&reference, &["env", "file"]);
        match (reference.get("env"), reference.get("file")) {
            (Some(n), None) => self.string(n, &join(path, "env")).map(SecretRef::Env),
            (None, Some(n)) => self.string(n, &join(path, "file")).map(SecretRef::File),
            _ => {
                self.report(
                    node,
                    path,
                    "a secret reference needs exactly one of `env` or `file`",
                    hint,
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match self.string(node, path)?.as_str() {
            "true" | "True" | "TRUE" | "yes" => Some(true),
            "false" | "False" | "FALSE" | "no" => Some(false),
            other => {
                self.report(
                    node,
                    path,
                    format!("`{}` is not true or false", truncate(other)),
                    "write `true` or `false`",
                );
                None
            }
        }
    }

    /// A filesystem path that must not be empty.
    pub fn path_value(
        &mut self,
        fields: &Fields<'_>,
        key: &str,
        path: &str,
        hint: &str,
    ) -> Option<String> {
        let node = self.required(fields, key, hint)?;
        let text = self.string(node, &join(path, key))?;
        if text.trim().is_empty() {
            self.report(node, &join(path, key), "the path is empty", hint);
            return None;
        }
        Some(text)
    }

    /// A duration where zero is allowed (e.g. no rollback window).
    pub fn duration_or_zero(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let text = self.string(node, path)?;
        if matches!(text.trim(), "0" | "0s" | "0ms") {
            return Some(Duration::ZERO);
        }
        self.duration(node, path)
    }
}

impl<'a> Fields<'a> {
    /// The value of `key`; an explicit `null` counts as absent, so defaults apply.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .get(key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_null())
    }
}

/// Converts a YAML value into JSON, resolving plain scalars the YAML 1.2 core way.
pub fn to_json(node: &Node) -> serde_json::Value {
    match &node.value {
        Value::Scalar { text, plain: false } => serde_json::Value::String(text.clone()),
        Value::Scalar { text, .. } if node.is_null() => {
            let _ = text;
            serde_json::Value::Null
        }
        Value::Scalar { text, .. } => match text.as_str() {
            "true" | "True" | "TRUE" => serde_json::Value::Bool(true),
            "false" | "False" | "FALSE" => serde_json::Value::Bool(false),
            t => t
                .parse::<i64>()
                .map(serde_json::Value::from)
                .or_else(|_| t.parse::<f64>().map(serde_json::Value::from))
                .unwrap_or_else(|_| serde_json::Value::String(t.to_owned())),
        },
        Value::Sequence(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Mapping(entries) => serde_json::Value::Object(
            entries
                .iter()
                .filter_map(|(k, v)| match &k.value {
                    Value::Scalar { text, .. } => Some((text.clone(), to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
    }
}

pub(crate) fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Keeps echoed user input short in messages.
pub fn truncate(text: &str) -> String {
    const MAX: usize = 60;
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if clean.chars().count() > MAX {
        format!("{}…", clean.chars().take(MAX).collect::<String>())
    } else {
        clean
    }
}

/// The known word closest to `word`, if it is close enough to be a likely typo (within two
/// edits, or a quarter of the word for long ones).
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}
