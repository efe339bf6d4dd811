//! The Helm chart, rendered by `helm-template` (a stand-in for `helm template`, built by
//! .ci/with-moto from shared/tools): what it installs agrees with the binary (every flag
//! exists), with what the operator does on the API (RBAC), with the committed CRDs, and
//! its alert rules pass `promtool test rules`.

use crate::common;

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
        "--set",
        "operator.otlp.endpoint=http://otel-collector.observability:4318",
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
        "--otlp-endpoint=http://otel-collector.observability:4318",
        "--otlp-protocol=http/protobuf",
    ] {
        assert!(args.iter().any(|a| a == want), "{want} not in {args:?}");
    }
}

#[test]
fn trace_export_is_off_by_default_and_its_collector_is_let_through_the_network_policy() {
    let plain = render(&["--set", "networkPolicy.enabled=true"]).unwrap();
    assert!(
        !args(&plain).iter().any(|a| a.starts_with("--otlp")),
        "off by default: {:?}",
        args(&plain)
    );
    let egress_ports = |docs: &[Value]| -> Vec<i64> {
        of_kind(docs, "NetworkPolicy")[0]["spec"]["egress"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|rule| rule["ports"].as_array().unwrap().iter())
            .filter(|port| port["protocol"] == "TCP")
            .filter_map(|port| port["port"].as_i64())
            .collect()
    };
    assert_eq!(egress_ports(&plain), vec![53, 443, 6443]);
    // Each row: the endpoint, the TCP port the policy must then open.
    for (endpoint, port) in [
        ("http://otel-collector.observability:4318", 4318),
        ("http://tempo.observability", 80),
    ] {
        let docs = render(&[
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            &format!("operator.otlp.endpoint={endpoint}"),
            "--set",
            "operator.otlp.protocol=http/json",
        ])
        .unwrap();
        assert!(args(&docs).contains(&"--otlp-protocol=http/json".to_string()));
        assert!(
            egress_ports(&docs).contains(&port),
            "{endpoint}: {:?}",
            egress_ports(&docs)
        );
    }
    // The exporter has no TLS: the values' schema refuses https, as the binary does.
    let errors = schema_errors(&values_with(&[(
        "operator.otlp.endpoint",
        Value::from("https://collector:4318"),
    )]));
    assert!(
        errors.len() == 1 && errors[0].starts_with("/operator/otlp/endpoint"),
        "{errors:?}"
    );
    let fine = values_with(&[(
        "operator.otlp.endpoint",
        Value::from("http://otel-collector.observability:4318"),
    )]);
    assert_eq!(schema_errors(&fine), Vec::<String>::new());
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
    let monitors = of_kind(&docs, "ServiceMonitor");
    assert_eq!(monitors.len(), 1);
    assert_eq!(
        monitors[0]["spec"]["endpoints"][0]["honorLabels"],
        serde_json::json!(true),
        "the stacks' namespace label must survive the scrape"
    );
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

/// The dashboard the chart ships, from its JSON file.
fn dashboard_file() -> Value {
    let text = std::fs::read_to_string(chart().join("dashboards/hipaa-operator.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every PromQL expression of the dashboard's panels, Grafana's `$__rate_interval`
/// replaced by a duration as Grafana would.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| {
            t["expr"]
                .as_str()
                .map(|e| e.replace("$__rate_interval", "5m"))
        })
        .collect()
}

/// Every expression of the chart's alert rules.
fn alert_exprs() -> Vec<String> {
    let docs = render(&["--set", "prometheusRule.enabled=true"]).unwrap();
    let rule = of_kind(&docs, "PrometheusRule")[0];
    rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["expr"].as_str().map(String::from))
        .collect()
}

