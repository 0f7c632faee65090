//! A fleet's traffic router: an nginx on the load-balancer host, whose upstream lists every
//! host of the fleet (`target.router.backends`), the drained ones marked `down`. Each call
//! writes the whole upstream and reloads, so a retried call converges to the same state.

use cutover_workflows::contracts::RouteOutput;
use cutover_workflows::plan::Router;
use tracing::info;

use super::HostDriver;
use super::nginx::Nginx;
use super::state::{self, service_dir};
use crate::error::StepFailure;

impl HostDriver {
    /// Sends traffic to every backend but the `drained` hosts, in proportion to `weights`
    /// (equal when absent); starts the router if needed.
    pub(crate) async fn route(
        &self,
        service: &str,
        router: &Router,
        drained: &[String],
        weights: &std::collections::BTreeMap<String, u32>,
    ) -> Result<RouteOutput, StepFailure> {
        let dir = service_dir(&router.root, service)?.join("router");
        let _guard = state::lock(&dir).await?;
        let address = router
            .listen_address
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        let nginx = Nginx::new(&dir, std::net::SocketAddr::new(address, router.listen));
        let backends: Vec<(String, Option<u32>)> = router
            .backends
            .iter()
            .map(|(host, backend)| {
                let weight = weights.get(host).copied().unwrap_or(1).max(1);
                (backend.clone(), (!drained.contains(host)).then_some(weight))
            })
            .collect();
        nginx.apply_backends(&backends).await?;
        let (serving, out): (Vec<String>, Vec<String>) = router
            .backends
            .keys()
            .cloned()
            .partition(|h| !drained.contains(h));
        info!(service, serving = ?serving, drained = ?out, "router updated");
        Ok(RouteOutput {
            serving,
            drained: out,
        })
    }
}
