//! The one way Cutover's long-running processes learn they should stop: SIGTERM (Kubernetes,
//! systemd) or SIGINT (a person's Ctrl-C). The worker drains its activities and `cutover serve`
//! its open requests when [`signal`] resolves.

/// Resolves on the first SIGTERM or SIGINT. If the handlers cannot be installed the process
/// still runs; it just cannot drain on a signal, so this never resolves.
pub async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