#[test]
fn the_dashboard_configmap_is_off_by_default_and_carries_the_dashboard() {
    let off = render(&[]).unwrap();
    assert!(
        of_kind(&off, "ConfigMap").is_empty(),
        "no dashboard unless asked for"
    );
    let docs = render(&[
        "--set",
        "grafanaDashboard.enabled=true",
        "--set",
        "grafanaDashboard.namespace=monitoring",
    ])
    .unwrap();
    let maps = of_kind(&docs, "ConfigMap");
    assert_eq!(maps.len(), 1);
    let map = maps[0];
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(map["metadata"]["namespace"], "monitoring");
    let embedded: Value =
        serde_json::from_str(map["data"]["hipaa-operator.json"].as_str().unwrap()).unwrap();
    assert_eq!(
        embedded,
        dashboard_file(),
        "templates/grafana-dashboard.yaml embeds dashboards/hipaa-operator.json"
    );
    let titles: Vec<&str> = embedded["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["title"].as_str())
        .collect();
    for wanted in [
        "Failed HIPAA controls by stack",
        "Drift found by kind and resource type",
        "Reconcile errors by kind and category",
        "Reconcile latency",
        "AWS API calls by service and outcome",
        "Managed resources by kind",
        "Leader by pod",
    ] {
        assert!(titles.contains(&wanted), "{wanted} in {titles:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_alert_expression_parses_and_names_only_exported_metrics() {
    let exprs: Vec<String> = dashboard_exprs(&dashboard_file())
        .into_iter()
        .chain(alert_exprs())
        .collect();
    assert!(exprs.len() >= 15, "{} expressions", exprs.len());
    // promtool parses each as a recording rule's expression.
    let dir = std::env::temp_dir().join(format!("hipaa-exprs-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| serde_json::json!({"record": format!("check:expr_{i}"), "expr": e}))
        .collect();
    let file = serde_json::json!({"groups": [{"name": "expressions", "rules": rules}]});
    std::fs::write(
        dir.join("exprs.yaml"),
        serde_yaml_ng::to_string(&file).unwrap(),
    )
    .unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules", "exprs.yaml"])
        .current_dir(&dir)
        .output()
        .expect("promtool (Debian package prometheus) is installed: run the tests through .ci/with-moto");
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();

    // The metric names they use are the ones a running operator exports once it has
    // converged a stack and found drift with a failed control.
    let exported = exported_metric_names().await;
    for expr in &exprs {
        for name in metric_names(expr) {
            assert!(
                exported.contains(&name),
                "{name} (in {expr}) is not exported; the operator exports {exported:?}"
            );
        }
    }
}

/// `hipaa_operator_*` names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("hipaa_operator_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The series names on `/metrics` of an operator that converged the example network on
/// the simulated AWS, then, in Report mode, found SSH opened to the world (drift, failed
/// controls).
async fn exported_metric_names() -> std::collections::BTreeSet<String> {
    use hipaa_operator::api::HipaaNetwork;
    use hipaa_operator::cloud::SgRule;
    use hipaa_operator::cloud::sim::{SimCloud, SimConfig};
    use hipaa_operator::controller::Settings;
    use std::time::Duration;

    let c = common::Cluster::start().await;
    c.install_crds().await;
    c.create_namespace("clinic").await;
    let sim = SimCloud::new(SimConfig::fast());
    let settings = Settings {
        resync: Duration::from_secs(1),
        pending_requeue: Duration::from_millis(100),
        ..Settings::default()
    };
    let op = common::sim_operator(&c, &sim, settings).await;
    let stack = common::repo("examples/stack.yaml");
    c.kubectl_ok(&["apply", "-n", "clinic", "-f", stack.to_str().unwrap()])
        .await;
    c.kubectl_ok(&[
        "patch",
        "hnet",
        "clinic-net",
        "-n",
        "clinic",
        "--type=merge",
        "-p",
        r#"{"spec":{"driftPolicy":"Report"}}"#,
    ])
    .await;
    let api = kube::Api::<HipaaNetwork>::namespaced(c.client(), "clinic");
    let sg = common::eventually(
        Duration::from_secs(60),
        "the bastion's security group",
        || async {
            api.get("clinic-net")
                .await
                .ok()?
                .status?
                .bastion_security_group_id
        },
    )
    .await;
    sim.authorize_ingress(&sg, SgRule::tcp(22, 22, "0.0.0.0/0"))
        .unwrap();
    let text = common::eventually(
        Duration::from_secs(60),
        "drift and a failed control on /metrics",
        || async {
            let (_, text) = common::http_get(op.running.metrics_addr, "/metrics").await;
            let wanted = [
                "hipaa_operator_compliance_failed_controls{",
                "hipaa_operator_drift_detected_total{",
            ];
            wanted.iter().all(|w| text.contains(w)).then_some(text)
        },
    )
    .await;
    op.stop().await;
    c.stop().await;
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next().map(String::from))
        .collect()
}

/// values.yaml as JSON, with `sets` (dotted path, value) applied as `--set` would.
fn values_with(sets: &[(&str, Value)]) -> Value {
    let text = std::fs::read_to_string(chart().join("values.yaml")).unwrap();
    let mut values: Value = serde_yaml_ng::from_str(&text).unwrap();
    for (path, value) in sets {
        let mut at = &mut values;
        let keys: Vec<&str> = path.split('.').collect();
        for key in &keys[..keys.len() - 1] {
            at = &mut at[*key];
        }
        at[keys[keys.len() - 1]] = value.clone();
    }
    values
}

/// The errors Helm would report for `values` against the chart's values.schema.json.
fn schema_errors(values: &Value) -> Vec<String> {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(chart().join("values.schema.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("values.schema.json is a schema");
    validator
        .iter_errors(values)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Dotted paths of every value down to where the schema stops listing keys (free-form
/// maps such as `resources` count as one value).
fn value_paths(values: &Value, schema: &Value, prefix: &str, out: &mut Vec<String>) {
    let Some(map) = values.as_object() else {
        return;
    };
    for (key, value) in map {
        let path = format!("{prefix}{key}");
        let sub = &schema["properties"][key];
        if value.is_object() && sub["additionalProperties"] == Value::Bool(false) {
            value_paths(value, sub, &format!("{path}."), out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn values_are_checked_against_the_schema_and_every_value_is_documented() {
    assert_eq!(
        schema_errors(&values_with(&[])),
        Vec::<String>::new(),
        "the defaults are valid"
    );
    // (value, wrong setting): each row is a mistake Helm must refuse before rendering.
    let rows = [
        ("replicaCount", serde_json::json!("two")),
        ("operator.cloud", serde_json::json!("gcp")),
        ("metrics.port", serde_json::json!(70000)),
        ("operator.resyncInterval", serde_json::json!("10 minutes")),
        ("leaderElection.enabled", serde_json::json!("yes")),
        ("networkPolicy.httpsPorts", serde_json::json!([])),
        ("replicas", serde_json::json!(2)),
    ];
    for (path, wrong) in rows {
        let errors = schema_errors(&values_with(&[(path, wrong.clone())]));
        assert!(!errors.is_empty(), "{path}={wrong} was accepted");
        let last = path.rsplit('.').next().unwrap();
        assert!(
            errors.iter().any(|e| e.contains(last)),
            "{path}: the error names the value: {errors:?}"
        );
    }
    // Durations with units are accepted, as the binary takes them.
    for ok in ["90s", "5m", "1h30m", "500ms"] {
        let errors = schema_errors(&values_with(&[(
            "operator.resyncInterval",
            serde_json::json!(ok),
        )]));
        assert!(errors.is_empty(), "{ok}: {errors:?}");
    }
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(chart().join("values.schema.json")).unwrap())
            .unwrap();
    let readme = std::fs::read_to_string(chart().join("README.md")).unwrap();
    let mut paths = Vec::new();
    value_paths(&values_with(&[]), &schema, "", &mut paths);
    assert!(paths.len() > 40, "{paths:?}");
    for path in paths {
        assert!(
            schema
                .pointer(&format!(
                    "/properties/{}",
                    path.replace('.', "/properties/")
                ))
                .is_some(),
            "{path} is in values.schema.json"
        );
        assert!(
            readme.contains(&format!("`{path}`")),
            "{path} is in the chart README's table"
        );
    }
}

#[test]
fn replicas_spread_and_survive_drains_and_the_optional_parts_render_when_asked() {
    let two = render(&[]).unwrap();
    assert_eq!(of_kind(&two, "PodDisruptionBudget").len(), 1);
    let spec = &deployment(&two)["spec"]["template"]["spec"];
    assert_eq!(
        spec["topologySpreadConstraints"][0]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert!(of_kind(&two, "NetworkPolicy").is_empty());

    let one = render(&["--set", "replicaCount=1"]).unwrap();
    assert!(
        of_kind(&one, "PodDisruptionBudget").is_empty(),
        "no PDB for one replica"
    );

    let custom = render(&[
        "--set",
        "priorityClassName=platform-critical",
        "--set",
        "fullnameOverride=hipaa",
        "--set",
        "networkPolicy.enabled=true",
        "-f",
        chart()
            .join("../../tests/helm/extra-values.yaml")
            .to_str()
            .unwrap(),
    ])
    .unwrap();
    let d = deployment(&custom);
    assert_eq!(d["metadata"]["name"], "hipaa");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"], "platform-critical");
    let env = pod["containers"][0]["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e["name"] == "HTTPS_PROXY"), "{env:?}");
    assert_eq!(pod["volumes"][0]["name"], "ca-bundle");
    assert_eq!(
        pod["containers"][0]["volumeMounts"][0]["mountPath"],
        "/etc/ssl/custom"
    );
    let policy = of_kind(&custom, "NetworkPolicy")[0];
    let egress_ports: Vec<&Value> = policy["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["ports"].as_array().unwrap())
        .map(|p| &p["port"])
        .collect();
    assert_eq!(
        egress_ports,
        [53, 53, 443, 6443]
            .map(Value::from)
            .iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], "metrics");
}

/// The words of the first `helm install` command in a Markdown file, as the shell splits
/// them (continuation lines joined, quotes removed).
fn helm_install_words(markdown: &str) -> Vec<String> {
    let joined = markdown.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.trim_start().starts_with("helm install "))
        .expect("a helm install command");
    let out = Command::new("sh")
        .args([
            "-c",
            &format!("for w in {}; do printf '%s\\n' \"$w\"; done", line.trim()),
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn the_readmes_helm_install_commands_render_as_written() {
    for file in ["README.md", "charts/hipaa-operator/README.md"] {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        let words = helm_install_words(&text);
        assert_eq!(&words[..2], ["helm", "install"], "{file}");
        assert_eq!(words[3], "charts/hipaa-operator", "{file}");
        // `helm install NAME CHART -n NS [--create-namespace] --set k=v ...` as
        // helm-template's flags (it renders what `helm install` would apply).
        let mut args: Vec<String> = vec!["--name".into(), words[2].clone()];
        let mut rest = words[4..].iter();
        while let Some(word) = rest.next() {
            match word.as_str() {
                "-n" | "--namespace" => {
                    args.push("--namespace".into());
                    args.push(rest.next().unwrap().clone());
                }
                "--create-namespace" => {}
                "--set" => {
                    args.push("--set".into());
                    args.push(rest.next().unwrap().clone());
                }
                other => panic!("{file}: flag {other} is not rendered by this test"),
            }
        }
        let out = Command::new(helm_template())
            .args(&args)
            .arg(chart())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let docs = documents(&String::from_utf8_lossy(&out.stdout));
        let d = deployment(&docs);
        assert_eq!(d["metadata"]["namespace"], "hipaa-system", "{file}");
        let image = d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap();
        assert_eq!(image, "registry.example.com/hipaa-operator:0.1.0", "{file}");
        let account = of_kind(&docs, "ServiceAccount")[0];
        assert_eq!(
            account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::123456789012:role/hipaa-operator",
            "{file}"
        );
        // What it sets is valid against the chart's schema, as Helm checks.
        let sets: Vec<(String, Value)> = args
            .chunks(2)
            .filter(|pair| pair[0] == "--set")
            .map(|pair| {
                let (path, value) = pair[1].split_once('=').unwrap();
                (path.to_string(), Value::String(value.to_string()))
            })
            .filter(|(path, _)| !path.contains('\\'))
            .map(|(path, value)| {
                let value = match value.as_str() {
                    Some("true") => Value::Bool(true),
                    _ => value,
                };
                (path, value)
            })
            .collect();
        let sets: Vec<(&str, Value)> = sets.iter().map(|(p, v)| (p.as_str(), v.clone())).collect();
        assert_eq!(
            schema_errors(&values_with(&sets)),
            Vec::<String>::new(),
            "{file}"
        );
    }
}
