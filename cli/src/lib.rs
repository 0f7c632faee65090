//! `cutover`: the command line and the CI webhook receiver (`cutover serve`), on top of the
//! `cutover-client` library. The binary's `main` only parses flags and calls [`run`]; tests
//! start the receiver in-process through [`serve::Receiver`], the same way the CLI does.

mod cli;
mod cmd;
mod exit;
mod render;
pub mod serve;

use std::process::ExitCode;

pub use cli::Cli;
use cutover_workflows::guard::Action;

use cli::{
    AuditCommand, AuthCommand, Command, DevCommand, DrillCommand, PlanCommand, ReleaseCommand,
    RolloutCommand, TriggersCommand, WebhooksCommand,
};

/// Runs one parsed command line and maps its outcome to an exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Plan(PlanCommand::Validate { file, output }) => {
            cmd::plan::validate(&file, output.output)
        }
        Command::Plan(PlanCommand::Show { file, objects }) => cmd::plan::show(&file, objects).await,
        Command::Rollout(RolloutCommand::Start {
            plan,
            wait,
            vars,
            on_busy,
            override_freeze,
            output,
        }) => {
            let how = cmd::rollout::StartHow {
                wait,
                vars: &vars,
                on_busy,
                override_freeze,
            };
            // A start from the CLI begins the rollout's trace (when `OTEL_*` asks for one).
            let telemetry = cutover_client::telemetry::init_with_level(
                cutover_client::telemetry::LogFormat::Human,
                "cutover",
                "warn",
            );
            let started = cmd::rollout::start(&cli.global, &plan, how, output.output).await;
            telemetry.shutdown();
            started
        }
        Command::Rollout(RolloutCommand::Schedule(command)) => {
            cmd::schedule::run(&cli.global, command, cmd::schedule::Kind::Rollout).await
        }
        Command::Rollout(RolloutCommand::Undo {
            service,
            environment,
            to,
            wait,
            ledger,
            output,
        }) => {
            let ask = cmd::undo::Undo {
                service: &service,
                environment: &environment,
                to: to.as_deref(),
                ledger: ledger.ledger.as_deref(),
                wait,
            };
            cmd::undo::undo(&cli.global, ask, output.output).await
        }
        Command::Rollout(RolloutCommand::Status { id, output }) => {
            cmd::watch::status(&cli.global, &id, output.output).await
        }
        Command::Rollout(RolloutCommand::Watch { id }) => cmd::watch::watch(&cli.global, &id).await,
        Command::Rollout(RolloutCommand::Wait {
            id,
            until,
            timeout,
            output,
        }) => cmd::wait::wait(&cli.global, &id, until, timeout, output.output).await,
        Command::Rollout(RolloutCommand::History { id, output }) => {
            cmd::watch::history(&cli.global, &id, output.output).await
        }
        Command::Rollout(RolloutCommand::List {
            service,
            environment,
            limit,
            output,
        }) => cmd::rollout::list(&cli.global, service, environment, limit, output.output).await,
        Command::Rollout(RolloutCommand::Approve {
            id,
            approver,
            comment,
            via,
            output,
        }) => {
            let direct = cmd::control::approve(&cli.global, &id, approver.clone(), comment.clone());
            let how = Steer {
                id: &id,
                action: Action::Approve,
                by: approver,
                reason: comment,
                full: false,
            };
            steer(&cli.global, via, how, output.output, direct).await
        }
        Command::Rollout(RolloutCommand::Refuse {
            id,
            reason,
            by,
            via,
            output,
        }) => {
            let direct = cmd::control::control(
                &cli.global,
                &id,
                Action::Refuse,
                by.clone(),
                Some(reason.clone()),
                false,
                cli::Output::Human,
            );
            let how = Steer {
                id: &id,
                action: Action::Refuse,
                by,
                reason: Some(reason),
                full: false,
            };
            steer(&cli.global, via, how, output.output, direct).await
        }
        Command::Rollout(RolloutCommand::Pause {
            id,
            reason,
            by,
            via,
            output,
        }) => {
            let direct = cmd::control::pause(&cli.global, &id, by.clone(), reason.clone());
            let how = Steer {
                id: &id,
                action: Action::Pause,
                by,
                reason: Some(reason),
                full: false,
            };
            steer(&cli.global, via, how, output.output, direct).await
        }
        Command::Rollout(RolloutCommand::Resume {
            id,
            by,
            via,
            output,
        }) => {
            let direct = cmd::control::resume(&cli.global, &id, by.clone());
            let how = Steer {
                id: &id,
                action: Action::Resume,
                by,
                reason: None,
                full: false,
            };
            steer(&cli.global, via, how, output.output, direct).await
        }
        Command::Rollout(RolloutCommand::Promote {
            id,
            by,
            full,
            via,
            output,
        }) => {
            let direct = cmd::control::promote(&cli.global, &id, by.clone(), full);
            let how = Steer {
                id: &id,
                action: Action::Promote,
                by,
                reason: None,
                full,
            };
            steer(&cli.global, via, how, output.output, direct).await
        }
        Command::Rollout(RolloutCommand::Abort {
            id,
            reason,
            by,
            via,
            output,
        }) => {
            let direct = cmd::control::abort(&cli.global, &id, by.clone(), reason.clone());
            let how = Steer {
                id: &id,
                action: Action::Abort,
                by,
                reason: Some(reason),
                full: false,
            };
            steer(&cli.global, via, how, output.output, direct).await
        }
        Command::Rollout(RolloutCommand::Retry {
            id,
            by,
            via,
            output,
        }) => {
            let direct = cmd::control::retry(&cli.global, &id, by.clone());
            let how = Steer {
                id: &id,
                action: Action::Retry,
                by,
                reason: None,
                full: false,
            };
            steer(&cli.global, via, how, output.output, direct).await
        }
        Command::Rollout(RolloutCommand::Cancel { id, reason }) => {
            cmd::rollout::cancel(&cli.global, &id, &reason).await
        }
        Command::Dev(DevCommand::Up {
            home,
            headless,
            ui_port,
        }) => cmd::dev::up(&cli.global, &home, headless, ui_port).await,
        Command::Dev(DevCommand::Down { home }) => cmd::dev::down(&home),
        Command::Host(cli::HostCommand::Stop {
            service,
            environment,
            root,
            grace,
        }) => cmd::host::stop(&service, environment.as_deref(), &root, grace).await,
        Command::Serve(args) => serve::serve(&cli.global, &args).await,
        Command::Drill(DrillCommand::Validate { file }) => cmd::drill::validate(&file),
        Command::Drill(DrillCommand::Schedule(command)) => {
            cmd::schedule::run(&cli.global, command, cmd::schedule::Kind::Drill).await
        }
        Command::Drill(DrillCommand::Report {
            last,
            html,
            ledger,
            output,
        }) => {
            cmd::drill_report::report(
                ledger.ledger.as_deref(),
                last,
                output.output,
                html.as_deref(),
            )
            .await
        }
        Command::Release(ReleaseCommand::Validate { file }) => cmd::release::validate(&file),
        Command::Release(ReleaseCommand::Start { file, wait }) => {
            cmd::release::start(&cli.global, &file, wait).await
        }
        Command::Release(ReleaseCommand::Watch { name, environment }) => {
            cmd::release::watch(&cli.global, &name, &environment).await
        }
        Command::Release(ReleaseCommand::Status {
            name,
            environment,
            output,
        }) => cmd::release::status(&cli.global, &name, &environment, output.output).await,
        Command::Drill(DrillCommand::Run { plan, wait, output }) => {
            cmd::drill::run(&cli.global, &plan, wait, output.output).await
        }
        Command::Triggers(TriggersCommand::Validate { file }) => {
            cmd::ledger::validate_triggers(&file)
        }
        Command::Webhooks(WebhooksCommand::Deliveries {
            last,
            stuck,
            ledger,
            output,
        }) => cmd::ledger::deliveries(ledger.ledger.as_deref(), last, stuck, output.output).await,
        Command::Agents { output } => cmd::agents::list(&cli.global, output.output).await,
        Command::Locks { output } => cmd::locks::list(&cli.global, output.output).await,
        Command::Audit {
            command: Some(AuditCommand::Verify { ledger }),
            ..
        } => cmd::audit::verify(ledger.ledger.as_deref()).await,
        Command::Audit {
            command: None,
            service,
            since,
            last,
            ledger,
            output,
        } => {
            cmd::audit::list(
                ledger.ledger.as_deref(),
                service,
                since,
                last,
                output.output,
            )
            .await
        }
        Command::Auth(AuthCommand::Keygen { path }) => cmd::audit::keygen(&path),
        Command::Auth(AuthCommand::Token) => cmd::audit::token(),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut cli::Cli::command(),
                "cutover",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Releases {
            service,
            environment,
            last,
            ledger,
            output,
        } => {
            cmd::ledger::releases(
                ledger.ledger.as_deref(),
                service.as_deref(),
                environment.as_deref(),
                last,
                output.output,
            )
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

/// A control action: who, on what.
struct Steer<'a> {
    id: &'a str,
    action: Action,
    by: String,
    reason: Option<String>,
    /// `promote --full`.
    full: bool,
}

/// A control action through a receiver (`--via`), or `direct`ly to Temporal; with `--output
/// json`, directly through the `control` update, whose answer is printed as JSON.
async fn steer(
    global: &cli::Global,
    via: cli::ViaArgs,
    how: Steer<'_>,
    output: cli::Output,
    direct: impl Future<Output = exit::Outcome>,
) -> exit::Outcome {
    match (via.via, output) {
        (Some(url), _) => {
            cmd::via::act(
                &url,
                via.token_file.as_deref(),
                how.id,
                how.action,
                how.reason,
                how.full,
                output,
            )
            .await
        }
        (None, cli::Output::Json) => {
            cmd::control::control(
                global, how.id, how.action, how.by, how.reason, how.full, output,
            )
            .await
        }
        (None, cli::Output::Human) => direct.await,
    }
}
