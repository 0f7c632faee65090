//! `${...}` in a step's strings: the plan's own values, its `vars:` (overridable with
//! `rollout start --var NAME=VALUE`), and what earlier steps recorded as their output.
//!
//! - `${service}`, `${environment}`, `${version}`;
//! - `${vars.NAME}`;
//! - `${steps.NAME.output.PATH}` (or `${steps.NAME.PATH}`), PATH walking the step's output as
//!   `status` shows it, e.g. `${steps.build.artifact.sha256}`;
//! - `$${` is a literal `${`.
//!
//! The parser checks every reference with its position (an unknown variable, a step that does
//! not exist or does not come earlier); the workflow resolves them when the step starts, from
//! the recorded plan and outputs only — deterministic, so replay gives the same strings.
//! Secret references (`{ env: ... }`, `{ file: ... }`) are never resolved here: their values
//! stay on the worker and out of history.

use std::collections::BTreeMap;

use serde_json::Value;

/// One reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ref {
    /// `${service}`.
    Service,
    /// `${environment}`.
    Environment,
    /// `${version}`.
    Version,
    /// `${vars.NAME}`.
    Var(String),
    /// `${steps.NAME.PATH}`.
    Step {
        /// The step.
        step: String,
        /// The path in its output.
        path: Vec<String>,
    },
}

/// Longest value of a variable.
pub const MAX_VALUE: usize = 4096;

/// Checks a variable's name: a letter or `_`, then letters, digits, `_`; at most 64.
///
/// # Errors
/// What is wrong.
pub fn check_var_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || name.len() > 64 || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "`{name}` is not a variable name: a letter or `_`, then letters, digits or `_`, at most 64"
        ));
    }
    Ok(())
}

fn parse_ref(inner: &str) -> Result<Ref, String> {
    let parts: Vec<&str> = inner.trim().split('.').collect();
    match parts.as_slice() {
        ["service"] => Ok(Ref::Service),
        ["environment"] => Ok(Ref::Environment),
        ["version"] => Ok(Ref::Version),
        ["vars", name] => {
            check_var_name(name)?;
            Ok(Ref::Var((*name).to_owned()))
        }
        ["steps", step, rest @ ..] if !rest.is_empty() => {
            let rest = match rest {
                ["output", more @ ..] if !more.is_empty() => more,
                other => other,
            };
            if rest.iter().any(|p| p.is_empty()) {
                return Err(format!("`${{{inner}}}` has an empty path segment"));
            }
            Ok(Ref::Step {
                step: (*step).to_owned(),
                path: rest.iter().map(|p| (*p).to_owned()).collect(),
            })
        }
        _ => Err(format!(
            "`${{{inner}}}` is not a reference Cutover knows: use ${{service}}, ${{environment}}, ${{version}}, ${{vars.NAME}} or ${{steps.NAME.output.PATH}} (write `$${{` for a literal `${{`)"
        )),
    }
}

/// Splits `text` into literal pieces and references.
fn pieces(text: &str) -> Result<Vec<Result<String, Ref>>, String> {
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            // `$${` is a literal `${`.
            literal.push_str(&rest[..at - 1]);
            literal.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        literal.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after.find('}').ok_or_else(|| {
            "`${` without a closing `}` (write `$${` for a literal `${`)".to_owned()
        })?;
        out.push(Ok(std::mem::take(&mut literal)));
        out.push(Err(parse_ref(&after[..end])?));
        rest = &after[end + 1..];
    }
    literal.push_str(rest);
    out.push(Ok(literal));
    Ok(out)
}

/// The references in `text`.
///
/// # Errors
/// A malformed or unknown reference.
pub fn references(text: &str) -> Result<Vec<Ref>, String> {
    Ok(pieces(text)?.into_iter().filter_map(Result::err).collect())
}

/// `text` with each reference replaced by what `lookup` gives.
///
/// # Errors
/// A malformed reference, or `lookup`'s error.
pub fn interpolate(
    text: &str,
    lookup: &dyn Fn(&Ref) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::new();
    for piece in pieces(text)? {
        match piece {
            Ok(literal) => out.push_str(&literal),
            Err(r) => out.push_str(&lookup(&r)?),
        }
    }
    Ok(out)
}

/// Whether any string in `value` holds `${`.
pub fn mentions(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("${"),
        Value::Array(items) => items.iter().any(mentions),
        Value::Object(map) => map.values().any(mentions),
        _ => false,
    }
}

