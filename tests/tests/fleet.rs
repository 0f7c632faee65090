//! Fleets: one plan deployed on three hosts in waves, each host by its own agent.
//!
//! Every host is a network namespace with its own address and its own release root (see
//! `cutover_tests::fleet`), so "web-2's nginx on :18080" really is another server than
//! web-1's, and a step that ran on the wrong agent would act on the wrong files. The dev
//! server, the orchestrating worker and the load run in the test's own namespace. Nothing is
//! mocked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cutover_tests::fleet::Fleet;
use cutover_tests::host::load;
use cutover_tests::{
    DevServer, WorkerProcess, bin, outcome, plan, replays, status, unique_queue, wait_for,
};
use cutover_workflows::status::{HostState, RolloutState, RolloutStatus};
use temporalio_client::Client;

const HOSTS: [&str; 3] = ["web-1", "web-2", "web-3"];
const LISTEN: u16 = 18080;

/// A reachable dev server, an orchestrating worker, three hosts with their agents.
struct Site {
    server: DevServer,
    queue: String,
    fleet: Fleet,
    agents: BTreeMap<String, WorkerProcess>,
    orchestrator: WorkerProcess,
    dir: tempfile::TempDir,
}

impl Site {
    async fn start(name: &str) -> anyhow::Result<Self> {
        Self::start_with(name, &[]).await
    }

    /// With `extra` hosts besides the fleet (a load balancer), each with its agent.
    async fn start_with(name: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let server = DevServer::start_reachable().await?;
        let dir = tempfile::tempdir()?;
        let queue = unique_queue(name);
        let orchestrator = WorkerProcess::spawn(&server.address, &queue, dir.path())?;
        let all: Vec<&str> = HOSTS.iter().chain(extra).copied().collect();
        let fleet = Fleet::create(&all)?;
        let mut agents = BTreeMap::new();
        for host in all {
            agents.insert(host.to_owned(), fleet.agent(host, server.port())?);
        }
        Ok(Self {
            server,
            queue,
            fleet,
            agents,
            orchestrator,
            dir,
        })
    }

    fn client(&self) -> &Client {
        self.server.client()
    }

    /// A plan deploying `version` on the fleet in waves 1, 50%, 100%; `extra` goes at the end
    /// of the deploy step.
    fn plan(&self, version: &str, extra: &str) -> String {
        format!(
            r#"service: hello
environment: fleet
version: "{version}"
target: {{ driver: host, hosts: [web-1, web-2, web-3] }}
steps:
  - name: deploy
    kind: deploy
    root: "{root}"
    strategy: blue-green
    start: {{ command: "{bin}" }}
    instances: 2
    base_port: 18100
    listen: {LISTEN}
    listen_address: 0.0.0.0
    rollback_window: 0s
    health: {{ timeout: 15s, interval: 100ms }}
    heartbeat_timeout: 3s
    retry: {{ initial_interval: 200ms, maximum_attempts: 3 }}
    waves: [1, 50%, 100%]
    between_waves:
      verify: {{ url: "http://127.0.0.1:{LISTEN}/health", within: 10s }}
      bake: 1s
{extra}"#,
            root = self.fleet.root.display(),
            bin = bin("hello-service").display(),
        )
    }

    /// The plan's target line with a router on `lb` in front of the three hosts.
    fn router_target(&self) -> String {
        let backends: Vec<String> = HOSTS
            .iter()
            .map(|h| format!("{h}: \"{}:{LISTEN}\"", self.fleet.host(h).address))
            .collect();
        format!(
            "target: {{ driver: host, hosts: [web-1, web-2, web-3], router: {{ host: lb, root: \"{}\", listen: 8080, listen_address: 0.0.0.0, backends: {{ {} }} }} }}",
            self.fleet.root.display(),
            backends.join(", ")
        )
    }

    async fn start_rollout(&self, text: &str) -> anyhow::Result<String> {
        let started =
            cutover_client::start_rollout(self.client(), &plan(text), &self.queue, None).await?;
        Ok(started.workflow_id)
    }

    /// Runs `text` and fails unless it succeeds.
    async fn succeed(&self, text: &str) -> anyhow::Result<String> {
        let id = self.start_rollout(text).await?;
        let summary = outcome(self.client(), &id)
            .await
            .map_err(|e| anyhow::anyhow!("{id}: {e:?}\nagents:\n{}", self.logs()))?;
        anyhow::ensure!(summary.outcome == RolloutState::Succeeded, "{summary:?}");
        Ok(id)
    }

