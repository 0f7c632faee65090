//! Parsing a Kubernetes target and the deploy and rollback steps that act on it.
//!
//! A deploy on Kubernetes names its manifests (or a kustomize directory) and the image; the
//! objects themselves are read when the plan is loaded ([`crate::plan::attach_manifests`]),
//! since a plan's text alone cannot reach files.

use std::time::Duration;

use super::{Cx, Fields, join, truncate};
use std::collections::BTreeMap;

use crate::plan::kube::{KubeDeploy, KubeJob, KubeProvision, KubeTarget, dns_label};
use crate::plan::types::{
    CommandSpec, DeploySpec, HealthCheck, ProvisionSpec, RollbackSpec, Strategy,
};
use crate::plan::yaml::Node;

/// The keys of a deploy step on a Kubernetes target.
pub(crate) const KUBE_DEPLOY_KEYS: &[&str] = &[
    "strategy",
    "manifests",
    "kustomize",
    "image",
    "container",
    "deployment",
    "service",
    "route",
    "max_surge",
    "max_unavailable",
    "progress_deadline",
    "rollback_window",
    "canary",
    "analysis",
];

/// The keys of a provision step on a Kubernetes target.
pub(crate) const KUBE_PROVISION_KEYS: &[&str] = &[
    "namespace_labels",
    "service_account",
    "resource_quota",
    "secrets",
];

/// Longest time a Deployment may go without progress.
const MAX_PROGRESS_DEADLINE: Duration = Duration::from_secs(6 * 3600);

impl Cx {
    /// `context` and `namespace` of a `driver: kubernetes` target.
    pub(super) fn kube_target(&mut self, fields: &Fields<'_>) -> Option<KubeTarget> {
        let context = match fields.get("context") {
            Some(n) => {
                let text = self.string(n, "target.context")?;
                if text.is_empty()
                    || text.len() > 253
                    || text.contains('/')
                    || text.chars().any(char::is_control)
                {
                    self.report(
                        n,
                        "target.context",
                        format!("`{}` is not a kubeconfig context name", truncate(&text)),
                        "use the name `kubectl config get-contexts` shows, without `/`",
                    );
                    return None;
                }
                Some(text)
            }
            None => None,
        };
        let namespace = self.required(
            fields,
            "namespace",
            "name the namespace the release lives in, e.g. `namespace: checkout`",
        )?;
        let text = self.string(namespace, "target.namespace")?;
        if !dns_label(&text) {
            self.report(
                namespace,
                "target.namespace",
                format!("`{}` is not a valid namespace name", truncate(&text)),
                "use 1 to 63 lowercase letters, digits or `-`, starting and ending with a letter or digit",
            );
            return None;
        }
        Some(KubeTarget {
            context,
            namespace: text,
        })
    }

    /// A Kubernetes object name (a DNS-1123 label), or a report saying why not.
    pub(super) fn kube_name(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.string(node, path)?;
        if dns_label(&text) {
            return Some(text);
        }
        self.report(
            node,
            path,
            format!("`{}` is not a valid Kubernetes name", truncate(&text)),
            "use 1 to 63 lowercase letters, digits or `-`",
        );
        None
    }

