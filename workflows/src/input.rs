//! A workflow's input as any client sent it. `cutover` validates plans before starting them,
//! but the Temporal CLI, another SDK or a hand-written request can start `RolloutWorkflow`
//! with anything. Had the workflow taken `Plan` directly, an input that does not deserialize
//! would fail its first workflow task forever ("Failed to create workflow execution") and the
//! workflow would hang. Taking this instead, the workflow always starts, and fails at once,
//! non-retryably, saying which field is wrong.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The typed input, or the JSON that was not one. Serialises as the inner value, so histories
/// recorded when the workflow took `T` replay unchanged.
///
/// Deserialised through a `serde_json::Value`, as the workflow's input always was: a key
/// repeated in an object keeps its last value instead of failing. Plans recorded before an
/// approval's timeout got its own wire name carry `timeout` twice in an approval step; they
/// must still deserialise (as they ran: without an approval timeout) for their histories to
/// replay.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Input<T> {
    /// A well-formed value.
    Valid(T),
    /// Anything else that is JSON.
    Invalid(serde_json::Value),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Input<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = serde_json::Value::deserialize(deserializer)?;
        Ok(match T::deserialize(&json) {
            Ok(value) => Input::Valid(value),
            Err(_) => Input::Invalid(json),
        })
    }
}

impl<T: DeserializeOwned> Input<T> {
    /// The value, or why the JSON is not one, with the path of the field at fault
    /// (`steps[0].retry.maximum_attempts: invalid type: ...`).
    ///
    /// # Errors
    /// The deserialisation error, in words.
    pub fn into_result(self) -> Result<T, String> {
        match self {
            Input::Valid(value) => Ok(value),
            Input::Invalid(json) => Err(match serde_path_to_error::deserialize::<_, T>(json) {
                Err(e) if e.path().to_string() == "." => e.inner().to_string(),
                Err(e) => format!("{}: {}", e.path(), e.inner()),
                Ok(_) => "the input did not deserialise".to_owned(),
            }),
        }
    }
}

impl<T> From<T> for Input<T> {
    fn from(value: T) -> Self {
        Input::Valid(value)
    }
}