    fn logs(&self) -> String {
        self.agents
            .iter()
            .map(|(h, a)| format!("--- {h}\n{}", a.log_text()))
            .collect()
    }

    /// The version each host serves, by host.
    async fn serving(&self) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for host in HOSTS {
            out.push(self.fleet.serving(host, LISTEN).await?);
        }
        Ok(out)
    }
}

/// Every activity sent to a host's queue was run by that host's agent, and nothing else.
fn ran_only_on_their_hosts(started: &[(String, String, String)]) {
    for (queue, identity, kind) in started {
        if let Some(host) = queue.strip_prefix("cutover-host-") {
            assert!(
                identity.starts_with(&format!("cutover-agent/{host}/")),
                "{kind} for {host} ran on {identity}"
            );
        }
    }
}

fn fleet_state(st: &RolloutStatus) -> BTreeMap<String, HostState> {
    st.steps[0]
        .fleet
        .as_ref()
        .map(|f| f.hosts.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_fleet_rolls_in_waves_under_load_without_a_failed_request() -> anyhow::Result<()> {
    let site = Site::start("fleet-waves").await?;
    site.succeed(&site.plan("1.0.0", "")).await?;
    assert_eq!(site.serving().await?, ["1.0.0", "1.0.0", "1.0.0"]);

    // Load on every host's own address while 2.0.0 rolls through the waves.
    let stop = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = HOSTS
        .iter()
        .map(|h| site.fleet.host(h))
        .map(|h| {
            tokio::spawn(load(
                format!("http://{}:{LISTEN}/version", h.address),
                3,
                stop.clone(),
            ))
        })
        .collect();
    let id = site.succeed(&site.plan("2.0.0", "")).await?;
    stop.store(true, Ordering::Relaxed);
    for (host, l) in HOSTS.iter().zip(loads) {
        let l = l.await?;
        assert!(l.requests > 50, "{host}: too little load to judge: {l:?}");
        assert_eq!(l.failures, 0, "{host}: {:?}", l.errors);
        assert!(l.versions.contains_key("2.0.0"), "{host}: {l:?}");
    }
    assert_eq!(site.serving().await?, ["2.0.0", "2.0.0", "2.0.0"]);

    let st = status(site.client(), &id).await.expect("status");
    let fleet = st.steps[0].fleet.clone().expect("fleet status");
    assert_eq!(fleet.waves, [["web-1"], ["web-2"], ["web-3"]]);
    assert_eq!(fleet.wave, 3);
    assert!(fleet.hosts.values().all(|s| *s == HostState::Deployed));

    // Waves in order: a host's new version is prepared only once the previous wave has been
    // switched and verified (the last wave is verified too); and each host's work ran on its
    // own agent only.
    let started = cutover_tests::activities_started(site.client(), &id).await?;
    ran_only_on_their_hosts(&started);
    let sequence: Vec<(String, String)> = started
        .iter()
        .filter_map(|(q, _, kind)| {
            let host = q.strip_prefix("cutover-host-")?;
            let kind = kind.rsplit('.').next().unwrap_or(kind);
            ["prepare", "shift", "verify"]
                .contains(&kind)
                .then(|| (host.to_owned(), kind.to_owned()))
        })
        .collect();
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(h, k)| ((*h).to_owned(), (*k).to_owned()))
            .collect()
    };
    assert_eq!(
        sequence,
        pairs(&[
            ("web-1", "prepare"),
            ("web-1", "shift"),
            ("web-1", "verify"),
            ("web-2", "prepare"),
            ("web-2", "shift"),
            ("web-2", "verify"),
            ("web-3", "prepare"),
            ("web-3", "shift"),
            ("web-3", "verify"),
        ]),
        "{started:#?}"
    );
    replays(site.client(), &id, "fleet-waves").await?;
    Ok(())
}

