//! Fleets: a target of several hosts, and the waves a deploy rolls them in.
//!
//! A wave is a set of hosts deployed together (in parallel, each by its own agent); the next
//! wave starts only when every host of this one is done and the checks between waves pass.
//! Sizes are cumulative, as people say them: `[1, 50%, 100%]` on four hosts is one host, then
//! one more (half the fleet done), then the last two.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AnalysisSpec, VerifySpec};
use crate::duration_serde;

/// The traffic router in front of a fleet: an nginx on a load-balancer host, run by that
/// host's agent, whose upstream lists every host of the fleet. A wave's hosts are taken out
/// of it while they are deployed and put back once verified, so users never reach a host
/// mid-deploy or a version its checks have not passed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Router {
    /// The agent whose machine runs the router (`cutover-worker --host NAME`).
    pub host: String,
    /// Where the router's nginx lives there: `<root>/<service>/router/`.
    pub root: String,
    /// The port it listens on.
    pub listen: u16,
    /// The address it listens on; default 127.0.0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<std::net::IpAddr>,
    /// How the router reaches each host of the fleet (`address:port`), by host name.
    pub backends: BTreeMap<String, String>,
}

/// A region: a group of the fleet's hosts with its own router, rolled after the regions
/// before it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// Its name (`eu-west`).
    pub name: String,
    /// Its hosts (also listed, in region order, in the target's `hosts`).
    pub hosts: Vec<String>,
    /// Its router, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<Router>,
}

/// How many hosts are done once a wave ends: a count, or a percentage of the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveSize {
    /// This many hosts.
    Hosts(u32),
    /// This percentage of the fleet, rounded up (at least one host).
    Percent(u8),
}

impl WaveSize {
    /// Hosts done after this wave, in a fleet of `fleet` hosts.
    fn cumulative(self, fleet: usize) -> usize {
        let n = match self {
            WaveSize::Hosts(n) => n as usize,
            WaveSize::Percent(p) => (fleet * usize::from(p)).div_ceil(100),
        };
        n.clamp(1, fleet.max(1))
    }
}

/// How a deploy rolls a fleet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Waves {
    /// Cumulative sizes (`waves: [1, 50%, 100%]`). Empty: `max_unavailable` hosts at a time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sizes: Vec<WaveSize>,
    /// Hosts changed at once when `sizes` is empty (`max_unavailable: 2`); default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<u32>,
    /// What must hold between two waves.
    #[serde(default, skip_serializing_if = "Between::is_empty")]
    pub between: Between,
}

/// The checks between two waves, in this order: each host of the wave verified (by its own
/// agent, so a URL like `http://127.0.0.1:8080/health` means "this host"), the analysis, then
/// the bake (a hold: `pause`, `promote` and `abort` work on it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Between {
    /// Checked on every host of the wave just deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifySpec>,
    /// Judged once per wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSpec>,
    /// Held after each wave but the last.
    #[serde(
        default,
        with = "duration_serde",
        skip_serializing_if = "Duration::is_zero"
    )]
    pub bake: Duration,
}

impl Between {
    fn is_empty(&self) -> bool {
        self.verify.is_none() && self.analysis.is_none() && self.bake.is_zero()
    }
}

impl Router {
    /// What is wrong with this router for the fleet `hosts`.
    pub fn problems(&self, hosts: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        if hosts.is_empty() {
            out.push("target.router: a router needs a fleet (`hosts`)".to_owned());
        }
        if let Err(e) = crate::name::Name::parse(&self.host) {
            out.push(format!("target.router.host: {e}"));
        }
        for host in hosts {
            if !self.backends.contains_key(host) {
                out.push(format!(
                    "target.router.backends: no address for host `{host}`"
                ));
            }
        }
        for (host, address) in &self.backends {
            if !hosts.contains(host) {
                out.push(format!(
                    "target.router.backends: `{host}` is not a host of the fleet"
                ));
            }
            if !valid_backend(address) {
                out.push(format!(
                    "target.router.backends.{host}: `{address}` is not host:port"
                ));
            }
        }
        out
    }
}

/// `address:port` as nginx takes it in an upstream: an IP or DNS name, and a port.
pub(crate) fn valid_backend(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
}

