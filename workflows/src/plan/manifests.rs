//! A Kubernetes deploy's manifests, read into its plan when the plan is loaded.
//!
//! The objects go into the workflow's input, so every attempt on every worker applies the same
//! objects, and a worker that restarts mid-rollout cannot pick up an edited file. That is why
//! they are checked here, with positions in their own files: kinds the driver may apply,
//! names, images, and that the Deployment and Service the strategy acts on exist.

use std::collections::BTreeMap;

use super::diagnostic::Diagnostic;
use super::kube::{KINDS, KubeDeploy, KubeTarget, dns_label};
use super::parse::cx::{Cx, join, to_json, truncate};
use super::types::{Plan, StepAction, Strategy};
use super::yaml::{self, Node};

/// Largest total size of one deploy's objects, as JSON: they travel in workflow history with
/// every deploy activity's input.
pub const MAX_OBJECTS_BYTES: usize = 256 * 1024;

/// Most objects one deploy applies.
const MAX_OBJECTS: usize = 64;

/// A problem in a manifest (or with reading one), in the file it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    /// The file as the plan names it (or the kustomize directory).
    pub file: String,
    /// Where and what.
    pub diagnostic: Diagnostic,
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.diagnostic.render(&self.file))
    }
}

/// Where a deploy's manifests come from.
pub enum Source<'a> {
    /// A file the plan lists.
    File(&'a str),
    /// A kustomize directory, rendered.
    Kustomize(&'a str),
}

/// Reads the objects of every Kubernetes deploy of `plan`: `read` returns a manifest file's
/// text or a kustomize directory's rendering (or why it cannot). Returns every problem.
///
/// # Errors
/// Each problem with its file, line and column.
pub fn attach_manifests(
    plan: &mut Plan,
    mut read: impl FnMut(Source<'_>) -> Result<String, String>,
) -> Result<(), Vec<ManifestError>> {
    let Some(target) = plan.target.kubernetes.clone() else {
        return Ok(());
    };
    let mut problems = Vec::new();
    for (i, step) in plan.steps.iter_mut().enumerate() {
        let StepAction::Deploy(spec) = &mut step.action else {
            continue;
        };
        let strategy = spec.strategy;
        let Some(kube) = spec.kubernetes.as_deref_mut() else {
            continue;
        };
        let path = format!("steps[{i}]");
        let mut docs: Vec<(String, Node)> = Vec::new();
        let sources: Vec<(String, bool)> = match &kube.kustomize {
            Some(dir) => vec![(dir.clone(), true)],
            None => kube.manifests.iter().map(|f| (f.clone(), false)).collect(),
        };
        for (file, kustomized) in sources {
            let text = match read(if kustomized {
                Source::Kustomize(&file)
            } else {
                Source::File(&file)
            }) {
                Ok(t) => t,
                Err(why) => {
                    problems.push(at_file(&file, &path, why));
                    continue;
                }
            };
            match yaml::read_documents(&text) {
                Ok(nodes) => docs.extend(nodes.into_iter().map(|n| (file.clone(), n))),
                Err(d) => problems.push(ManifestError {
                    file: file.clone(),
                    diagnostic: d,
                }),
            }
        }
        if problems.is_empty() {
            problems.extend(check(kube, &target, strategy, &docs, &path));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn at_file(file: &str, path: &str, message: String) -> ManifestError {
    ManifestError {
        file: file.to_owned(),
        diagnostic: Diagnostic {
            line: 1,
            column: 1,
            path: path.to_owned(),
            message,
            hint: None,
        },
    }
}

/// One object's facts the checks need.
struct Object {
    file: String,
    node: Node,
    kind: String,
    name: String,
}

/// Checks `docs` and, when they pass, stores them in `kube.objects` and fills in the names of
/// the Deployment and Service the strategy acts on.
fn check(
    kube: &mut KubeDeploy,
    target: &KubeTarget,
    strategy: Strategy,
    docs: &[(String, Node)],
    step: &str,
) -> Vec<ManifestError> {
    let mut problems = Vec::new();
    let mut objects = Vec::new();
    for (file, node) in docs {
        let mut cx = Cx::default();
        if let Some(o) = object(&mut cx, node, target) {
            objects.push(Object {
                file: file.clone(),
                node: node.clone(),
                kind: o.0,
                name: o.1,
            });
        }
        problems.extend(cx.take_problems().into_iter().map(|d| ManifestError {
            file: file.clone(),
            diagnostic: d,
        }));
    }
    if !problems.is_empty() {
        return problems;
    }
    let mut seen = BTreeMap::new();
    for o in &objects {
        if seen.insert((o.kind.clone(), o.name.clone()), ()).is_some() {
            problems.push(ManifestError {
                file: o.file.clone(),
                diagnostic: diag(
                    &o.node,
                    "metadata.name",
                    format!("{} `{}` is defined twice", o.kind, o.name),
                    "keep one definition",
                ),
            });
        }
    }
    let first = docs.first().map(|(f, _)| f.clone()).unwrap_or_default();
    let whole = |message: String, hint: &str| ManifestError {
        file: first.clone(),
        diagnostic: Diagnostic {
            line: 1,
            column: 1,
            path: step.to_owned(),
            message,
            hint: Some(hint.to_owned()),
        },
    };
    if objects.is_empty() {
        problems.push(whole(
            "the manifests hold no object".to_owned(),
            "list files with at least the Deployment",
        ));
        return problems;
    }
    if objects.len() > MAX_OBJECTS {
        problems.push(whole(
            format!(
                "the manifests hold {} objects; at most {MAX_OBJECTS}",
                objects.len()
            ),
            "split the service, or apply shared objects apart from the release",
        ));
    }
    let named =
        |kind: &str| -> Vec<&Object> { objects.iter().filter(|o| o.kind == kind).collect() };
    let deployments = named("Deployment");
    let deployment = match (kube.deployment.as_str(), deployments.as_slice()) {
        ("", [only]) => Some(*only),
        ("", []) => {
            problems.push(whole(
                "the manifests hold no Deployment".to_owned(),
                "add the Deployment the release updates",
            ));
            None
        }
        ("", _) => {
            problems.push(whole(
                format!(
                    "the manifests hold {} Deployments; the deploy must say which one it updates",
                    deployments.len()
                ),
                "add `deployment: NAME` to the step",
            ));
            None
        }
        (name, all) => {
            let found = all.iter().find(|o| o.name == name).copied();
            if found.is_none() {
                problems.push(whole(
                    format!("the manifests hold no Deployment `{}`", truncate(name)),
                    &format!(
                        "Deployments found: {}",
                        all.iter()
                            .map(|o| o.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            found
        }
    };
    if let Some(d) = deployment {
        kube.deployment = d.name.clone();
        let mut cx = Cx::default();
        check_containers(&mut cx, &d.node, kube.container.as_deref());
        problems.extend(
            cx.take_problems()
                .into_iter()
                .map(|diagnostic| ManifestError {
                    file: d.file.clone(),
                    diagnostic,
                }),
        );
    }
    let services = named("Service");
    let switched = strategy != Strategy::Rolling;
    match (kube.service.as_deref(), services.as_slice()) {
        (None, [only]) => kube.service = Some(only.name.clone()),
        (None, []) if switched => problems.push(whole(
            "a blue-green or canary deploy switches a Service's selector, and the manifests hold no Service".to_owned(),
            "add the Service that carries the traffic",
        )),
        (None, []) => {}
        (None, _) if switched => problems.push(whole(
            format!("the manifests hold {} Services; the deploy must say which one carries the traffic", services.len()),
            "add `service: NAME` to the step",
        )),
        (None, _) => {}
        (Some(name), all) => {
            if !all.iter().any(|o| o.name == name) {
                problems.push(whole(
                    format!("the manifests hold no Service `{}`", truncate(name)),
                    "name a Service the manifests define",
                ));
            }
        }
    }
    check_route(&mut problems, &objects, kube, strategy, &whole);
    if !problems.is_empty() {
        return problems;
    }
    kube.objects = objects.iter().map(|o| to_json(&o.node)).collect();
    let size = serde_json::to_vec(&kube.objects).map_or(0, |v| v.len());
    if size > MAX_OBJECTS_BYTES {
        kube.objects.clear();
        problems.push(whole(
            format!("the manifests are {size} bytes as JSON; at most {MAX_OBJECTS_BYTES}"),
            "they travel in workflow history: keep large configuration in ConfigMaps applied apart from the release",
        ));
    }
    problems
}

/// A canary's HTTPRoute: the one the step names, which must send the traffic Service's
/// requests somewhere for the driver to split them, or else the manifests' only HTTPRoute if
/// it does.
fn check_route(
    problems: &mut Vec<ManifestError>,
    objects: &[Object],
    kube: &mut KubeDeploy,
    strategy: Strategy,
    whole: &impl Fn(String, &str) -> ManifestError,
) {
    let routes: Vec<&Object> = objects.iter().filter(|o| o.kind == "HTTPRoute").collect();
    let route = match (kube.route.as_deref(), routes.as_slice()) {
        (None, [only]) if strategy == Strategy::Canary => *only,
        (None, _) => return,
        (Some(name), all) => match all.iter().find(|o| o.name == name) {
            Some(found) => found,
            None => {
                problems.push(whole(
                    format!("the manifests hold no HTTPRoute `{}`", truncate(name)),
                    "add the HTTPRoute that carries the service's traffic, or remove `route`",
                ));
                return;
            }
        },
    };
    let Some(service) = kube.service.as_deref() else {
        return;
    };
    let json = to_json(&route.node);
    let sends = json["spec"]["rules"].as_array().is_some_and(|rules| {
        rules.iter().any(|r| {
            r["backendRefs"]
                .as_array()
                .is_some_and(|b| b.iter().any(|b| b["name"] == service))
        })
    });
    if sends {
        kube.route = Some(route.name.clone());
    } else if kube.route.is_some() {
        problems.push(ManifestError {
            file: route.file.clone(),
            diagnostic: diag(
                &route.node,
                "spec.rules",
                format!(
                    "HTTPRoute `{}` has no backendRef to Service `{service}`",
                    route.name
                ),
                "the canary splits the backendRefs that name the traffic Service; add one",
            ),
        });
    }
}

fn diag(node: &Node, path: &str, message: String, hint: &str) -> Diagnostic {
    Diagnostic {
        line: node.line,
        column: node.column,
        path: path.to_owned(),
        message,
        hint: Some(hint.to_owned()),
    }
}

/// One manifest document: its kind and name, checked.
fn object(cx: &mut Cx, node: &Node, target: &KubeTarget) -> Option<(String, String)> {
    let fields = cx.fields(node, "")?;
    let api = cx.required(
        &fields,
        "apiVersion",
        "every object needs `apiVersion`, e.g. `apps/v1`",
    );
    let kind_node = cx.required(
        &fields,
        "kind",
        "every object needs `kind`, e.g. `Deployment`",
    );
    let meta = cx.required(
        &fields,
        "metadata",
        "every object needs `metadata: { name: ... }`",
    );
    let api = api.and_then(|n| cx.string(n, "apiVersion"));
    let kind = kind_node.and_then(|n| cx.string(n, "kind"));
    let (api, kind, kind_node, meta) = (api?, kind?, kind_node?, meta?);
    if !KINDS.iter().any(|(a, k)| *a == api && *k == kind) {
        let hint = if kind == "Secret" {
            "a Secret's value in a manifest would enter workflow history; create it apart from the release and refer to it".to_owned()
        } else {
            format!(
                "the driver applies: {}",
                KINDS
                    .iter()
                    .map(|(a, k)| format!("{k} ({a})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        cx.report(
            kind_node,
            "kind",
            format!(
                "Cutover does not apply {} `{}`",
                truncate(&api),
                truncate(&kind)
            ),
            &hint,
        );
        return None;
    }
    let meta = cx.fields(meta, "metadata")?;
    let name_node = cx.required(&meta, "name", "give the object a name")?;
    let name = cx.string(name_node, "metadata.name")?;
    if !dns_label(&name) {
        cx.report(
            name_node,
            "metadata.name",
            format!("`{}` is not a valid name", truncate(&name)),
            "use 1 to 63 lowercase letters, digits or `-`",
        );
        return None;
    }
    if let Some(ns) = meta.get("namespace") {
        let text = cx.string(ns, "metadata.namespace")?;
        if text != target.namespace {
            cx.report(
                ns,
                "metadata.namespace",
                format!(
                    "the object is in namespace `{}`, and the target's namespace is `{}`",
                    truncate(&text),
                    target.namespace
                ),
                "remove `metadata.namespace`; objects go to the target's namespace",
            );
            return None;
        }
    }
    Some((kind, name))
}

/// A Deployment's containers: the one the plan sets the image of exists, every other has an
/// image of its own.
fn check_containers(cx: &mut Cx, node: &Node, container: Option<&str>) {
    let path = "spec.template.spec.containers";
    let containers = (|| {
        let f = cx.fields(node, "")?;
        let spec = cx.required(
            &f,
            "spec",
            "a Deployment needs `spec.template.spec.containers`",
        )?;
        let f = cx.fields(spec, "spec")?;
        let template = cx.required(&f, "template", "a Deployment needs `spec.template`")?;
        let f = cx.fields(template, "spec.template")?;
        let pod = cx.required(&f, "spec", "a Deployment needs `spec.template.spec`")?;
        let f = cx.fields(pod, "spec.template.spec")?;
        cx.required(&f, "containers", "list the pod's containers")
    })();
    let Some(list) = containers else { return };
    let yaml::Value::Sequence(items) = &list.value else {
        cx.report(
            list,
            path,
            "expected a list of containers",
            "write one `- name: ...` per container",
        );
        return;
    };
    let mut names = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(f) = cx.fields(item, &p) else {
            continue;
        };
        let name = f
            .get("name")
            .and_then(|n| cx.string(n, &join(&p, "name")))
            .unwrap_or_default();
        let set_here = match container {
            Some(c) => c == name,
            None => i == 0,
        };
        if !set_here && f.get("image").is_none() {
            cx.report(
                item,
                &join(&p, "image"),
                format!("container `{}` has no image", truncate(&name)),
                "give it an `image`; only the deploy's container gets the release's image",
            );
        }
        names.push(name);
    }
    if items.is_empty() {
        cx.report(
            list,
            path,
            "the Deployment has no container",
            "add the service's container",
        );
    }
    if let Some(c) = container
        && !names.iter().any(|n| n == c)
    {
        cx.report(
            list,
            path,
            format!("the Deployment has no container `{}`", truncate(c)),
            &format!("containers: {}", names.join(", ")),
        );
    }
}