    /// A deploy step on a Kubernetes target.
    pub(super) fn kube_deploy(
        &mut self,
        fields: &Fields<'_>,
        path: &str,
        target: &KubeTarget,
    ) -> Option<DeploySpec> {
        let strategy = self.strategy(fields, path);
        let manifests = match fields.get("manifests") {
            Some(n) => self.string_list(n, &join(path, "manifests")),
            None => Some(Vec::new()),
        };
        let kustomize = match fields.get("kustomize") {
            Some(_) => self
                .path_value(
                    fields,
                    "kustomize",
                    path,
                    "give the kustomize directory, e.g. `kustomize: k8s/overlays/prod`",
                )
                .map(Some),
            None => Some(None),
        };
        if let (Some(m), Some(k)) = (&manifests, &kustomize) {
            let node = fields.get("kustomize").unwrap_or(fields.node);
            match (m.is_empty(), k.is_some()) {
                (true, false) => {
                    self.report(
                        fields.node,
                        &join(path, "manifests"),
                        "a deploy on Kubernetes needs its manifests",
                        "add `manifests: [k8s/app.yaml]` or `kustomize: k8s/overlays/prod`",
                    );
                    return None;
                }
                (false, true) => {
                    self.report(
                        node,
                        &join(path, "kustomize"),
                        "the deploy gives both `manifests` and `kustomize`",
                        "keep one: list the files, or name the kustomize directory",
                    );
                    return None;
                }
                _ => {}
            }
        }
        let image = self
            .required(
                fields,
                "image",
                "give the image repository, e.g. `image: registry.example.com/checkout`; the version becomes its tag",
            )
            .and_then(|n| {
                let text = self.string(n, &join(path, "image"))?;
                let bad = text.is_empty()
                    || text.len() > 255
                    || text.contains('@')
                    || text.rsplit('/').next().is_some_and(|last| last.contains(':'))
                    || text.chars().any(|c| c.is_whitespace() || c.is_control());
                if bad {
                    self.report(
                        n,
                        &join(path, "image"),
                        format!("`{}` is not an image repository", truncate(&text)),
                        "give the repository without a tag or digest, e.g. `registry.example.com/checkout`; the version is appended",
                    );
                    return None;
                }
                Some(text)
            });
        let label = |cx: &mut Self, key: &str| -> Option<Option<String>> {
            match fields.get(key) {
                Some(n) => cx.kube_name(n, &join(path, key)).map(Some),
                None => Some(None),
            }
        };
        let container = label(self, "container");
        let deployment = label(self, "deployment");
        let service = label(self, "service");
        let route = label(self, "route");
        if strategy.is_some_and(|s| s != Strategy::Canary)
            && let Some(n) = fields.get("route")
        {
            self.report(
                n,
                &join(path, "route"),
                "`route` splits a canary's traffic by HTTPRoute weights",
                "remove it, or use `strategy: canary`",
            );
            return None;
        }
        let surge = |cx: &mut Self, key: &str| -> Option<Option<String>> {
            let Some(n) = fields.get(key) else {
                return Some(None);
            };
            let text = cx.string(n, &join(path, key))?;
            let number = text.strip_suffix('%').unwrap_or(&text);
            let ok = number
                .parse::<u32>()
                .is_ok_and(|v| !text.ends_with('%') || v <= 100);
            if ok {
                Some(Some(text))
            } else {
                cx.report(
                    n,
                    &join(path, key),
                    format!(
                        "`{}` is not a number of pods or a percentage",
                        truncate(&text)
                    ),
                    "write e.g. `1` or `25%`",
                );
                None
            }
        };
        let max_surge = surge(self, "max_surge");
        let max_unavailable = surge(self, "max_unavailable");
        if strategy.is_some_and(|s| s != Strategy::Rolling)
            && let Some(n) = fields
                .get("max_surge")
                .or_else(|| fields.get("max_unavailable"))
        {
            self.report(
                n,
                path,
                "`max_surge` and `max_unavailable` apply to rolling deploys",
                "remove them, or use `strategy: rolling`",
            );
            return None;
        }
        let progress_deadline = match fields.get("progress_deadline") {
            Some(n) => self
                .duration(n, &join(path, "progress_deadline"))
                .and_then(|d| {
                    if d < Duration::from_secs(1) || d > MAX_PROGRESS_DEADLINE {
                        self.report(
                            n,
                            &join(path, "progress_deadline"),
                            "the progress deadline must be between 1s and 6h",
                            "Kubernetes counts it in whole seconds; e.g. `progress_deadline: 5m`",
                        );
                        return None;
                    }
                    Some(d)
                }),
            None => Some(Duration::from_secs(600)),
        };
        let rollback_window = match fields.get("rollback_window") {
            Some(n) => self.duration_or_zero(n, &join(path, "rollback_window")),
            None => Some(Duration::from_secs(30)),
        };
        let canary = match fields.get("canary") {
            Some(n) => self.canary(n, &join(path, "canary")),
            None => Some(Vec::new()),
        };
        let analysis = match fields.get("analysis") {
            Some(n) => self.analysis_block(n, &join(path, "analysis")).map(Some),
            None => Some(None),
        };
        if let Some(strategy) = strategy {
            let canary_ok = self.canary_fits(fields, path, strategy, canary.as_deref());
            let analysis_ok = self.analysis_fits(fields, path, strategy, analysis.as_ref());
            if !canary_ok || !analysis_ok {
                return None;
            }
        }
        let progress_deadline = progress_deadline?;
        Some(DeploySpec {
            root: target.location(),
            strategy: strategy?,
            start: CommandSpec {
                command: String::new(),
                args: Vec::new(),
                env: Default::default(),
                secret_env: Default::default(),
                workdir: None,
            },
            instances: 1,
            base_port: 0,
            listen: 0,
            listen_address: None,
            health: HealthCheck {
                path: String::new(),
                expect_status: 200,
                timeout: progress_deadline,
                interval: Duration::from_secs(1),
                request_timeout: None,
            },
            rollback_window: rollback_window?,
            canary: canary?,
            analysis: analysis?,
            waves: None,
            kubernetes: Some(Box::new(KubeDeploy {
                manifests: manifests?,
                kustomize: kustomize?,
                image: image?,
                container: container?,
                deployment: deployment?.unwrap_or_default(),
                service: service?,
                route: route?,
                max_surge: max_surge?,
                max_unavailable: max_unavailable?,
                progress_deadline,
                objects: Vec::new(),
            })),
        })
    }

