//! Several hosts on one machine, each really another host: a network namespace of its own
//! (`ip netns`, its own address and ports, so web-2's nginx on :18080 is not web-1's), and
//! its own release root (a directory bind-mounted over the plan's `root` inside that
//! namespace, so one plan's paths mean each host's own files). Each host's agent runs inside
//! its namespace and reaches the dev server and the other hosts through a veth pair on a
//! bridge of the fleet's own.
//!
//! Needs root (namespaces and mounts), as the tests on this machine run.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::{Context, ensure};

use crate::{WorkerProcess, bin};

/// Subnets handed out in this process: 10.231.<n>.0/24, one per fleet.
static NEXT_SUBNET: AtomicU8 = AtomicU8::new(1);

/// One host: its namespace, address, and the directory that is its release root.
pub struct NetHost {
    /// The agent's host name (`web-1`).
    pub name: String,
    /// Its network namespace.
    pub netns: String,
    /// Its address, reachable from the test's namespace.
    pub address: Ipv4Addr,
    /// The test namespace's address on the bridge, which the host reaches the server by.
    pub gateway: Ipv4Addr,
    /// What the plan's `root` is on this host.
    pub dir: PathBuf,
}

/// A fleet of [`NetHost`]s, removed (processes killed, namespaces deleted) on drop.
pub struct Fleet {
    /// The hosts, in order.
    pub hosts: Vec<NetHost>,
    /// The plan's release root: a mount point, each host's own directory inside its namespace.
    pub root: PathBuf,
    bridge: String,
    _dir: tempfile::TempDir,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip`")?;
    ensure!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl Fleet {
    /// Creates one namespace per name, all on one bridge of their own with this namespace
    /// (10.231.<n>.1), so hosts reach each other and the server directly.
    pub fn create(names: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("root");
        std::fs::create_dir(&root)?;
        let pid = std::process::id() % 100_000;
        let n = NEXT_SUBNET.fetch_add(1, Ordering::Relaxed);
        // Interface names have at most 15 bytes.
        let bridge = format!("cvb{pid}x{n}");
        let gateway = Ipv4Addr::new(10, 231, n, 1);
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        let mut fleet = Self {
            hosts: Vec::new(),
            root,
            bridge: bridge.clone(),
            _dir: dir,
        };
        ip(&["addr", "add", &format!("{gateway}/24"), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for (i, name) in names.iter().enumerate() {
            let netns = format!("cvt-{pid}-{n}-{i}");
            let link = format!("cv{pid}x{n}h{i}");
            let address = Ipv4Addr::new(10, 231, n, 2 + i as u8);
            let host_dir = fleet._dir.path().join(name);
            std::fs::create_dir(&host_dir)?;
            ip(&["netns", "add", &netns])?;
            fleet.hosts.push(NetHost {
                name: (*name).to_owned(),
                netns: netns.clone(),
                address,
                gateway,
                dir: host_dir,
            });
            ip(&[
                "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ])?;
            ip(&["link", "set", &link, "master", &bridge])?;
            ip(&["link", "set", &link, "up"])?;
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &netns, "ip"];
                all.extend_from_slice(args);
                ip(&all)
            };
            inside(&["addr", "add", &format!("{address}/24"), "dev", "eth0"])?;
            inside(&["link", "set", "eth0", "up"])?;
            inside(&["link", "set", "lo", "up"])?;
        }
        Ok(fleet)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> &NetHost {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .expect("a host of the fleet")
    }

    /// Starts `name`'s agent inside its namespace, with its directory mounted as the root,
    /// against the dev server listening on every address at `server_port`.
    pub fn agent(&self, name: &str, server_port: u16) -> anyhow::Result<WorkerProcess> {
        let host = self.host(name);
        let mut command = Command::new("ip");
        // `ip netns exec` gives the command a mount namespace of its own: the bind mount is
        // seen by this agent and the processes it starts, and by no one else. Both it and the
        // shell exec, so the child's pid is the agent's.
        command
            .args(["netns", "exec", &host.netns, "sh", "-c"])
            .arg("mount --bind \"$1\" \"$2\" && cd \"$2\" && shift 2 && exec \"$@\"");
        command
            .arg("agent")
            .arg(&host.dir)
            .arg(&self.root)
            .arg(bin("cutover-worker"))
            .args([
                "--address",
                &format!("{}:{server_port}", host.gateway),
                "--shutdown-grace",
                "5s",
                "--host",
                name,
            ]);
        WorkerProcess::spawn_command(command, &host.dir)
    }

    /// `GET path` on `name`'s address and `port`, from this namespace: the version served.
    pub async fn serving(&self, name: &str, port: u16) -> anyhow::Result<String> {
        let url = format!("http://{}:{port}/version", self.host(name).address);
        let body = reqwest::get(&url).await?.text().await?;
        let v: serde_json::Value = serde_json::from_str(&body)?;
        Ok(v["version"].as_str().unwrap_or_default().to_owned())
    }

    /// Pids of every process in `name`'s namespace (its agent, nginx, instances).
    pub fn pids(&self, name: &str) -> Vec<i32> {
        netns_pids(&self.host(name).netns)
    }
}

fn netns_pids(netns: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", netns])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for host in &self.hosts {
            for pid in netns_pids(&host.netns) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            // Deleting the namespace deletes its end of the veth pair, and so the pair.
            let _ = ip(&["netns", "del", &host.netns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
