//! Kubernetes targets: `driver: kubernetes`, deploys with manifests and an image, and what a
//! cluster target refuses; the manifests themselves, read into the plan.

use super::tests::problems;
use super::*;
use crate::plan::manifests::Source;
use crate::plan::{ManifestError, attach_manifests};

const KUBE: &str = r#"
service: shop
environment: prod
version: "1.4.2"
target: { driver: kubernetes, context: prod-eu, namespace: shop }
steps:
  - name: ship
    kind: deploy
    strategy: blue-green
    manifests: [k8s/shop.yaml]
    image: registry.example.com/shop
    progress_deadline: 2m
  - name: back
    kind: rollback
"#;

const MANIFEST: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  replicas: 3
  selector: { matchLabels: { app: shop } }
  template:
    metadata: { labels: { app: shop } }
    spec:
      containers:
        - name: app
        - name: proxy
          image: envoyproxy/envoy:v1.30
---
apiVersion: v1
kind: Service
metadata: { name: shop }
spec: { selector: { app: shop }, ports: [{ port: 80 }] }
";

fn kube_with(from: &str, to: &str) -> String {
    assert!(KUBE.contains(from), "{from}");
    KUBE.replace(from, to)
}

fn messages(text: &str) -> Vec<String> {
    problems(text).into_iter().map(|d| d.message).collect()
}

fn attach(plan: &mut Plan, manifest: &str) -> Result<(), Vec<ManifestError>> {
    attach_manifests(plan, |source| match source {
        Source::File("k8s/shop.yaml") => Ok(manifest.to_owned()),
        Source::File(other) => Err(format!("no file {other}")),
        Source::Kustomize(_) => Err("no kustomize here".to_owned()),
    })
}

#[test]
fn a_kubernetes_plan_reads_its_target_and_deploy() {
    let plan = parse_plan(KUBE, PlanLimits::default()).expect("valid");
    assert_eq!(plan.target.driver, Driver::Kubernetes);
    let kube = plan.target.kubernetes.as_ref().expect("cluster");
    assert_eq!(
        (kube.context.as_deref(), kube.namespace.as_str()),
        (Some("prod-eu"), "shop")
    );
    let StepAction::Deploy(spec) = &plan.steps[0].action else {
        panic!("a deploy")
    };
    assert_eq!(spec.root, "kubernetes://prod-eu/shop");
    let k = spec.kubernetes.as_deref().expect("kubernetes section");
    assert_eq!(k.image_of("1.4.2"), "registry.example.com/shop:1.4.2");
    assert_eq!(k.progress_deadline, Duration::from_secs(120));
    let StepAction::Rollback(back) = &plan.steps[1].action else {
        panic!("a rollback")
    };
    assert_eq!(back.root, spec.root, "a rollback acts where the deploy did");
    assert!(
        plan.problems()
            .iter()
            .any(|p| p.contains("carries no objects")),
        "a plan whose manifests were not read is refused as workflow input"
    );
}

#[test]
fn manifests_are_read_into_the_plan_with_the_names_filled_in() {
    let mut plan = parse_plan(KUBE, PlanLimits::default()).expect("valid");
    attach(&mut plan, MANIFEST).expect("valid manifests");
    let StepAction::Deploy(spec) = &plan.steps[0].action else {
        panic!("a deploy")
    };
    let k = spec.kubernetes.as_deref().expect("kubernetes section");
    assert_eq!(k.objects.len(), 2);
    assert_eq!(k.deployment, "shop");
    assert_eq!(k.service.as_deref(), Some("shop"));
    assert!(plan.problems().is_empty(), "{:?}", plan.problems());
}

