//! The Helm chart, rendered by `helm-template` (a stand-in for `helm template`, built by
//! .ci/with-moto from shared/tools): what it installs agrees with the binary (every flag
//! exists), with what the operator does on the API (RBAC), with the committed CRDs, and
//! its alert rules pass `promtool test rules`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn helm_template() -> PathBuf {
    let path = std::env::var_os("HELM_TEMPLATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/hipaa-operator/bin/helm-template")
        });
    assert!(
        path.exists(),
        "{} is missing: run the tests through .ci/with-moto, which builds it",
        path.display()
    );
    path
}

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/hipaa-operator")
}

/// Renders the chart: Ok(documents) or Err(stderr).
fn render(args: &[&str]) -> Result<Vec<Value>, String> {
    let out = Command::new(helm_template())
        .args(["--name", "hipaa-operator", "--namespace", "hipaa-system"])
        .args(args)
        .arg(chart())
        .output()
        .expect("helm-template runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(documents(&String::from_utf8_lossy(&out.stdout)))
}

fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .filter_map(|doc| serde::Deserialize::deserialize(doc).ok())
        .filter(|v: &Value| v.is_object())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn deployment(docs: &[Value]) -> &Value {
    of_kind(docs, "Deployment")[0]
}

fn args(docs: &[Value]) -> Vec<String> {
    deployment(docs)["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// Whether `rules` grant `verb` on `group`/`resource`.
fn allows(rules: &Value, group: &str, resource: &str, verb: &str) -> bool {
    rules.as_array().unwrap().iter().any(|r| {
        let has = |field: &str, want: &str| {
            r[field]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x == want || x == "*"))
        };
        has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
    })
}

#[test]
fn every_flag_the_deployment_passes_exists_in_the_binary() {
    let docs = render(&[
        "--set",
        "operator.watchNamespace=clinic",
        "--set",
        "operator.awsEndpointUrl=http://moto:5000",
    ])
    .unwrap();
    let help = Command::new(env!("CARGO_BIN_EXE_hipaa-operator"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let args = args(&docs);
    assert_eq!(args[0], "run");
    for arg in &args[1..] {
        let flag = arg.split('=').next().unwrap();
        let known = help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n"));
        assert!(
            flag.starts_with("--") && known,
            "{flag} is not a flag of `hipaa-operator run`:\n{help}"
        );
    }
    for want in [
        "--namespace=clinic",
        "--aws-endpoint-url=http://moto:5000",
        "--leader-election",
        "--leader-election-namespace=hipaa-system",
        "--metrics-addr=0.0.0.0:8080",
    ] {
        assert!(args.iter().any(|a| a == want), "{want} not in {args:?}");
    }
}

#[test]
fn the_pod_is_locked_down_probed_and_named_for_the_lease() {
    let docs = render(&[]).unwrap();
    let spec = &deployment(&docs)["spec"];
    assert_eq!(spec["replicas"], 2, "two replicas, one leading");
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"][0],
        "ALL"
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["limits"]["memory"].is_string());
    let env = container["env"].as_array().unwrap();
    assert!(
        env.iter().any(|e| e["name"] == "POD_NAME"
            && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"),
        "each replica's lease identity is its pod name"
    );
    // Nothing secret is passed in the pod spec: AWS credentials come from IRSA.
    let text = serde_json::to_string(pod).unwrap();
    assert!(!text.contains("AWS_SECRET_ACCESS_KEY"));
}

#[test]
fn rbac_grants_what_the_operator_does_and_no_more() {
    let docs = render(&[]).unwrap();
    let cluster_rules = &of_kind(&docs, "ClusterRole")[0]["rules"];
    let lease_role = of_kind(&docs, "Role")[0];
    assert_eq!(lease_role["metadata"]["namespace"], "hipaa-system");
    // (rules, group, resource, verb, why): each row is one API call the operator makes.
    let rows = [
        (
            cluster_rules,
            "hipaa.dev",
            "hipaanetworks",
            "list",
            "the preflight check and the watch",
        ),
        (
            cluster_rules,
            "hipaa.dev",
            "hipaanetworks",
            "watch",
            "the controller's watch",
        ),
        (
            cluster_rules,
            "hipaa.dev",
            "hipaanetworks",
            "patch",
            "the finalizer helper's JSON patch",
        ),
        (
            cluster_rules,
            "hipaa.dev",
            "hipaanetworks/status",
            "patch",
            "status through the subresource",
        ),
        (
            cluster_rules,
            "hipaa.dev",
            "hipaanetworks/finalizers",
            "update",
            "OwnerReferencesPermissionEnforcement",
        ),
        (
            cluster_rules,
            "events.k8s.io",
            "events",
            "create",
            "a new event",
        ),
        (
            cluster_rules,
            "events.k8s.io",
            "events",
            "patch",
            "a repeated event's series",
        ),
        (
            &lease_role["rules"],
            "coordination.k8s.io",
            "leases",
            "get",
            "reading the lease",
        ),
        (
            &lease_role["rules"],
            "coordination.k8s.io",
            "leases",
            "create",
            "the first replica creates it",
        ),
        (
            &lease_role["rules"],
            "coordination.k8s.io",
            "leases",
            "update",
            "renewal and takeover",
        ),
    ];
    for (rules, group, resource, verb, why) in rows {
        assert!(
            allows(rules, group, resource, verb),
            "{verb} {group}/{resource} ({why}) not granted"
        );
    }
    // No wildcard, no secrets, no deletes of custom resources (users delete them).
    let text = serde_json::to_string(cluster_rules).unwrap();
    assert!(!text.contains("\"*\""), "{text}");
    assert!(!allows(cluster_rules, "", "secrets", "get"));
    assert!(!allows(
        cluster_rules,
        "hipaa.dev",
        "hipaanetworks",
        "delete"
    ));
    // Watching all namespaces binds cluster-wide; one namespace binds only there.
    assert_eq!(of_kind(&docs, "ClusterRoleBinding").len(), 1);
    let scoped = render(&["--set", "operator.watchNamespace=clinic"]).unwrap();
    assert!(of_kind(&scoped, "ClusterRoleBinding").is_empty());
    let bindings = of_kind(&scoped, "RoleBinding");
    assert!(
        bindings.iter().any(
            |b| b["metadata"]["namespace"] == "clinic" && b["roleRef"]["kind"] == "ClusterRole"
        )
    );
}

#[test]
fn two_replicas_without_leader_election_are_refused() {
    let err = render(&["--set", "leaderElection.enabled=false"]).unwrap_err();
    assert!(
        err.contains("replicaCount > 1 needs leaderElection.enabled"),
        "{err}"
    );
    let single = render(&[
        "--set",
        "leaderElection.enabled=false",
        "--set",
        "replicaCount=1",
    ])
    .unwrap();
    assert!(!args(&single).iter().any(|a| a == "--leader-election"));
    assert!(
        of_kind(&single, "Role").is_empty(),
        "no lease permissions without election"
    );
}

#[test]
fn the_chart_installs_the_committed_crds() {
    let docs = render(&["--include-crds"]).unwrap();
    let crds: Vec<&Value> = of_kind(&docs, "CustomResourceDefinition");
    let committed = documents(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/hipaa.dev.yaml"))
            .unwrap(),
    );
    assert_eq!(crds.len(), 4);
    assert_eq!(
        crds.into_iter().cloned().collect::<Vec<_>>(),
        committed,
        "charts/hipaa-operator/crds is stale: copy crds/hipaa.dev.yaml"
    );
}

#[test]
fn the_alert_rules_pass_promtool() {
    let docs = render(&[
        "--set",
        "prometheusRule.enabled=true",
        "--set",
        "metrics.serviceMonitor.enabled=true",
    ])
    .unwrap();
    assert_eq!(of_kind(&docs, "ServiceMonitor").len(), 1);
    let rule = of_kind(&docs, "PrometheusRule")[0];
    let dir = std::env::temp_dir().join(format!("hipaa-rules-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let groups = serde_json::json!({ "groups": rule["spec"]["groups"] });
    std::fs::write(
        dir.join("rules.yaml"),
        serde_yaml_ng::to_string(&groups).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prometheus/alerts-test.yaml"),
        dir.join("alerts-test.yaml"),
    )
    .unwrap();
    for args in [
        ["check", "rules", "rules.yaml"],
        ["test", "rules", "alerts-test.yaml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool (Debian package prometheus) is installed: run the tests through .ci/with-moto");
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