#[tokio::test]
async fn an_agent_killed_mid_wave_is_waited_for_and_its_host_finishes_on_its_new_agent()
-> anyhow::Result<()> {
    let mut site = Site::start("fleet-kill").await?;
    site.succeed(&site.plan("1.0.0", "")).await?;
    // Slow instances keep web-2's `prepare` running long enough to lose it.
    let slow = site.plan("2.0.0", "").replace(
        "start: { command: ",
        "start: { env: { STARTUP_DELAY_MS: \"2500\" }, command: ",
    );
    let id = site.start_rollout(&slow).await?;
    wait_for(Duration::from_secs(60), "web-2 deploying", || async {
        let st = status(site.client(), &id).await?;
        (fleet_state(&st).get("web-2") == Some(&HostState::Deploying)).then_some(())
    })
    .await?;
    site.agents.get_mut("web-2").expect("agent").kill9();

    // The lost attempt times out (3 s heartbeat); the retry waits on web-2's queue, and says so.
    let waiting = wait_for(Duration::from_secs(60), "waiting for web-2", || async {
        let st = status(site.client(), &id).await?;
        cutover_client::agents::waiting_for_host(site.client(), &id, &st).await
    })
    .await?;
    assert!(
        waiting.starts_with("waiting for host web-2 (no agent polling cutover-host-web-2"),
        "{waiting}"
    );
    let st = status(site.client(), &id).await.expect("status");
    assert_eq!(st.state, RolloutState::Running, "{st:?}");
    assert_eq!(fleet_state(&st)["web-3"], HostState::Pending);

    // A new agent for web-2 takes the work and the rollout completes.
    let agent = site.fleet.agent("web-2", site.server.port())?;
    site.agents.insert("web-2".to_owned(), agent);
    let summary = outcome(site.client(), &id).await;
    assert!(
        matches!(&summary, Ok(s) if s.outcome == RolloutState::Succeeded),
        "{summary:?}\n{}",
        site.logs()
    );
    assert_eq!(site.serving().await?, ["2.0.0", "2.0.0", "2.0.0"]);
    let started = cutover_tests::activities_started(site.client(), &id).await?;
    ran_only_on_their_hosts(&started);
    // web-1 was done before the loss: the retried attempt did not deploy it again.
    let prepares = |host: &str| {
        started
            .iter()
            .filter(|(q, _, k)| q == &format!("cutover-host-{host}") && k.ends_with("prepare"))
            .count()
    };
    assert_eq!(prepares("web-1"), 1, "{started:#?}");
    assert_eq!(prepares("web-3"), 1, "{started:#?}");
    replays(site.client(), &id, "fleet-agent-killed").await?;
    Ok(())
}

#[tokio::test]
async fn an_agent_that_never_comes_back_fails_its_wave_and_the_hosts_changed_are_rolled_back()
-> anyhow::Result<()> {
    let mut site = Site::start("fleet-gone").await?;
    site.succeed(&site.plan("1.0.0", "")).await?;
    site.agents.get_mut("web-2").expect("agent").kill9();

    let text = site.plan("2.0.0", "    schedule_to_start_timeout: 4s\n");
    let id = site.start_rollout(&text).await?;
    let result = outcome(site.client(), &id).await;
    assert!(result.is_err(), "{result:?}");
    let st = status(site.client(), &id).await.expect("status");
    assert_eq!(st.state, RolloutState::RolledBack, "{st:?}");
    let reason = st.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("no agent for host `web-2` took the step within 4s"),
        "{reason}"
    );
    assert!(reason.contains("web-1: traffic back to 1.0.0"), "{reason}");
    let hosts = fleet_state(&st);
    assert_eq!(hosts["web-1"], HostState::RolledBack, "{hosts:?}");
    assert_eq!(hosts["web-2"], HostState::Pending, "{hosts:?}");
    assert_eq!(hosts["web-3"], HostState::Pending, "{hosts:?}");

    // web-1 is back on 1.0.0; web-3's wave never began: nothing was sent to it at all.
    assert_eq!(site.fleet.serving("web-1", LISTEN).await?, "1.0.0");
    assert_eq!(site.fleet.serving("web-3", LISTEN).await?, "1.0.0");
    let started = cutover_tests::activities_started(site.client(), &id).await?;
    ran_only_on_their_hosts(&started);
    assert!(
        !started.iter().any(|(q, _, _)| q == "cutover-host-web-3"),
        "{started:#?}"
    );
    replays(site.client(), &id, "fleet-agent-gone").await?;
    Ok(())
}