#[test]
fn bad_manifests_are_refused_with_their_file_line_and_column() {
    let cases = [
        (
            MANIFEST.replace("kind: Service", "kind: Secret"),
            "Cutover does not apply v1 `Secret`",
            (17, 7),
        ),
        (
            MANIFEST.replace("kind: Service", "kind: Sevrice"),
            "does not apply v1 `Sevrice`",
            (17, 7),
        ),
        (
            MANIFEST.replace("          image: envoyproxy/envoy:v1.30\n", ""),
            "container `proxy` has no image",
            (13, 11),
        ),
        (
            MANIFEST.replace(
                "  name: shop\nspec:\n  replicas",
                "  name: shop\n  namespace: other\nspec:\n  replicas",
            ),
            "the object is in namespace `other`",
            (5, 14),
        ),
        (
            MANIFEST.replace("  selector: { matchLabels", "  selector: [ matchLabels"),
            "invalid YAML",
            (8, 3),
        ),
    ];
    for (text, message, (line, column)) in cases {
        let mut plan = parse_plan(KUBE, PlanLimits::default()).expect("valid");
        let errors = attach(&mut plan, &text).expect_err(message);
        let hit = errors
            .iter()
            .find(|e| e.diagnostic.message.contains(message))
            .unwrap_or_else(|| panic!("{message}: {errors:?}"));
        assert_eq!(hit.file, "k8s/shop.yaml");
        assert_eq!(
            (hit.diagnostic.line, hit.diagnostic.column),
            (line, column),
            "{message}"
        );
    }
}

#[test]
fn a_missing_file_and_a_missing_deployment_are_said_plainly() {
    let mut plan = parse_plan(
        &kube_with("k8s/shop.yaml", "k8s/nope.yaml"),
        PlanLimits::default(),
    )
    .expect("valid");
    let errors = attach(&mut plan, MANIFEST).expect_err("missing file");
    assert!(
        errors[0].to_string().contains("no file k8s/nope.yaml"),
        "{errors:?}"
    );

    let mut plan = parse_plan(KUBE, PlanLimits::default()).expect("valid");
    let only_service = MANIFEST.split("---\n").nth(1).unwrap_or_default();
    let errors = attach(&mut plan, only_service).expect_err("no deployment");
    assert!(
        errors
            .iter()
            .any(|e| e.diagnostic.message.contains("no Deployment")),
        "{errors:?}"
    );

    let mut plan = parse_plan(
        &kube_with(
            "image: registry.example.com/shop",
            "image: registry.example.com/shop\n    container: sidecar",
        ),
        PlanLimits::default(),
    )
    .expect("valid");
    let errors = attach(&mut plan, MANIFEST).expect_err("no such container");
    assert!(
        errors
            .iter()
            .any(|e| e.diagnostic.message.contains("no container `sidecar`")),
        "{errors:?}"
    );
}

#[test]
fn a_kubernetes_target_refuses_what_belongs_to_hosts() {
    for (from, to, message) in [
        (
            "namespace: shop",
            "namespace: Shop_1",
            "not a valid namespace name",
        ),
        (
            "namespace: shop }",
            "namespace: shop, hosts: [web-1] }",
            "a Kubernetes target has none",
        ),
        (
            "context: prod-eu, namespace: shop",
            "context: prod-eu",
            "missing required key `namespace`",
        ),
        ("driver: kubernetes, ", "", "belongs to a Kubernetes target"),
        (
            "driver: kubernetes",
            "driver: nomad",
            "unknown driver `nomad`",
        ),
        (
            "image: registry.example.com/shop",
            "image: registry.example.com/shop:1.0",
            "not an image repository",
        ),
        (
            "    image: registry.example.com/shop\n",
            "",
            "missing required key `image`",
        ),
        (
            "    manifests: [k8s/shop.yaml]\n",
            "",
            "needs its manifests",
        ),
        (
            "manifests: [k8s/shop.yaml]",
            "manifests: [k8s/shop.yaml]\n    kustomize: k8s/prod",
            "both `manifests` and `kustomize`",
        ),
        (
            "progress_deadline: 2m",
            "progress_deadline: 9h",
            "between 1s and 6h",
        ),
        (
            "strategy: blue-green",
            "strategy: blue-green\n    max_surge: 25%",
            "apply to rolling deploys",
        ),
        (
            "strategy: blue-green",
            "strategy: rolling\n    max_surge: lots",
            "not a number of pods or a percentage",
        ),
        (
            "    strategy: blue-green\n",
            "    strategy: blue-green\n    base_port: 18100\n",
            "unknown key `base_port`",
        ),
        (
            "  - name: back\n    kind: rollback\n",
            "  - name: back\n    kind: rollback\n    root: /srv\n",
            "has no release root",
        ),
        (
            "  - name: back\n    kind: rollback\n",
            "  - name: lay\n    kind: provision\n    root: /srv\n",
            "unknown key `root`",
        ),
        (
            "  - name: back\n    kind: rollback\n",
            "  - name: lay\n    kind: provision\n    secrets: { Shop_DB: { URL: { env: X } } }\n",
            "not a valid Secret name",
        ),
        (
            "  - name: back\n    kind: rollback\n",
            "  - name: lay\n    kind: provision\n    secrets: { shop-db: { URL: 12 } }\n",
            "expected a mapping of keys to values",
        ),
        (
            "  - name: back\n    kind: rollback\n",
            "  - name: lay\n    kind: provision\n    resource_quota: { \"cpu limit\": \"4\" }\n",
            "not a valid key",
        ),
        (
            "version: \"1.4.2\"",
            "version: \"1.4.2+build\"",
            "cannot be an image tag",
        ),
    ] {
        let found = messages(&kube_with(from, to));
        assert!(
            found.iter().any(|m| m.contains(message)),
            "{from} → {to}: expected `{message}` in {found:?}"
        );
    }
}