impl Waves {
    /// The fleet `hosts` cut into waves, in order; every host is in exactly one.
    pub fn plan<'a>(&self, hosts: &'a [String]) -> Vec<&'a [String]> {
        let fleet = hosts.len();
        let mut ends: Vec<usize> = if self.sizes.is_empty() {
            let step = self.max_unavailable.unwrap_or(1).max(1) as usize;
            (1..)
                .map(|k| (k * step).min(fleet))
                .take(fleet.div_ceil(step))
                .collect()
        } else {
            self.sizes.iter().map(|s| s.cumulative(fleet)).collect()
        };
        // Sizes that round to the same count make no empty wave; the last wave takes the rest.
        ends.dedup();
        if ends.last() != Some(&fleet) {
            ends.push(fleet);
        }
        let mut start = 0;
        let mut waves = Vec::new();
        for end in ends {
            if end > start {
                waves.push(&hosts[start..end]);
                start = end;
            }
        }
        waves
    }

    /// Why these waves cannot be rolled, if they cannot: sizes must grow and end with the
    /// whole fleet, and `max_unavailable` must be at least one.
    pub fn problem(&self) -> Option<String> {
        if self.max_unavailable == Some(0) {
            return Some("max_unavailable must be at least 1".to_owned());
        }
        if !self.sizes.is_empty() && self.max_unavailable.is_some() {
            return Some("give either `waves` or `max_unavailable`, not both".to_owned());
        }
        for pair in self.sizes.windows(2) {
            let grows = match (pair[0], pair[1]) {
                (WaveSize::Hosts(a), WaveSize::Hosts(b)) => a < b,
                (WaveSize::Percent(a), WaveSize::Percent(b)) => a < b,
                _ => true,
            };
            if !grows {
                return Some("wave sizes are cumulative and must grow".to_owned());
            }
        }
        match self.sizes.last() {
            Some(WaveSize::Percent(100)) | None => None,
            Some(_) => Some("the last wave must be `100%` (the whole fleet)".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("web-{i}")).collect()
    }

    fn sizes(waves: &Waves, n: usize) -> Vec<usize> {
        waves.plan(&hosts(n)).iter().map(|w| w.len()).collect()
    }

    #[test]
    fn percentages_are_cumulative_and_round_up() {
        let w = Waves {
            sizes: vec![
                WaveSize::Hosts(1),
                WaveSize::Percent(50),
                WaveSize::Percent(100),
            ],
            ..Waves::default()
        };
        assert_eq!(sizes(&w, 3), [1, 1, 1]);
        assert_eq!(sizes(&w, 4), [1, 1, 2]);
        assert_eq!(sizes(&w, 10), [1, 4, 5]);
        // One host: a single wave, never an empty one.
        assert_eq!(sizes(&w, 1), [1]);
        let three = hosts(3);
        let plan = w.plan(&three);
        assert_eq!(plan[0], ["web-1"]);
        assert_eq!(plan[2], ["web-3"]);
    }

    #[test]
    fn max_unavailable_cuts_equal_waves_and_defaults_to_one() {
        assert_eq!(sizes(&Waves::default(), 3), [1, 1, 1]);
        let two = Waves {
            max_unavailable: Some(2),
            ..Waves::default()
        };
        assert_eq!(sizes(&two, 5), [2, 2, 1]);
        let many = Waves {
            max_unavailable: Some(9),
            ..Waves::default()
        };
        assert_eq!(sizes(&many, 3), [3]);
    }

    #[test]
    fn bad_waves_say_why() {
        let shrinking = Waves {
            sizes: vec![WaveSize::Percent(50), WaveSize::Percent(20)],
            ..Waves::default()
        };
        assert!(
            shrinking
                .problem()
                .expect("a problem")
                .contains("must grow")
        );
        let short = Waves {
            sizes: vec![WaveSize::Hosts(1), WaveSize::Percent(50)],
            ..Waves::default()
        };
        assert!(short.problem().expect("a problem").contains("100%"));
        let zero = Waves {
            max_unavailable: Some(0),
            ..Waves::default()
        };
        assert!(zero.problem().is_some());
    }
}
