//! Every side effect Cutover performs, as Temporal activities.
//!
//! Each activity implements a contract declared in `cutover_workflows::contracts`, is safe to
//! run more than once, and classifies its failures as retryable or not
//! ([`StepFailure`]). Long activities heartbeat so that a dead worker is noticed within the
//! heartbeat timeout rather than the step timeout.

mod artifact;
mod error;
mod process;
mod secrets;
mod verify;

use std::sync::Arc;

use cutover_workflows::contracts::{
    self, BuildInput, BuildOutput, CommandInput, CommandOutput, VerifyInput, VerifyOutput,
};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

pub use error::StepFailure;

/// The rollout activities, registered on a worker with `register_activities`.
pub struct RolloutActivityImpls {
    http: reqwest::Client,
}

impl Default for RolloutActivityImpls {
    fn default() -> Self {
        Self {
            http: verify::client(),
        }
    }
}

#[activities]
impl RolloutActivityImpls {
    /// `process.run`: runs the step's command. Running it twice runs the command twice, so a
    /// `command` step should itself be idempotent (`terraform apply` is).
    #[activity(definition = contracts::RunCommand)]
    pub async fn run_command(
        ctx: ActivityContext,
        input: CommandInput,
    ) -> Result<CommandOutput, ActivityError> {
        let finished = process::run(&ctx, &input.step, &input.spec)
            .await
            .map_err(StepFailure::into_activity_error)?;
        Ok(CommandOutput {
            exit_code: 0,
            lines: finished.lines,
        })
    }

    /// `build.run`: runs the build, then returns the artifact's path, size and SHA-256. A
    /// re-run rebuilds in place and fingerprints the result again.
    #[activity(definition = contracts::Build)]
    pub async fn build(
        ctx: ActivityContext,
        input: BuildInput,
    ) -> Result<BuildOutput, ActivityError> {
        let finished = process::run(&ctx, &input.step, &input.spec.command)
            .await
            .map_err(StepFailure::into_activity_error)?;
        let artifact = match &input.spec.artifact {
            Some(path) => Some(
                artifact::fingerprint(&finished.workdir.join(path))
                    .await
                    .map_err(StepFailure::into_activity_error)?,
            ),
            None => None,
        };
        Ok(BuildOutput {
            command: CommandOutput {
                exit_code: 0,
                lines: finished.lines,
            },
            artifact,
        })
    }

    /// `http.verify`: read-only HTTP checks, safe to repeat.
    #[activity(definition = contracts::Verify)]
    pub async fn verify(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: VerifyInput,
    ) -> Result<VerifyOutput, ActivityError> {
        verify::verify(&ctx, &self.http, &input.step, &input.spec)
            .await
            .map_err(StepFailure::into_activity_error)
    }
}