const ROUTE: &str = "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: shop }
spec:
  parentRefs: [{ name: public }]
  rules:
    - backendRefs: [{ name: shop, port: 80 }]
";

#[test]
fn a_canary_takes_the_httproute_that_sends_to_its_service() {
    let canary = kube_with(
        "strategy: blue-green",
        "strategy: canary\n    canary: [{ weight: 100 }]",
    );
    let mut plan = parse_plan(&canary, PlanLimits::default()).expect("valid");
    attach(&mut plan, &format!("{MANIFEST}{ROUTE}")).expect("valid manifests");
    let StepAction::Deploy(spec) = &plan.steps[0].action else {
        panic!("a deploy")
    };
    let k = spec.kubernetes.as_deref().expect("kubernetes section");
    assert_eq!(k.route.as_deref(), Some("shop"), "the only route, found");

    // A route to another Service is left alone when not named.
    let elsewhere = ROUTE.replace("{ name: shop, port: 80 }", "{ name: other, port: 80 }");
    let mut plan = parse_plan(&canary, PlanLimits::default()).expect("valid");
    attach(&mut plan, &format!("{MANIFEST}{elsewhere}")).expect("valid manifests");
    let StepAction::Deploy(spec) = &plan.steps[0].action else {
        panic!("a deploy")
    };
    assert_eq!(
        spec.kubernetes.as_deref().and_then(|k| k.route.clone()),
        None
    );
}

#[test]
fn a_named_route_must_exist_and_send_to_the_service() {
    let named = kube_with(
        "strategy: blue-green",
        "strategy: canary\n    canary: [{ weight: 100 }]\n    route: shop",
    );
    let mut plan = parse_plan(&named, PlanLimits::default()).expect("valid");
    let errors = attach(&mut plan, MANIFEST).expect_err("no route in the manifests");
    assert!(
        errors[0]
            .to_string()
            .contains("the manifests hold no HTTPRoute `shop`"),
        "{errors:?}"
    );
    let elsewhere = ROUTE.replace("{ name: shop, port: 80 }", "{ name: other, port: 80 }");
    let mut plan = parse_plan(&named, PlanLimits::default()).expect("valid");
    let errors =
        attach(&mut plan, &format!("{MANIFEST}{elsewhere}")).expect_err("a route elsewhere");
    let text = errors[0].to_string();
    assert!(
        text.contains("k8s/shop.yaml:")
            && text.contains("HTTPRoute `shop` has no backendRef to Service `shop`"),
        "{text}"
    );
    // `route` belongs to canaries.
    let blue_green = kube_with(
        "strategy: blue-green",
        "strategy: blue-green\n    route: shop",
    );
    assert!(
        messages(&blue_green)
            .iter()
            .any(|m| m.contains("splits a canary's traffic")),
        "{:?}",
        messages(&blue_green)
    );
    let bad = kube_with(
        "strategy: blue-green",
        "strategy: canary\n    canary: [{ weight: 100 }]\n    route: Shop!",
    );
    assert!(
        messages(&bad)
            .iter()
            .any(|m| m.contains("is not a valid Kubernetes name")),
        "{:?}",
        messages(&bad)
    );
}
