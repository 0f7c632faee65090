//! Parsing `verify` steps: HTTP checks of the running service, and the URL and JSON rules
//! analyses share.

use std::time::Duration;

use super::{Cx, Fields, METHODS, join, to_json, truncate};
use crate::plan::types::{JsonExpectation, VerifySpec};
use crate::plan::yaml::Node;

impl Cx {
    pub(super) fn verify(&mut self, fields: &Fields<'_>, path: &str) -> Option<VerifySpec> {
        let url = self
            .required(
                fields,
                "url",
                "give the URL to check, e.g. `url: http://127.0.0.1:8080/health`",
            )
            .and_then(|n| self.http_url(n, &join(path, "url")));
        let method = match fields.get("method") {
            Some(n) => self.string(n, &join(path, "method")).and_then(|m| {
                let upper = m.to_ascii_uppercase();
                if METHODS.contains(&upper.as_str()) {
                    Some(upper)
                } else {
                    self.report(
                        n,
                        &join(path, "method"),
                        format!("unknown HTTP method `{}`", truncate(&m)),
                        &format!("use one of: {}", METHODS.join(", ")),
                    );
                    None
                }
            }),
            None => Some("GET".to_owned()),
        };
        let expect_status = match fields.get("expect_status") {
            Some(n) => self
                .integer(n, &join(path, "expect_status"), 100, 599)
                .map(|s| s as u16),
            None => Some(200),
        };
        let body_contains = match fields.get("body_contains") {
            Some(n) => self.string(n, &join(path, "body_contains")).map(Some),
            None => Some(None),
        };
        let json = match fields.get("json") {
            Some(n) => self.json_expectation(n, &join(path, "json")).map(Some),
            None => Some(None),
        };
        let request_timeout = match fields.get("request_timeout") {
            Some(n) => self.duration(n, &join(path, "request_timeout")),
            None => Some(Duration::from_secs(5)),
        };
        let consecutive = match fields.get("consecutive") {
            Some(n) => self
                .integer(n, &join(path, "consecutive"), 1, 10_000)
                .map(|c| c as u32),
            None => Some(1),
        };
        let within = match fields.get("within") {
            Some(n) => self.duration(n, &join(path, "within")),
            None => Some(Duration::from_secs(60)),
        };
        let interval = match fields.get("interval") {
            Some(n) => self.duration(n, &join(path, "interval")),
            None => Some(Duration::from_secs(1)),
        };
        Some(VerifySpec {
            url: url?,
            method: method?,
            expect_status: expect_status?,
            body_contains: body_contains?,
            json: json?,
            request_timeout: request_timeout?,
            consecutive: consecutive?,
            within: within?,
            interval: interval?,
        })
    }

    /// An http(s) URL without credentials (it is stored in workflow history and logs).
    pub(super) fn http_url(&mut self, n: &Node, path: &str) -> Option<String> {
        let url = self.string(n, path)?;
        let lower = url.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("http://")
            .or_else(|| lower.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/'))
            || url.len() > 2048
            || url.chars().any(char::is_whitespace)
        {
            self.report(
                n,
                path,
                format!("`{}` is not an http(s) URL", truncate(&url)),
                "write a URL such as `http://127.0.0.1:8080/health`",
            );
            return None;
        }
        let authority = rest
            .unwrap_or_default()
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        if authority.contains('@') {
            self.report(
                n,
                path,
                "the URL carries credentials, which would be stored in workflow history and logs",
                "remove `user:password@`; checks should use an endpoint that needs no secret",
            );
            return None;
        }
        Some(url)
    }

    pub(super) fn json_expectation(&mut self, node: &Node, path: &str) -> Option<JsonExpectation> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(&fields, &["pointer", "equals"]);
        let pointer = self
            .required(
                &fields,
                "pointer",
                "give a JSON pointer, e.g. `pointer: /version`",
            )
            .and_then(|n| {
                let p = self.string(n, &join(path, "pointer"))?;
                if !p.is_empty() && !p.starts_with('/') {
                    self.report(
                        n,
                        &join(path, "pointer"),
                        format!("`{}` is not a JSON pointer", truncate(&p)),
                        "JSON pointers start with `/`, e.g. `/status/ready`",
                    );
                    return None;
                }
                Some(p)
            });
        let equals = self
            .required(&fields, "equals", "give the value expected at the pointer")
            .map(to_json);
        Some(JsonExpectation {
            pointer: pointer?,
            equals: equals?,
        })
    }
}