#[tokio::test]
async fn an_orchestrating_worker_killed_mid_fleet_leaves_the_rollout_to_the_other()
-> anyhow::Result<()> {
    let mut site = Site::start("fleet-orchestrators").await?;
    site.succeed(&site.plan("1.0.0", "")).await?;
    // A second orchestrating worker on the same queue; the first is SIGKILLed while the
    // rollout holds its bake between waves (a durable timer: whoever is left picks it up).
    let second = site.dir.path().join("second");
    std::fs::create_dir(&second)?;
    let _second = WorkerProcess::spawn(&site.server.address, &site.queue, &second)?;
    let id = site
        .start_rollout(&site.plan("2.0.0", "").replace("bake: 1s", "bake: 3s"))
        .await?;
    wait_for(Duration::from_secs(60), "the bake after web-1", || async {
        let st = status(site.client(), &id).await?;
        (fleet_state(&st).get("web-1") == Some(&HostState::Deployed)).then_some(())
    })
    .await?;
    site.orchestrator.kill9();
    let summary = outcome(site.client(), &id).await;
    assert!(
        matches!(&summary, Ok(s) if s.outcome == RolloutState::Succeeded),
        "{summary:?}"
    );
    assert_eq!(site.serving().await?, ["2.0.0", "2.0.0", "2.0.0"]);
    // Each host was deployed exactly once, by its own agent.
    let started = cutover_tests::activities_started(site.client(), &id).await?;
    ran_only_on_their_hosts(&started);
    for host in HOSTS {
        let prepares = started
            .iter()
            .filter(|(q, _, k)| q == &format!("cutover-host-{host}") && k.ends_with("prepare"))
            .count();
        assert_eq!(prepares, 1, "{host}: {started:#?}");
    }
    Ok(())
}

/// The hosts marked `down` in a router's upstream, by host name; `hosts` maps addresses to
/// names.
fn drained(upstream: &str, hosts: &[(String, String)]) -> Vec<String> {
    upstream
        .lines()
        .filter(|l| l.ends_with(" down;"))
        .filter_map(|l| {
            let address = l.strip_prefix("server ")?.split(':').next()?;
            hosts
                .iter()
                .find(|(a, _)| a == address)
                .map(|(_, h)| h.clone())
        })
        .collect()
}

