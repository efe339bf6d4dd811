//! The Argo CD health checks in `deploy/argocd/hipaa.dev/<Kind>/health.lua`, run in a real
//! Lua 5.1 VM (`lua5.1`, the dialect Argo CD's gopher-lua speaks): every kind's
//! `health_test.yaml` against its `testdata/`, and the statuses the operator itself
//! writes on the devcluster (creating, Ready, drift reported with a failed control,
//! paused, an invalid spec) assessed as a platform team expects.
//!
//! `UPDATE_TESTDATA=1` rewrites HipaaNetwork's testdata from the live objects.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::{Cluster, eventually, repo, sim_operator};
use hipaa_operator::api::HipaaNetwork;
use hipaa_operator::cloud::SgRule;
use hipaa_operator::cloud::sim::{SimCloud, SimConfig};
use hipaa_operator::controller::Settings;
use hipaa_operator::controller::status::{COMPLIANT, READY, SYNCED, condition};
use kube::api::Api;
use serde::Deserialize;
use serde_json::Value;

const KINDS: [&str; 4] = [
    "HipaaNetwork",
    "HipaaBackend",
    "HipaaEdge",
    "PaymentPipeline",
];
const NS: &str = "clinic";
const NAME: &str = "clinic-net";

fn kind_dir(kind: &str) -> PathBuf {
    repo("deploy/argocd/hipaa.dev").join(kind)
}

/// `value` as a Lua table constructor (objects keyed by string, arrays 1-based, null as
/// nil), the shape Argo CD hands a health script as `obj`.
fn lua_literal(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for ch in s.chars() {
                match ch {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(lua_literal).collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "[{}] = {}",
                        lua_literal(&Value::String(k.clone())),
                        lua_literal(v)
                    )
                })
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Runs `kind`'s health.lua on `object` in Lua 5.1: (status, message).
fn health(kind: &str, object: &Value) -> (String, String) {
    let script = std::fs::read_to_string(kind_dir(kind).join("health.lua")).unwrap();
    let program = format!(
        "obj = {}\nlocal function assess()\n{script}\nend\nlocal hs = assess()\n\
         io.write(hs.status, \"\\n\", hs.message or \"\", \"\\n\")\n",
        lua_literal(object)
    );
    let out = std::process::Command::new("lua5.1")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(program.as_bytes())?;
            child.wait_with_output()
        })
        .expect("lua5.1 runs (Debian package lua5.1; .ci/with-moto installs it)");
    assert!(
        out.status.success(),
        "health.lua failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    (
        lines.next().unwrap_or_default().to_string(),
        lines.next().unwrap_or_default().to_string(),
    )
}

