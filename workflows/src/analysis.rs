//! Analysis: what one measurement found, and the small condition language that judges it.
//!
//! A metric's `success_condition` is one or more comparisons joined by `&&`, each comparing a
//! measured value with a number: `result[0] < 0.01`, `success_rate >= 0.99 && p95_ms < 250`.
//! The language is deliberately tiny — no arithmetic, no functions — so that a plan's
//! condition can be checked when the plan is validated, and read by anyone at a glance.
//!
//! A condition that cannot be evaluated (a query returned no samples, an index past the end,
//! a `NaN`) is *inconclusive*, not failed: the rollout then waits for a person rather than
//! deciding on data it does not have.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest condition accepted, in bytes.
pub const MAX_CONDITION: usize = 512;

/// How one measurement (or one metric of it) came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The condition held.
    Successful,
    /// The condition did not hold.
    Failed,
    /// The value could not be measured or judged.
    Inconclusive,
}

impl Verdict {
    /// Lowercase name for humans.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Successful => "successful",
            Verdict::Failed => "failed",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// The verdict of a measurement from its metrics': any failure fails it; otherwise any
    /// inconclusive metric makes it inconclusive.
    pub fn combine(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let mut out = Verdict::Successful;
        for v in verdicts {
            match v {
                Verdict::Failed => return Verdict::Failed,
                Verdict::Inconclusive => out = Verdict::Inconclusive,
                Verdict::Successful => {}
            }
        }
        out
    }
}

/// One metric's value in one measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    /// The metric's name from the plan.
    pub name: String,
    /// What the condition said.
    pub verdict: Verdict,
    /// The values measured, e.g. `result[0]=0.42` or `success_rate=1 p95_ms=3.1`.
    pub value: String,
    /// Why: the condition and, when inconclusive, what was missing.
    pub detail: String,
}

/// One measurement of every metric of an analysis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// 1-based, counted over the analysis.
    pub number: u32,
    /// When the workflow recorded it.
    pub at: Option<DateTime<Utc>>,
    /// The combined verdict.
    pub verdict: Verdict,
    /// Each metric's result.
    pub metrics: Vec<MetricResult>,
}

impl Measurement {
    /// The first metric that decided the verdict, in words, for reasons and errors.
    pub fn explain(&self) -> String {
        let decisive = self
            .metrics
            .iter()
            .find(|m| m.verdict == self.verdict)
            .or(self.metrics.first());
        match decisive {
            Some(m) => format!(
                "measurement {} {}: metric `{}` {} ({})",
                self.number,
                self.verdict.as_str(),
                m.name,
                m.value,
                m.detail
            ),
            None => format!("measurement {} {}", self.number, self.verdict.as_str()),
        }
    }
}

/// Values a condition may refer to: `result[i]` and named values such as `p95_ms`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Values {
    /// `result[0]`, `result[1]`, … (`result` alone means `result[0]`).
    pub results: Vec<f64>,
    /// Named values.
    pub named: BTreeMap<String, f64>,
}

impl fmt::Display for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if first { "" } else { " " };
            first = false;
            f.write_str(s)
        };
        for (i, v) in self.results.iter().enumerate() {
            sep(f)?;
            write!(f, "result[{i}]={}", short(*v))?;
        }
        for (k, v) in &self.named {
            sep(f)?;
            write!(f, "{k}={}", short(*v))?;
        }
        if first {
            f.write_str("no value")?;
        }
        Ok(())
    }
}

fn short(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

/// A parsed `success_condition`.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    clauses: Vec<Clause>,
}

#[derive(Clone, Debug, PartialEq)]
struct Clause {
    operand: Operand,
    op: Op,
    value: f64,
}