    /// A `migrate` step on a Kubernetes target: `job: { image, command, args, env,
    /// env_from_secrets }`.
    pub(super) fn kube_job(
        &mut self,
        fields: &Fields<'_>,
        path: &str,
        target: &KubeTarget,
    ) -> Option<KubeJob> {
        if let Some(n) = fields.get("direction") {
            self.report(
                n,
                &join(path, "direction"),
                "`direction` on a Kubernetes migration Job".to_owned(),
                "the Job's own command decides: pass it in `job.args`, e.g. `args: [down, \"1\"]`",
            );
            return None;
        }
        let node = self.required(
            fields,
            "job",
            "on Kubernetes a migration runs as a Job: `job: { image: registry.example.com/shop-migrate, command: [./migrate, up] }`",
        )?;
        let p = join(path, "job");
        let job = self.fields(node, &p)?;
        self.unknown_keys(
            &job,
            &["image", "command", "args", "env", "env_from_secrets"],
        );
        let image = self
            .required(&job, "image", "give the migration's image, e.g. `image: registry.example.com/shop-migrate`")
            .and_then(|n| {
                let text = self.string(n, &join(&p, "image"))?;
                if text.is_empty() || text.len() > 255 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    self.report(n, &join(&p, "image"), format!("`{}` is not an image", truncate(&text)), "e.g. `registry.example.com/shop-migrate` (the version becomes its tag) or `...:1.2.0`");
                    return None;
                }
                Some(text)
            });
        let list = |cx: &mut Self, key: &str| match job.get(key) {
            Some(n) => cx.string_list(n, &join(&p, key)),
            None => Some(Vec::new()),
        };
        let command = list(self, "command");
        let args = list(self, "args");
        let secrets = list(self, "env_from_secrets").and_then(|names| {
            match names.iter().find(|n| !dns_label(n)) {
                Some(bad) => {
                    self.report(
                        job.get("env_from_secrets").unwrap_or(node),
                        &join(&p, "env_from_secrets"),
                        format!("`{}` is not a Secret name", truncate(bad)),
                        "name Secrets that exist in the target's namespace",
                    );
                    None
                }
                None => Some(names),
            }
        });
        let env = match job.get("env") {
            Some(n) => {
                let ep = join(&p, "env");
                let f = self.fields(n, &ep)?;
                let mut out = std::collections::BTreeMap::new();
                for (k, (_, v)) in &f.entries {
                    if let Some(v) = self.string(v, &join(&ep, k)) {
                        out.insert(k.clone(), v);
                    }
                }
                Some(out)
            }
            None => Some(Default::default()),
        };
        Some(KubeJob {
            root: target.location(),
            image: image?,
            command: command?,
            args: args?,
            env: env?,
            env_from_secrets: secrets?,
        })
    }

    /// A `provision` step on a Kubernetes target.
    pub(super) fn kube_provision(
        &mut self,
        fields: &Fields<'_>,
        path: &str,
        target: &KubeTarget,
    ) -> Option<ProvisionSpec> {
        let map = |cx: &mut Self, key: &str| -> Option<BTreeMap<String, String>> {
            let Some(n) = fields.get(key) else {
                return Some(BTreeMap::new());
            };
            let p = join(path, key);
            let f = cx.fields(n, &p)?;
            let mut out = BTreeMap::new();
            let mut ok = true;
            for (k, (key_node, v)) in &f.entries {
                let valid = !k.is_empty()
                    && k.len() <= 253
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
                if !valid {
                    cx.report(
                        key_node,
                        &join(&p, k),
                        format!("`{}` is not a valid key", truncate(k)),
                        "use letters, digits, `-`, `_`, `.` and one `/` prefix",
                    );
                    ok = false;
                }
                match cx.string(v, &join(&p, k)) {
                    Some(v) => {
                        out.insert(k.clone(), v);
                    }
                    None => ok = false,
                }
            }
            ok.then_some(out)
        };
        let namespace_labels = map(self, "namespace_labels");
        let resource_quota = map(self, "resource_quota");
        let service_account = match fields.get("service_account") {
            Some(n) => {
                let text = self.string(n, &join(path, "service_account"))?;
                if dns_label(&text) {
                    Some(Some(text))
                } else {
                    self.report(
                        n,
                        &join(path, "service_account"),
                        format!("`{}` is not a valid name", truncate(&text)),
                        "use 1 to 63 lowercase letters, digits or `-`",
                    );
                    None
                }
            }
            None => Some(None),
        };
        let secrets = match fields.get("secrets") {
            Some(n) => {
                let p = join(path, "secrets");
                let f = self.fields(n, &p)?;
                let mut out = BTreeMap::new();
                let mut ok = true;
                for (name, (name_node, refs)) in &f.entries {
                    if !dns_label(name) {
                        self.report(
                            name_node,
                            &join(&p, name),
                            format!("`{}` is not a valid Secret name", truncate(name)),
                            "use 1 to 63 lowercase letters, digits or `-`",
                        );
                        ok = false;
                        continue;
                    }
                    match self.secret_env(refs, &join(&p, name)) {
                        Some(r) => {
                            out.insert(name.clone(), r);
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            None => Some(BTreeMap::new()),
        };
        Some(ProvisionSpec {
            root: target.location(),
            database: None,
            env_file: BTreeMap::new(),
            kubernetes: Some(Box::new(KubeProvision {
                namespace_labels: namespace_labels?,
                service_account: service_account?,
                resource_quota: resource_quota?,
                secrets: secrets?,
            })),
        })
    }

    /// A rollback step on a Kubernetes target: the target says where.
    pub(super) fn kube_rollback(&mut self, target: &KubeTarget) -> RollbackSpec {
        RollbackSpec {
            root: target.location(),
        }
    }

    /// Refuses a `root` on a Kubernetes deploy or rollback, where the target says where.
    pub(super) fn no_root(&mut self, node: &Node, path: &str) {
        self.report(
            node,
            &join(path, "root"),
            "a Kubernetes target has no release root",
            "remove `root`; the release lives in the target's namespace",
        );
    }
}
