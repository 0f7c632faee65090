//! Parsing the steps that run a process: `command` and `build`, and the environment a
//! process gets (plain values and secret references).

use std::collections::BTreeMap;

use super::{Cx, Fields, join, truncate, valid_env_name};
use crate::plan::types::{BuildSpec, CommandSpec, SecretRef};
use crate::plan::yaml::Node;

impl Cx {
    pub(super) fn command(&mut self, fields: &Fields<'_>, path: &str) -> Option<CommandSpec> {
        let command = self
            .required(
                fields,
                "command",
                "name the program to run, e.g. `command: make`",
            )
            .and_then(|n| self.string(n, &join(path, "command")));
        if let (Some(c), Some(n)) = (&command, fields.get("command"))
            && c.trim().is_empty()
        {
            self.report(
                n,
                &join(path, "command"),
                "the command is empty",
                "name the program to run",
            );
            return None;
        }
        let args = match fields.get("args") {
            Some(n) => self.string_list(n, &join(path, "args")),
            None => Some(Vec::new()),
        };
        let env = match fields.get("env") {
            Some(n) => self.env(n, &join(path, "env")),
            None => Some(BTreeMap::new()),
        };
        let secret_env = match fields.get("secret_env") {
            Some(n) => self.secret_env(n, &join(path, "secret_env")),
            None => Some(BTreeMap::new()),
        };
        let workdir = match fields.get("workdir") {
            Some(n) => self.string(n, &join(path, "workdir")).map(Some),
            None => Some(None),
        };
        Some(CommandSpec {
            command: command?,
            args: args?,
            env: env?,
            secret_env: secret_env?,
            workdir: workdir?,
        })
    }

    pub(super) fn build(&mut self, fields: &Fields<'_>, path: &str) -> Option<BuildSpec> {
        let command = self.command(fields, path);
        let artifact = match fields.get("artifact") {
            Some(n) => self.string(n, &join(path, "artifact")).map(Some),
            None => Some(None),
        };
        Some(BuildSpec {
            command: command?,
            artifact: artifact?,
        })
    }

    pub(super) fn env(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        self.env_map(node, path, Self::string)
    }

    pub(super) fn secret_env(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<BTreeMap<String, SecretRef>> {
        self.env_map(node, path, Self::secret_ref)
    }

    /// A mapping of environment variable names to values read by `value`; every bad name and
    /// every bad value is reported.
    fn env_map<T>(
        &mut self,
        node: &Node,
        path: &str,
        value: fn(&mut Self, &Node, &str) -> Option<T>,
    ) -> Option<BTreeMap<String, T>> {
        let fields = self.fields(node, path)?;
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (name, (key, node)) in &fields.entries {
            let p = join(path, name);
            if !valid_env_name(name) {
                self.report(
                    key,
                    &p,
                    format!("`{}` is not a valid variable name", truncate(name)),
                    "use letters, digits and `_`, not starting with a digit",
                );
                ok = false;
            }
            match value(self, node, &p) {
                Some(v) => {
                    out.insert(name.clone(), v);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

impl Cx {
    /// `undo: {command, args, env, secret_env, workdir, timeout, attempts}`.
    pub(super) fn undo(&mut self, node: &super::Node, path: &str) -> Option<crate::plan::UndoSpec> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(
            &fields,
            &[
                "command",
                "args",
                "env",
                "secret_env",
                "workdir",
                "timeout",
                "attempts",
            ],
        );
        let command = self.command(&fields, path);
        let timeout = match fields.get("timeout") {
            Some(n) => self.duration(n, &join(path, "timeout")),
            None => Some(std::time::Duration::from_secs(600)),
        };
        let attempts = match fields.get("attempts") {
            Some(n) => self
                .integer(n, &join(path, "attempts"), 1, 100)
                .map(|v| v as u32),
            None => Some(3),
        };
        Some(crate::plan::UndoSpec {
            command: command?,
            timeout: timeout?,
            attempts: attempts?,
        })
    }
}

impl Cx {
    /// `vars: {NAME: value}`.
    pub(super) fn vars(
        &mut self,
        node: &super::Node,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        let fields = self.fields(node, "vars")?;
        let mut out = std::collections::BTreeMap::new();
        let mut ok = true;
        for (name, (key, value)) in &fields.entries {
            let path = join("vars", name);
            if let Err(why) = crate::plan::vars::check_var_name(name) {
                self.report(key, &path, why, "rename it, e.g. `image_tag`");
                ok = false;
                continue;
            }
            match self.string(value, &path) {
                Some(v) if v.len() <= crate::plan::vars::MAX_VALUE => {
                    out.insert(name.clone(), v);
                }
                Some(_) => {
                    self.report(
                        value,
                        &path,
                        "the value is too long",
                        "keep values under 4 KiB",
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Checks every `${...}` in a step's strings: known names, declared variables, steps that
    /// come earlier (`before`).
    pub(super) fn references(
        &mut self,
        node: &super::Node,
        path: &str,
        before: &std::collections::BTreeSet<String>,
    ) -> bool {
        use super::Value;
        use crate::plan::vars::{Ref, references};
        match &node.value {
            Value::Scalar { text, .. } if text.contains("${") => match references(text) {
                Ok(refs) => {
                    let mut ok = true;
                    for r in refs {
                        let problem = match &r {
                            Ref::Var(name) if !self.vars.contains(name) => Some((
                                format!(
                                    "`${{vars.{name}}}`: the plan declares no variable `{name}`"
                                ),
                                "declare it under `vars:` (a default; `rollout start --var` overrides it)",
                            )),
                            Ref::Step { step, .. } if !before.contains(step) => Some((
                                format!(
                                    "`${{steps.{step}...}}`: no earlier step is named `{step}`"
                                ),
                                "refer to a step that runs before this one",
                            )),
                            _ => None,
                        };
                        if let Some((message, hint)) = problem {
                            self.report(node, path, message, hint);
                            ok = false;
                        }
                    }
                    ok
                }
                Err(why) => {
                    self.report(
                        node,
                        path,
                        why,
                        "see `${...}` in the README's Plans section",
                    );
                    false
                }
            },
            Value::Scalar { .. } => true,
            Value::Sequence(items) => items.iter().enumerate().fold(true, |ok, (i, n)| {
                self.references(n, &format!("{path}[{i}]"), before) && ok
            }),
            Value::Mapping(entries) => entries.iter().fold(true, |ok, (k, v)| {
                let key = match &k.value {
                    Value::Scalar { text, .. } => text.clone(),
                    _ => String::new(),
                };
                self.references(v, &join(path, &key), before) && ok
            }),
        }
    }
}