#[derive(Clone, Debug, PartialEq)]
enum Operand {
    Result(usize),
    Named(String),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// Why a success condition cannot be read. Each says what was wrong and where.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConditionError {
    /// Longer than the limit.
    #[error("the condition is {0} bytes, over the limit of {MAX_CONDITION}")]
    TooLong(usize),
    /// A clause without an operator.
    #[error("`{0}` compares nothing: write e.g. `result[0] < 0.01` (operators: < <= > >= == !=)")]
    NoComparison(String),
    /// `result[x]` with a bad index.
    #[error("`{0}`: the index must be a number from 0 to 999")]
    BadIndex(String),
    /// A value name the source does not measure.
    #[error("unknown value `{name}` in `{clause}`: use one of {known}")]
    UnknownValue {
        /// The name used.
        name: String,
        /// The clause it is in.
        clause: String,
        /// What may be used, comma-separated.
        known: String,
    },
    /// The right-hand side is not a finite number.
    #[error("`{value}` in `{clause}` is not a number")]
    NotANumber {
        /// The text given.
        value: String,
        /// The clause it is in.
        clause: String,
    },
}

/// Why a measurement cannot be judged by a condition: the metric is inconclusive.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Inconclusive {
    /// The query returned nothing.
    #[error("the query returned no value")]
    NoValue,
    /// `result[i]` past the end of what the query returned.
    #[error("result[{index}] does not exist: the query returned {len} value{}", if *len == 1 { "" } else { "s" })]
    MissingResult {
        /// The index asked for.
        index: usize,
        /// How many values there were.
        len: usize,
    },
    /// A named value (`success_rate`, `p95_ms`, ...) was not measured.
    #[error("`{0}` was not measured")]
    NotMeasured(String),
    /// The value is NaN.
    #[error("the value is NaN (no data in the window?)")]
    NaN,
}

impl Condition {
    /// Parses `text`, accepting the named values in `names` besides `result[i]`.
    ///
    /// # Errors
    /// [`ConditionError`] saying what was wrong and where.
    pub fn parse(text: &str, names: &[&str]) -> Result<Condition, ConditionError> {
        if text.len() > MAX_CONDITION {
            return Err(ConditionError::TooLong(text.len()));
        }
        let mut clauses = Vec::new();
        for part in text.split("&&") {
            clauses.push(clause(part.trim(), names)?);
        }
        Ok(Condition { clauses })
    }

    /// Judges `values`: `Ok(true)` when every comparison holds.
    ///
    /// # Errors
    /// [`Inconclusive`] when a value is missing or not a number.
    pub fn holds(&self, values: &Values) -> Result<bool, Inconclusive> {
        let mut all = true;
        for c in &self.clauses {
            let v = match &c.operand {
                Operand::Result(i) => values.results.get(*i).copied().ok_or({
                    if values.results.is_empty() {
                        Inconclusive::NoValue
                    } else {
                        Inconclusive::MissingResult {
                            index: *i,
                            len: values.results.len(),
                        }
                    }
                })?,
                Operand::Named(n) => values
                    .named
                    .get(n)
                    .copied()
                    .ok_or_else(|| Inconclusive::NotMeasured(n.clone()))?,
            };
            if v.is_nan() {
                return Err(Inconclusive::NaN);
            }
            let ok = match c.op {
                Op::Lt => v < c.value,
                Op::Le => v <= c.value,
                Op::Gt => v > c.value,
                Op::Ge => v >= c.value,
                Op::Eq => v == c.value,
                Op::Ne => v != c.value,
            };
            all &= ok;
        }
        Ok(all)
    }
}