/// `deploy/argocd/argocd-cm-health.yaml`: a strategic merge patch of `argocd-cm` (for
/// kustomize, or `kubectl patch`) with each kind's health.lua under
/// `resource.customizations.health.hipaa.dev_<Kind>`.
fn argocd_cm_patch() -> String {
    let mut out = String::from(
        "# Argo CD health checks for the hipaa.dev kinds: a strategic merge patch of argocd-cm.\n\
         # Generated from deploy/argocd/hipaa.dev/<Kind>/health.lua by tests/it/argocd_health.rs\n\
         # (UPDATE_TESTDATA=1 cargo test --test it argocd_health:: rewrites it); do not edit by hand.\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\n  \
         labels:\n    app.kubernetes.io/part-of: argocd\ndata:\n",
    );
    for kind in KINDS {
        let script = std::fs::read_to_string(kind_dir(kind).join("health.lua")).unwrap();
        out.push_str(&format!(
            "  resource.customizations.health.hipaa.dev_{kind}: |\n"
        ));
        for line in script.lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    out
}

#[test]
fn the_argocd_cm_patch_carries_every_kinds_script() {
    let path = repo("deploy/argocd/argocd-cm-health.yaml");
    let rendered = argocd_cm_patch();
    if std::env::var_os("UPDATE_TESTDATA").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    assert!(
        std::fs::read_to_string(&path).unwrap_or_default() == rendered,
        "deploy/argocd/argocd-cm-health.yaml is stale: UPDATE_TESTDATA=1 cargo test --test it argocd_health::"
    );
    // The patch is valid YAML whose keys hold the scripts byte for byte.
    let parsed: Value = serde_yaml_ng::from_str(&rendered).unwrap();
    for kind in KINDS {
        let key = format!("resource.customizations.health.hipaa.dev_{kind}");
        let script = std::fs::read_to_string(kind_dir(kind).join("health.lua")).unwrap();
        assert_eq!(
            parsed["data"][&key].as_str(),
            Some(script.as_str()),
            "{key}"
        );
    }
}

#[derive(Deserialize)]
struct HealthTests {
    tests: Vec<HealthTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthTest {
    health_status: HealthStatus,
    input_path: String,
}

#[derive(Deserialize)]
struct HealthStatus {
    status: String,
    message: String,
}

#[test]
fn every_kind_has_the_one_script_and_passes_its_health_tests() {
    let network_script = std::fs::read(kind_dir("HipaaNetwork").join("health.lua")).unwrap();
    let mut ran = 0;
    for kind in KINDS {
        let dir = kind_dir(kind);
        assert_eq!(
            std::fs::read(dir.join("health.lua")).unwrap(),
            network_script,
            "{kind}: one script for the four kinds"
        );
        let tests: HealthTests = serde_yaml_ng::from_str(
            &std::fs::read_to_string(dir.join("health_test.yaml")).unwrap(),
        )
        .unwrap();
        assert!(!tests.tests.is_empty(), "{kind} has health tests");
        for test in tests.tests {
            let input = dir.join(&test.input_path);
            let object: Value =
                serde_yaml_ng::from_str(&std::fs::read_to_string(&input).unwrap()).unwrap();
            assert_eq!(object["kind"], kind, "{}", input.display());
            let (status, message) = health(kind, &object);
            assert_eq!(
                (status.as_str(), message.as_str()),
                (
                    test.health_status.status.as_str(),
                    test.health_status.message.as_str()
                ),
                "{}",
                input.display()
            );
            ran += 1;
        }
    }
    assert!(ran >= 10, "{ran} health tests");
}

/// The live object as Argo CD sees it (no managedFields), written to testdata when
/// `UPDATE_TESTDATA` is set.
async fn capture(c: &Cluster, file: &str) -> Value {
    let net = Api::<HipaaNetwork>::namespaced(c.client(), NS)
        .get(NAME)
        .await
        .unwrap();
    let mut object = serde_json::to_value(&net).unwrap();
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    if std::env::var_os("UPDATE_TESTDATA").is_some() {
        let path = kind_dir("HipaaNetwork").join("testdata").join(file);
        std::fs::write(path, serde_yaml_ng::to_string(&object).unwrap()).unwrap();
    }
    object
}

async fn wait_for(c: &Cluster, what: &str, check: impl Fn(&HipaaNetwork) -> bool) {
    eventually(Duration::from_secs(60), what, || async {
        let net = Api::<HipaaNetwork>::namespaced(c.client(), NS)
            .get_opt(NAME)
            .await
            .ok()??;
        check(&net).then_some(())
    })
    .await;
}

fn cond_is(net: &HipaaNetwork, type_: &str, status: &str, reason: &str) -> bool {
    net.status
        .as_ref()
        .and_then(|s| condition(&s.common.conditions, type_))
        .is_some_and(|c| c.status == status && (reason.is_empty() || c.reason == reason))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statuses_the_operator_writes_are_assessed_as_argo_cd_should() {
    let c = Cluster::start().await;
    c.install_crds().await;
    c.create_namespace(NS).await;
    // Real AWS latencies scaled down, so that "creating" lasts long enough to be seen.
    let sim = SimCloud::new(SimConfig {
        time_scale: 0.05,
        ..SimConfig::fast()
    });
    let settings = Settings {
        resync: Duration::from_secs(2),
        pending_requeue: Duration::from_millis(200),
        backoff_base: Duration::from_millis(500),
        backoff_cap: Duration::from_secs(2),
        ..Settings::default()
    };
    let op = sim_operator(&c, &sim, settings).await;
    let stack = repo("examples/stack.yaml");
    c.kubectl_ok(&["apply", "-n", NS, "-f", stack.to_str().unwrap()])
        .await;
    let assess = |object: &Value| health("HipaaNetwork", object).0;

    wait_for(&c, "Ready=False Creating", |n| {
        cond_is(n, READY, "False", "Creating")
    })
    .await;
    assert_eq!(
        assess(&capture(&c, "progressing-creating.yaml").await),
        "Progressing"
    );

    wait_for(&c, "Ready", |n| cond_is(n, READY, "True", "")).await;
    let healthy = capture(&c, "healthy.yaml").await;
    assert_eq!(assess(&healthy), "Healthy");

    // driftPolicy Report and SSH opened to the world: reported, NET-4/NET-6 fail.
    c.kubectl_ok(&[
        "patch",
        "hnet",
        NAME,
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"driftPolicy":"Report"}}"#,
    ])
    .await;
    wait_for(&c, "the Report generation observed", |n| {
        n.status.as_ref().and_then(|s| s.common.observed_generation) == n.metadata.generation
    })
    .await;
    let sg = Api::<HipaaNetwork>::namespaced(c.client(), NS)
        .get(NAME)
        .await
        .unwrap()
        .status
        .unwrap()
        .bastion_security_group_id
        .unwrap();
    sim.authorize_ingress(&sg, SgRule::tcp(22, 22, "0.0.0.0/0"))
        .unwrap();
    wait_for(&c, "Compliant=False", |n| {
        cond_is(n, COMPLIANT, "False", "")
    })
    .await;
    assert_eq!(
        assess(&capture(&c, "degraded-control-failed.yaml").await),
        "Degraded"
    );

    c.kubectl_ok(&["annotate", "hnet", NAME, "-n", NS, "hipaa.dev/paused=true"])
        .await;
    wait_for(&c, "Synced=False ReconcilePaused", |n| {
        cond_is(n, SYNCED, "False", "ReconcilePaused")
    })
    .await;
    assert_eq!(
        assess(&capture(&c, "suspended-paused.yaml").await),
        "Suspended"
    );

    // Unpaused, remediating, then a zone the region does not have: refused.
    c.kubectl_ok(&["annotate", "hnet", NAME, "-n", NS, "hipaa.dev/paused-"])
        .await;
    c.kubectl_ok(&[
        "patch",
        "hnet",
        NAME,
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"driftPolicy":"Remediate","availabilityZones":["us-east-1a","us-east-1z"]}}"#,
    ])
    .await;
    wait_for(&c, "Synced=False InvalidSpec", |n| {
        cond_is(n, SYNCED, "False", "InvalidSpec")
    })
    .await;
    assert_eq!(
        assess(&capture(&c, "degraded-invalid-spec.yaml").await),
        "Degraded"
    );

    // A spec the operator has not looked at yet: Progressing, whatever the old status.
    let mut newer = healthy.clone();
    newer["metadata"]["generation"] =
        Value::from(healthy["metadata"]["generation"].as_i64().unwrap() + 1);
    assert_eq!(assess(&newer), "Progressing");
    op.stop().await;
    c.stop().await;
}

#[test]
fn the_example_application_syncs_the_example_stack() {
    let app: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(repo("deploy/argocd/application.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(app["kind"], "Application");
    let source = &app["spec"]["source"];
    let file = repo(source["path"].as_str().unwrap())
        .join(source["directory"]["include"].as_str().unwrap());
    let stack = std::fs::read_to_string(&file).unwrap();
    for kind in KINDS {
        assert!(
            stack.contains(&format!("kind: {kind}")),
            "{} has a {kind}",
            file.display()
        );
    }
    assert_eq!(app["spec"]["destination"]["namespace"], "clinic");
}