/// Interpolates every string in `value`.
///
/// # Errors
/// The first reference that cannot be resolved.
pub fn interpolate_all(
    value: &mut Value,
    lookup: &dyn Fn(&Ref) -> Result<String, String>,
) -> Result<(), String> {
    match value {
        Value::String(s) if s.contains("${") => *s = interpolate(s, lookup)?,
        Value::Array(items) => {
            for item in items {
                interpolate_all(item, lookup)?;
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                interpolate_all(item, lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The value at `path` in a step's recorded output, as text.
///
/// # Errors
/// No such path, or not a scalar there.
pub fn output_at(step: &str, output: Option<&Value>, path: &[String]) -> Result<String, String> {
    let shown = path.join(".");
    let mut at = output.ok_or_else(|| format!("step `{step}` recorded no output"))?;
    for segment in path {
        at = match at {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        }
        .ok_or_else(|| format!("step `{step}`'s output has no `{shown}`"))?;
    }
    match at {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!(
            "step `{step}`'s output `{shown}` is not a single value"
        )),
    }
}

/// Applies `--var NAME=VALUE` overrides to a plan's `vars:`.
///
/// # Errors
/// A malformed override, or a name the plan does not declare.
pub fn apply_overrides(
    vars: &mut BTreeMap<String, String>,
    overrides: &[String],
) -> Result<(), String> {
    for o in overrides {
        let (name, value) = o
            .split_once('=')
            .ok_or_else(|| format!("--var `{o}`: write NAME=VALUE"))?;
        check_var_name(name).map_err(|e| format!("--var: {e}"))?;
        if !vars.contains_key(name) {
            let known: Vec<&str> = vars.keys().map(String::as_str).collect();
            return Err(format!(
                "--var {name}: the plan declares no such variable ({}); add it under `vars:`",
                if known.is_empty() {
                    "it declares none".to_owned()
                } else {
                    format!("it has {}", known.join(", "))
                }
            ));
        }
        if value.len() > MAX_VALUE || value.chars().any(char::is_control) {
            return Err(format!(
                "--var {name}: the value must be at most {MAX_VALUE} bytes of printable text"
            ));
        }
        vars.insert(name.to_owned(), value.to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_interpolate() {
        let text = "img:${version}@sha256:${steps.build.output.artifact.sha256} $${HOME} $$ ${vars.region}";
        assert_eq!(
            references(text).expect("valid"),
            [
                Ref::Version,
                Ref::Step {
                    step: "build".into(),
                    path: vec!["artifact".into(), "sha256".into()]
                },
                Ref::Var("region".into())
            ]
        );
        let out = interpolate(text, &|r| {
            Ok(match r {
                Ref::Version => "2".into(),
                Ref::Var(_) => "eu".into(),
                _ => "abc".into(),
            })
        })
        .expect("resolves");
        assert_eq!(out, "img:2@sha256:abc ${HOME} $$ eu");
        for bad in [
            "${HOME}",
            "${vars.}",
            "${steps.x}",
            "${steps.x..y}",
            "${version",
            "${vars.1x}",
        ] {
            assert!(references(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn outputs_are_walked_to_a_single_value() {
        let out = serde_json::json!({"kind": "build", "artifact": {"sha256": "ff", "size": 3}, "lines": ["a", "b"]});
        assert_eq!(
            output_at("b", Some(&out), &["artifact".into(), "sha256".into()]),
            Ok("ff".into())
        );
        assert_eq!(
            output_at("b", Some(&out), &["artifact".into(), "size".into()]),
            Ok("3".into())
        );
        assert_eq!(
            output_at("b", Some(&out), &["lines".into(), "1".into()]),
            Ok("b".into())
        );
        assert!(output_at("b", Some(&out), &["artifact".into()]).is_err());
        assert!(output_at("b", Some(&out), &["nope".into()]).is_err());
        assert!(output_at("b", None, &["x".into()]).is_err());
    }

    #[test]
    fn overrides_need_declared_names() {
        let mut vars = BTreeMap::from([("region".to_owned(), "eu".to_owned())]);
        apply_overrides(&mut vars, &["region=us".into()]).expect("declared");
        assert_eq!(vars["region"], "us");
        for (bad, why) in [
            ("zone=a", "declares no such variable"),
            ("region", "NAME=VALUE"),
            ("1x=a", "not a variable name"),
            ("region=a\u{7}", "printable"),
        ] {
            let err = apply_overrides(&mut vars, &[bad.into()]).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