fn clause(text: &str, names: &[&str]) -> Result<Clause, ConditionError> {
    let ops = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let found = ops
        .iter()
        .filter_map(|(s, op)| text.find(s).map(|at| (at, *s, *op)))
        .min_by_key(|(at, s, _)| (*at, std::cmp::Reverse(s.len())));
    let Some((at, symbol, op)) = found else {
        return Err(ConditionError::NoComparison(text.to_owned()));
    };
    let left = text[..at].trim();
    let right = text[at + symbol.len()..].trim();
    let operand = if left == "result" {
        Operand::Result(0)
    } else if let Some(index) = left
        .strip_prefix("result[")
        .and_then(|r| r.strip_suffix(']'))
    {
        let i: usize = index
            .trim()
            .parse()
            .ok()
            .filter(|i| *i < 1000)
            .ok_or_else(|| ConditionError::BadIndex(left.to_owned()))?;
        Operand::Result(i)
    } else if names.contains(&left) {
        Operand::Named(left.to_owned())
    } else {
        let mut known = vec!["result", "result[N]"];
        known.extend_from_slice(names);
        return Err(ConditionError::UnknownValue {
            name: left.to_owned(),
            clause: text.to_owned(),
            known: known.join(", "),
        });
    };
    let value: f64 = right
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| ConditionError::NotANumber {
            value: right.to_owned(),
            clause: text.to_owned(),
        })?;
    Ok(Clause { operand, op, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(results: &[f64], named: &[(&str, f64)]) -> Values {
        Values {
            results: results.to_vec(),
            named: named.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        }
    }

    #[test]
    fn comparisons_hold_or_not() {
        let c = Condition::parse("result[0] < 0.01", &[]).expect("parses");
        assert_eq!(c.holds(&values(&[0.0], &[])), Ok(true));
        assert_eq!(c.holds(&values(&[0.5], &[])), Ok(false));
        let c = Condition::parse(
            "success_rate >= 0.99 && p95_ms <= 250",
            &["success_rate", "p95_ms"],
        )
        .expect("parses");
        assert_eq!(
            c.holds(&values(&[], &[("success_rate", 1.0), ("p95_ms", 250.0)])),
            Ok(true)
        );
        assert_eq!(
            c.holds(&values(&[], &[("success_rate", 0.5), ("p95_ms", 3.0)])),
            Ok(false)
        );
        let c = Condition::parse("result != 3", &[]).expect("parses");
        assert_eq!(c.holds(&values(&[4.0], &[])), Ok(true));
    }

    #[test]
    fn missing_values_are_inconclusive() {
        let c = Condition::parse("result[1] > 0", &[]).expect("parses");
        let err = c
            .holds(&values(&[1.0], &[]))
            .expect_err("index past the end");
        assert!(
            err.to_string().contains("result[1] does not exist"),
            "{err}"
        );
        let err = c.holds(&values(&[], &[])).expect_err("empty");
        assert_eq!(err, Inconclusive::NoValue);
        let c = Condition::parse("result < 1", &[]).expect("parses");
        assert!(c.holds(&values(&[f64::NAN], &[])).is_err());
    }

    #[test]
    fn bad_conditions_say_what_is_wrong() {
        for (text, expect) in [
            ("result[0]", "compares nothing"),
            ("latency < 3", "unknown value `latency`"),
            ("result[x] < 3", "index must be a number"),
            ("result < abc", "`abc` in `result < abc` is not a number"),
            ("result < inf", "is not a number"),
            ("", "compares nothing"),
        ] {
            let err = Condition::parse(text, &["p95_ms"]).expect_err(text);
            assert!(err.to_string().contains(expect), "{text}: {err}");
        }
        let long = "result < 1 && ".repeat(100);
        assert!(
            Condition::parse(&long, &[])
                .expect_err("long")
                .to_string()
                .contains("limit")
        );
    }

    #[test]
    fn a_measurement_explains_its_decisive_metric() {
        let m = Measurement {
            number: 2,
            at: None,
            verdict: Verdict::Failed,
            metrics: vec![
                MetricResult {
                    name: "probe".into(),
                    verdict: Verdict::Successful,
                    value: "success_rate=1".into(),
                    detail: "success_rate >= 0.9".into(),
                },
                MetricResult {
                    name: "errors".into(),
                    verdict: Verdict::Failed,
                    value: "result[0]=0.5".into(),
                    detail: "`result[0] < 0.01` is false".into(),
                },
            ],
        };
        assert_eq!(
            m.explain(),
            "measurement 2 failed: metric `errors` result[0]=0.5 (`result[0] < 0.01` is false)"
        );
        assert_eq!(
            Verdict::combine([Verdict::Successful, Verdict::Inconclusive]),
            Verdict::Inconclusive
        );
        assert_eq!(
            values(&[0.25, 3.0], &[("p95_ms", 1.5)]).to_string(),
            "result[0]=0.25 result[1]=3 p95_ms=1.5"
        );
    }
}