#[tokio::test]
async fn a_router_takes_each_wave_out_of_traffic_until_it_is_verified() -> anyhow::Result<()> {
    let site = Site::start_with("fleet-router", &["lb"]).await?;
    let router = site.router_target();
    let plan = |version: &str| {
        site.plan(version, "").replace(
            "target: { driver: host, hosts: [web-1, web-2, web-3] }",
            &router,
        )
    };
    site.succeed(&plan("1.0.0")).await?;
    let upstream = site
        .fleet
        .host("lb")
        .dir
        .join("hello/router/nginx/upstream.conf");
    let hosts: Vec<(String, String)> = HOSTS
        .iter()
        .map(|h| (site.fleet.host(h).address.to_string(), (*h).to_owned()))
        .collect();
    assert!(drained(&std::fs::read_to_string(&upstream)?, &hosts).is_empty());

    // Users go through the router while 2.0.0 rolls; its upstream is watched all along.
    let stop = Arc::new(AtomicBool::new(false));
    let through = format!("http://{}:8080/version", site.fleet.host("lb").address);
    let users = tokio::spawn(load(through, 4, stop.clone()));
    let watcher = {
        let (stop, upstream, hosts) = (stop.clone(), upstream.clone(), hosts.clone());
        tokio::spawn(async move {
            let mut seen: Vec<Vec<String>> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let text = std::fs::read_to_string(&upstream).unwrap_or_default();
                let down = drained(&text, &hosts);
                if !text.is_empty() && seen.last() != Some(&down) {
                    seen.push(down);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        })
    };
    let id = site.succeed(&plan("2.0.0")).await?;
    stop.store(true, Ordering::Relaxed);
    let users = users.await?;
    let seen = watcher.await?;
    assert!(users.requests > 50, "too little load to judge: {users:?}");
    assert_eq!(users.failures, 0, "{:?}", users.errors);
    assert!(users.versions.contains_key("2.0.0"), "{users:?}");
    let one = |h: &str| vec![h.to_owned()];
    assert_eq!(
        seen,
        [
            vec![],
            one("web-1"),
            vec![],
            one("web-2"),
            vec![],
            one("web-3"),
            vec![]
        ],
        "each wave out of the router while it changes, back once verified"
    );
    assert_eq!(site.serving().await?, ["2.0.0", "2.0.0", "2.0.0"]);
    let started = cutover_tests::activities_started(site.client(), &id).await?;
    ran_only_on_their_hosts(&started);
    assert!(
        started
            .iter()
            .filter(|(_, _, k)| k.ends_with("route"))
            .all(|(q, _, _)| q == "cutover-host-lb"),
        "{started:#?}"
    );
    replays(site.client(), &id, "fleet-router").await?;
    Ok(())
}

#[tokio::test]
async fn regions_roll_one_after_another_each_behind_its_own_router() -> anyhow::Result<()> {
    let site = Site::start_with("fleet-regions", &["lb"]).await?;
    let root = site.fleet.root.display().to_string();
    let backend = |h: &str| format!("{h}: \"{}:{LISTEN}\"", site.fleet.host(h).address);
    let target = format!(
        "target:\n  driver: host\n  regions:\n    - name: a\n      hosts: [web-1, web-2]\n      router: {{ host: lb, root: \"{root}/a\", listen: 8080, listen_address: 0.0.0.0, backends: {{ {}, {} }} }}\n    - name: b\n      hosts: [web-3]\n      router: {{ host: lb, root: \"{root}/b\", listen: 8081, listen_address: 0.0.0.0, backends: {{ {} }} }}\n",
        backend("web-1"),
        backend("web-2"),
        backend("web-3"),
    );
    let plan = |version: &str| {
        site.plan(version, "").replace(
            "target: { driver: host, hosts: [web-1, web-2, web-3] }\n",
            &target,
        )
    };
    site.succeed(&plan("1.0.0")).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let lb = site.fleet.host("lb").address;
    let region_a = tokio::spawn(load(format!("http://{lb}:8080/version"), 3, stop.clone()));
    let region_b = tokio::spawn(load(format!("http://{lb}:8081/version"), 3, stop.clone()));
    let id = site.succeed(&plan("2.0.0")).await?;
    stop.store(true, Ordering::Relaxed);
    for (name, users) in [("a", region_a.await?), ("b", region_b.await?)] {
        assert!(users.requests > 20, "region {name}: {users:?}");
        assert_eq!(users.failures, 0, "region {name}: {:?}", users.errors);
    }
    assert_eq!(site.serving().await?, ["2.0.0", "2.0.0", "2.0.0"]);

    let st = status(site.client(), &id).await.expect("status");
    let fleet = st.steps[0].fleet.clone().expect("fleet status");
    assert_eq!(fleet.regions, ["a", "a", "b"]);
    assert_eq!(fleet.waves, [["web-1"], ["web-2"], ["web-3"]]);
    // Region a before region b; each router lists only its region's hosts, all serving.
    let started = cutover_tests::activities_started(site.client(), &id).await?;
    ran_only_on_their_hosts(&started);
    let prepared: Vec<&str> = started
        .iter()
        .filter(|(_, _, k)| k.ends_with("prepare"))
        .filter_map(|(q, _, _)| q.strip_prefix("cutover-host-"))
        .collect();
    assert_eq!(prepared, ["web-1", "web-2", "web-3"]);
    let lb_dir = &site.fleet.host("lb").dir;
    let upstream = |r: &str| {
        std::fs::read_to_string(lb_dir.join(format!("{r}/hello/router/nginx/upstream.conf")))
            .unwrap_or_default()
    };
    let web = |h: &str| site.fleet.host(h).address.to_string();
    let (a, b) = (upstream("a"), upstream("b"));
    assert!(
        a.contains(&web("web-1")) && a.contains(&web("web-2")),
        "{a}"
    );
    assert!(!a.contains(&web("web-3")) && !a.contains("down"), "{a}");
    assert!(b.contains(&web("web-3")) && b.lines().count() == 1, "{b}");
    replays(site.client(), &id, "fleet-regions").await?;
    Ok(())
}

#[tokio::test]
async fn a_canary_across_hosts_gives_the_first_wave_its_weight_at_the_router() -> anyhow::Result<()>
{
    let site = Site::start_with("fleet-canary", &["lb"]).await?;
    let router = site.router_target();
    let plan = |version: &str, canary: bool| {
        let text = site.plan(version, "").replace(
            "target: { driver: host, hosts: [web-1, web-2, web-3] }",
            &router,
        );
        if canary {
            text.replace("strategy: blue-green", "strategy: canary")
                .replace(
                    "waves: [1, 50%, 100%]",
                    "waves: [1, 100%]\n    canary: [{ weight: 10, bake: 4s }, { weight: 100 }]",
                )
        } else {
            text
        }
    };
    site.succeed(&plan("1.0.0", false)).await?;
    let id = site.start_rollout(&plan("2.0.0", true)).await?;
    let upstream = site
        .fleet
        .host("lb")
        .dir
        .join("hello/router/nginx/upstream.conf");
    // While the canary weight holds, web-1 (2.0.0) gets 2 parts in 20 of the router's traffic.
    wait_for(Duration::from_secs(60), "the canary weight", || {
        let text = std::fs::read_to_string(&upstream).unwrap_or_default();
        async move { text.contains("weight=9").then_some(()) }
    })
    .await?;
    let upstream_text = std::fs::read_to_string(&upstream)?;
    let web1 = site.fleet.host("web-1").address.to_string();
    assert!(
        upstream_text
            .lines()
            .any(|l| l.contains(&web1) && l.contains("weight=2")),
        "{upstream_text}"
    );
    let through = format!("http://{}:8080/version", site.fleet.host("lb").address);
    let http = reqwest::Client::new();
    let mut new = 0;
    for _ in 0..100 {
        let body = http.get(&through).send().await?.text().await?;
        new += usize::from(body.contains("2.0.0"));
    }
    assert!(
        (5..=20).contains(&new),
        "{new} of 100 requests on the canary"
    );
    let summary = outcome(site.client(), &id).await;
    assert!(
        matches!(&summary, Ok(s) if s.outcome == RolloutState::Succeeded),
        "{summary:?}"
    );
    assert_eq!(site.serving().await?, ["2.0.0", "2.0.0", "2.0.0"]);
    let after = std::fs::read_to_string(&upstream)?;
    assert!(
        !after.contains("weight=") && !after.contains("down"),
        "{after}"
    );
    replays(site.client(), &id, "fleet-canary").await?;
    Ok(())
}

#[tokio::test]
async fn a_wave_switches_together_or_not_at_all() -> anyhow::Result<()> {
    let site = Site::start("fleet-together").await?;
    site.succeed(&site.plan("1.0.0", "")).await?;
    // On web-3 the port 2.0.0's first instance needs is taken: its `prepare` fails.
    let web3 = site.fleet.host("web-3").netns.clone();
    let mut holder = std::process::Command::new("ip")
        .args(["netns", "exec", &web3, "python3", "-c"])
        .arg("import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', 18102))\ns.listen()\ntime.sleep(600)")
        .spawn()?;
    wait_for(Duration::from_secs(10), "the port taken on web-3", || {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &web3, "ss", "-ltn"])
            .output();
        async move {
            out.ok()
                .filter(|o| String::from_utf8_lossy(&o.stdout).contains("127.0.0.1:18102"))
                .map(|_| ())
        }
    })
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = HOSTS
        .iter()
        .map(|h| {
            let url = format!("http://{}:{LISTEN}/version", site.fleet.host(h).address);
            tokio::spawn(load(url, 2, stop.clone()))
        })
        .collect();
    let text = site
        .plan("2.0.0", "")
        .replace("waves: [1, 50%, 100%]", "waves: [100%]")
        .replace("maximum_attempts: 3", "maximum_attempts: 1");
    let id = site.start_rollout(&text).await?;
    let result = outcome(site.client(), &id).await;
    stop.store(true, Ordering::Relaxed);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(result.is_err(), "{result:?}");
    for (host, l) in HOSTS.iter().zip(loads) {
        let l = l.await?;
        assert_eq!(l.failures, 0, "{host}: {:?}", l.errors);
        assert_eq!(
            l.versions.keys().collect::<Vec<_>>(),
            ["1.0.0"],
            "{host}: no host served 2.0.0, not even for a moment"
        );
    }
    assert_eq!(site.serving().await?, ["1.0.0", "1.0.0", "1.0.0"]);
    let started = cutover_tests::activities_started(site.client(), &id).await?;
    assert!(
        !started.iter().any(|(_, _, k)| k.ends_with("shift")),
        "nothing was switched: {started:#?}"
    );
    let st = status(site.client(), &id).await.expect("status");
    let reason = st.reason.clone().unwrap_or_default();
    assert!(reason.contains("on host web-3"), "{reason}");
    assert!(
        fleet_state(&st)
            .values()
            .all(|s| *s == HostState::Withdrawn),
        "{:?}",
        fleet_state(&st)
    );
    replays(site.client(), &id, "fleet-together").await?;
    Ok(())
}
