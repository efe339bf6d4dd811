//! The operator (controllers, finalizer, status, events, metrics) against the devcluster
//! through the real kubectl, driving the simulated AWS. Each test has its own devcluster,
//! simulated account and operator.

use crate::common;

use std::time::{Duration, Instant};

use common::{Cluster, eventually, http_get, metric, repo};
use hipaa_operator::api::{DriftAction, HipaaNetwork};
use hipaa_operator::cloud::sim::{SimCloud, SimConfig};
use hipaa_operator::cloud::{Kind, KmsKeySpec, Owner, Provider, SgRule, Spec, TAG_OWNER};
use hipaa_operator::controller::Settings;
use hipaa_operator::controller::status::{DRIFTED, READY, SYNCED, condition};
use hipaa_operator::daemon::Spawned;
use kube::api::Api;

const NS: &str = "clinic";
const NAME: &str = "clinic-net";

fn settings(resync: Duration) -> Settings {
    Settings {
        resync,
        pending_requeue: Duration::from_millis(100),
        backoff_base: Duration::from_millis(500),
        backoff_cap: Duration::from_secs(4),
        ..Settings::default()
    }
}

async fn operator(c: &Cluster, sim: &SimCloud, settings: Settings) -> Spawned {
    common::sim_operator(c, sim, settings).await
}

/// A devcluster with the CRDs and the `clinic` namespace.
async fn cluster() -> Cluster {
    let c = Cluster::start().await;
    c.install_crds().await;
    c.create_namespace(NS).await;
    c
}

async fn network(c: &Cluster) -> HipaaNetwork {
    Api::<HipaaNetwork>::namespaced(c.client(), NS)
        .get(NAME)
        .await
        .expect("get hnet")
}

/// Mutating calls (anything but Describe/List/Get) counted by the simulator.
fn mutating_calls(sim: &SimCloud) -> u64 {
    sim.calls()
        .iter()
        .filter(|((_, op, _), _)| {
            !["Describe", "List", "Get"]
                .iter()
                .any(|p| op.starts_with(p))
        })
        .map(|(_, n)| n)
        .sum()
}

fn open_ssh_to_the_world(sim: &SimCloud, sg: &str) {
    sim.authorize_ingress(sg, SgRule::tcp(22, 22, "0.0.0.0/0"))
        .expect("edit the security group");
}

fn ssh_open(sim: &SimCloud, sg: &str) -> bool {
    sim.ingress_rules(sg)
        .is_some_and(|rules| rules.iter().any(|r| r.source == "0.0.0.0/0"))
}

/// `kubectl apply -f` the HipaaNetwork of examples/stack.yaml into the test namespace.
async fn apply_example(c: &Cluster) {
    let network = c.example_file("HipaaNetwork");
    c.kubectl_ok(&["apply", "-n", NS, "-f", network.to_str().unwrap()])
        .await;
}

/// A devcluster, a simulated account and an operator with `resync`, and the example
/// network applied and Ready.
async fn ready_example(resync: Duration) -> (Cluster, SimCloud, Spawned) {
    let c = cluster().await;
    let sim = SimCloud::new(SimConfig::fast());
    let op = operator(&c, &sim, settings(resync)).await;
    apply_example(&c).await;
    wait_ready(&c).await;
    (c, sim, op)
}

async fn wait_ready(c: &Cluster) {
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        &format!("hnet/{NAME}"),
        "-n",
        NS,
        "--timeout=60s",
    ])
    .await;
}

/// Event reasons recorded for the object, as `kubectl get events` lists them.
async fn event_reasons(c: &Cluster) -> Vec<String> {
    let out = c
        .kubectl_ok(&["get", "events", "-n", NS, "-o", "json"])
        .await;
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == NAME)
        .filter_map(|e| e["reason"].as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_reaches_ready_drift_is_remediated_within_a_resync_and_delete_removes_everything()
 {
    let c = cluster().await;
    let sim = SimCloud::new(SimConfig::fast());
    let resync = Duration::from_secs(3);
    let op = operator(&c, &sim, settings(resync)).await;

    // `kubectl apply -f examples/` (the directory; examples/invalid is not recursed into).
    c.kubectl_ok(&["apply", "-n", NS, "-f", repo("examples").to_str().unwrap()])
        .await;
    wait_ready(&c).await;

    let net = network(&c).await;
    assert!(
        net.metadata
            .finalizers
            .as_ref()
            .unwrap()
            .contains(&"hipaa.dev/cleanup".to_string())
    );
    let status = net.status.clone().unwrap();
    assert_eq!(status.common.observed_generation, net.metadata.generation);
    for type_ in [READY, SYNCED, "Compliant"] {
        let cond = condition(&status.common.conditions, type_).unwrap();
        assert_eq!(cond.status, "True", "{type_}: {cond:?}");
        assert_eq!(cond.observed_generation, net.metadata.generation);
    }
    assert_eq!(
        condition(&status.common.conditions, DRIFTED)
            .unwrap()
            .status,
        "False"
    );
    // The AWS ids in status are the simulated account's resources of this stack.
    let owned: Vec<(Kind, String)> = sim
        .resources()
        .into_iter()
        .filter(|(_, o)| {
            o.tags.get(TAG_OWNER).map(String::as_str) == Some("HipaaNetwork/clinic/clinic-net")
        })
        .map(|(k, o)| (k, o.id))
        .collect();
    assert_eq!(status.common.resources.len(), 20);
    for r in &status.common.resources {
        let id = r.id.as_ref().unwrap();
        assert!(
            owned.iter().any(|(_, o)| o == id) || r.type_ == "ec2:default-security-group",
            "{} {id} is not in the account",
            r.node
        );
    }
    let vpc = status.vpc_id.clone().unwrap();
    assert!(owned.contains(&(Kind::Vpc, vpc)));
    assert_eq!(status.public_subnet_ids.len(), 2);
    assert_eq!(status.private_subnet_ids.len(), 2);
    assert_eq!(status.nat_gateway_ids.len(), 2);
    assert!(status.bastion_public_ip.is_some());
    assert!(
        status
            .common
            .compliance
            .iter()
            .all(|c| format!("{:?}", c.result) == "Passed")
    );
    // kubectl shows the columns from status.
    let table = c.kubectl_ok(&["get", "hnet", "-n", NS]).await;
    assert!(
        table.contains("True") && table.contains(status.vpc_id.as_deref().unwrap()),
        "{table}"
    );

    // Out-of-band: SSH opened to the world on the bastion's security group.
    let sg = status.bastion_security_group_id.clone().unwrap();
    open_ssh_to_the_world(&sim, &sg);
    let edited = Instant::now();
    let entry = eventually(
        resync * 2 + Duration::from_secs(5),
        "drift in status",
        || async {
            let net = network(&c).await;
            net.status?
                .common
                .drift
                .into_iter()
                .find(|d| d.resource == "sg/bastion" && d.field == "ingress")
        },
    )
    .await;
    let found_after = edited.elapsed();
    assert_eq!(entry.action, DriftAction::Remediated, "{entry:?}");
    assert!(entry.actual.contains("0.0.0.0/0"), "{entry:?}");
    // What differs, at a glance: the rule AWS has and the spec does not.
    assert_eq!(entry.change, "+ tcp/22 from 0.0.0.0/0", "{entry:?}");
    assert!(!ssh_open(&sim, &sg), "the rule is gone from AWS");
    println!("drift found and remediated {found_after:?} after the edit (resync {resync:?})");
    let net = network(&c).await;
    let drifted = condition(&net.status.unwrap().common.conditions, DRIFTED)
        .cloned()
        .unwrap();
    assert_eq!(
        (drifted.status.as_str(), drifted.reason.as_str()),
        ("False", "Remediated")
    );

    let reasons = eventually(Duration::from_secs(5), "drift events", || async {
        let r = event_reasons(&c).await;
        (r.iter().any(|x| x == "DriftDetected") && r.iter().any(|x| x == "DriftRemediated"))
            .then_some(r)
    })
    .await;
    for reason in ["Created", "Ready"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} not in {reasons:?}"
        );
    }

    let (code, text) = http_get(op.running.metrics_addr, "/metrics").await;
    assert_eq!(code, 200);
    assert_eq!(
        metric(
            &text,
            "hipaa_operator_drift_detected_total{kind=\"HipaaNetwork\",resource_type=\"ec2:security-group\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "hipaa_operator_resources_drifted{kind=\"HipaaNetwork\",name=\"clinic-net\",namespace=\"clinic\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &text,
            "hipaa_operator_managed_resources{kind=\"HipaaNetwork\"}"
        ),
        Some(20.0)
    );
    assert_eq!(metric(&text, "hipaa_operator_leader"), Some(1.0));
    assert!(
        metric(
            &text,
            "hipaa_operator_aws_api_calls_total{operation=\"CreateVpc\",outcome=\"ok\",service=\"ec2\"}"
        ) == Some(1.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            "hipaa_operator_reconcile_total{kind=\"HipaaNetwork\",result=\"success\"}"
        )
        .unwrap()
            >= 2.0
    );
    assert!(text.contains("hipaa_operator_reconcile_duration_seconds_bucket"));
    assert_eq!(http_get(op.running.metrics_addr, "/healthz").await.0, 200);
    assert_eq!(http_get(op.running.metrics_addr, "/readyz").await.0, 200);

    // The example's pipeline goes first (it holds its network's deletion while it
    // exists); the example retains the network's AWS resources: ask for deletion, then
    // delete.
    c.kubectl_ok(&["delete", "hpay", "--all", "-n", NS, "--timeout=120s"])
        .await;
    c.kubectl_ok(&[
        "patch",
        "hnet",
        NAME,
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"deletionPolicy":"Delete"}}"#,
    ])
    .await;
    c.kubectl_ok(&["delete", "hnet", NAME, "-n", NS, "--timeout=60s"])
        .await;
    let owner = Owner {
        kind: "HipaaNetwork".into(),
        namespace: NS.into(),
        name: NAME.into(),
    };
    assert_eq!(
        sim.owned(&owner).await.unwrap(),
        vec![],
        "nothing tagged with the object remains"
    );
    // As on AWS, a KMS key is scheduled for deletion (a 7-30 day wait), not removed.
    let left: Vec<_> = sim
        .resources()
        .into_iter()
        .filter(|(_, o)| o.tags.contains_key(TAG_OWNER))
        .filter(|(_, o)| {
            !matches!(
                o.spec,
                Spec::KmsKey(KmsKeySpec {
                    pending_deletion: true,
                    ..
                })
            )
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let gone = Api::<HipaaNetwork>::namespaced(c.client(), NS)
        .get_opt(NAME)
        .await
        .unwrap();
    assert!(
        gone.is_none(),
        "the finalizer was released and the object is gone"
    );
    let (_, text) = http_get(op.running.metrics_addr, "/metrics").await;
    assert_eq!(
        metric(
            &text,
            "hipaa_operator_managed_resources{kind=\"HipaaNetwork\"}"
        ),
        Some(0.0)
    );
    assert!(
        !text.contains("name=\"clinic-net\""),
        "the object's label sets are dropped"
    );
    op.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_releases_the_finalizer_without_touching_aws() {
    let (c, sim, op) = ready_example(Duration::from_secs(30)).await;
    let before = sim.resources().len();
    let mutating = mutating_calls(&sim);
    c.kubectl_ok(&["delete", "hnet", NAME, "-n", NS, "--timeout=30s"])
        .await;
    assert_eq!(
        sim.resources().len(),
        before,
        "deletionPolicy Retain leaves AWS as it is"
    );
    assert_eq!(mutating_calls(&sim), mutating, "no mutating AWS call");
    let reasons = event_reasons(&c).await;
    assert!(
        reasons.iter().any(|r| r == "CleanupComplete"),
        "{reasons:?}"
    );
    op.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_objects_report_drift_and_change_nothing_until_unpaused() {
    let resync = Duration::from_secs(2);
    let (c, sim, op) = ready_example(resync).await;
    c.kubectl_ok(&["annotate", "hnet", NAME, "-n", NS, "hipaa.dev/paused=true"])
        .await;
    eventually(
        Duration::from_secs(10),
        "Synced=False ReconcilePaused",
        || async {
            let net = network(&c).await;
            let synced = condition(&net.status?.common.conditions, SYNCED)?.clone();
            (synced.reason == "ReconcilePaused" && synced.status == "False").then_some(())
        },
    )
    .await;
    let mutating = mutating_calls(&sim);
    let sg = network(&c)
        .await
        .status
        .unwrap()
        .bastion_security_group_id
        .unwrap();
    open_ssh_to_the_world(&sim, &sg);
    let entry = eventually(
        resync * 2 + Duration::from_secs(5),
        "reported drift",
        || async {
            network(&c)
                .await
                .status?
                .common
                .drift
                .into_iter()
                .find(|d| d.resource == "sg/bastion")
        },
    )
    .await;
    assert_eq!(entry.action, DriftAction::Reported);
    let net = network(&c).await;
    let status = net.status.unwrap();
    assert_eq!(
        condition(&status.common.conditions, DRIFTED)
            .unwrap()
            .status,
        "True"
    );
    let net6 = status
        .common
        .compliance
        .iter()
        .find(|c| c.id == "NET-6")
        .unwrap();
    assert_eq!(format!("{:?}", net6.result), "Failed", "{net6:?}");
    let net6_series = "hipaa_operator_compliance_failed_controls{control=\"NET-6\",kind=\"HipaaNetwork\",name=\"clinic-net\",namespace=\"clinic\"}";
    let drifted_series = "hipaa_operator_resources_drifted{kind=\"HipaaNetwork\",name=\"clinic-net\",namespace=\"clinic\"}";
    let (_, text) = http_get(op.running.metrics_addr, "/metrics").await;
    assert_eq!(metric(&text, net6_series), Some(1.0), "{text}");
    assert_eq!(metric(&text, drifted_series), Some(1.0));
    // Another resync passes: still reported, never changed.
    tokio::time::sleep(resync + Duration::from_millis(500)).await;
    assert!(ssh_open(&sim, &sg), "paused: AWS is not changed");
    assert_eq!(
        mutating_calls(&sim),
        mutating,
        "paused: no mutating AWS call"
    );

    // Unpausing reconciles at once (the annotation is a trigger), not at the next resync.
    c.kubectl_ok(&["annotate", "hnet", NAME, "-n", NS, "hipaa.dev/paused-"])
        .await;
    eventually(
        Duration::from_secs(10),
        "remediation after unpause",
        || async { (!ssh_open(&sim, &sg)).then_some(()) },
    )
    .await;
    // Compliant again: the failed-control series is gone and nothing is drifted.
    let text = eventually(Duration::from_secs(10), "NET-6 passing again", || async {
        let (_, text) = http_get(op.running.metrics_addr, "/metrics").await;
        metric(&text, net6_series).is_none().then_some(text)
    })
    .await;
    assert_eq!(metric(&text, drifted_series), Some(0.0));
    op.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_backs_off_exponentially_and_a_spec_change_retries_at_once() {
    let c = cluster().await;
    let sim = SimCloud::new(SimConfig::fast());
    sim.deny("CreateVpc");
    // Backoff 0.5 s doubling to 4 s; a 5 minute resync so only triggers explain a prompt pass.
    let op = operator(&c, &sim, settings(Duration::from_secs(300))).await;
    apply_example(&c).await;
    let synced = eventually(
        Duration::from_secs(10),
        "Synced=False with AWS's message",
        || async {
            let net = network(&c).await;
            let synced = condition(&net.status?.common.conditions, SYNCED)?.clone();
            (synced.status == "False").then_some(synced)
        },
    )
    .await;
    assert_eq!(synced.reason, "ReconcileError");
    assert!(
        synced.message.contains("AccessDenied") && synced.message.contains("ec2:CreateVpc"),
        "{}",
        synced.message
    );
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let creates = sim
        .calls()
        .iter()
        .filter(|((_, op, _), _)| op == "CreateVpc")
        .map(|(_, n)| n)
        .sum::<u64>();
    // Backoff steps in ~10 s: 0.25-0.5, 0.5-1, 1-2, 2-4, then 2-4 each: at most 7 passes
    // (a retry storm would be hundreds); each pass tries the denied call once.
    println!(
        "CreateVpc attempts under AccessDenied in {:?}: {creates}",
        started.elapsed()
    );
    assert!((2..=8).contains(&creates), "{creates} CreateVpc calls");
    let (_, text) = http_get(op.running.metrics_addr, "/metrics").await;
    let failures = metric(
        &text,
        "hipaa_operator_reconcile_total{kind=\"HipaaNetwork\",result=\"aws_client_error\"}",
    )
    .unwrap();
    assert!(
        failures >= 2.0 && failures <= creates as f64 + 1.0,
        "{failures} failed reconciles, {creates} calls"
    );
    assert!(
        !text.contains("not authorized"),
        "no error text in metric labels"
    );
    let reasons = event_reasons(&c).await;
    assert!(
        reasons.iter().any(|r| r == "AwsRequestRefused"),
        "{reasons:?}"
    );

    // The permission is granted and the spec changes: reconciled at once, not after the
    // backoff step (up to 4 s) or the resync (300 s).
    sim.allow("CreateVpc");
    let changed = Instant::now();
    c.kubectl_ok(&[
        "patch",
        "hnet",
        NAME,
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"tags":{"cost-center":"c42"}}}"#,
    ])
    .await;
    wait_ready(&c).await;
    println!("Ready {:?} after the spec change", changed.elapsed());
    let vpc = network(&c).await.status.unwrap().vpc_id.unwrap();
    let tagged = sim
        .resources()
        .into_iter()
        .any(|(_, o)| o.id == vpc && o.tags.get("cost-center").map(String::as_str) == Some("c42"));
    assert!(tagged, "the new tag is on the VPC");
    op.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_change_is_applied_at_once_not_at_the_next_resync() {
    let (c, sim, op) = ready_example(Duration::from_secs(300)).await;
    let generation = network(&c).await.metadata.generation;
    c.kubectl_ok(&[
        "patch",
        "hnet",
        NAME,
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"bastion":{"allowedCidrs":["203.0.113.0/24"]}}}"#,
    ])
    .await;
    let sg = network(&c)
        .await
        .status
        .unwrap()
        .bastion_security_group_id
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the bastion rule removed on AWS",
        || async {
            let rules = sim.ingress_rules(&sg)?;
            (rules.len() == 1 && rules[0].source == "203.0.113.0/24").then_some(())
        },
    )
    .await;
    let net = eventually(
        Duration::from_secs(10),
        "status of the new generation",
        || async {
            let net = network(&c).await;
            (net.status.as_ref()?.common.observed_generation == net.metadata.generation)
                .then_some(net)
        },
    )
    .await;
    assert_ne!(net.metadata.generation, generation);
    let status = net.status.unwrap();
    assert!(
        status.common.drift.is_empty(),
        "a spec change is not drift: {:?}",
        status.common.drift
    );
    let reasons = event_reasons(&c).await;
    assert!(reasons.iter().any(|r| r == "Updated"), "{reasons:?}");
    op.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_that_cannot_list_what_remains_keeps_the_finalizer_until_it_can() {
    let (c, sim, op) = ready_example(Duration::from_secs(30)).await;
    c.kubectl_ok(&[
        "patch",
        "hnet",
        NAME,
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"deletionPolicy":"Delete"}}"#,
    ])
    .await;
    // The simulated account lists what is tagged with an owner with the Resource Groups
    // Tagging API; a missing permission for it leaves what remains unknown.
    sim.deny("GetResources");
    c.kubectl_ok(&["delete", "hnet", NAME, "-n", NS, "--wait=false"])
        .await;
    let ready = eventually(
        Duration::from_secs(60),
        "Ready=False DeletionFailed",
        || async {
            let net = network(&c).await;
            let status = net.status?;
            condition(&status.common.conditions, READY)
                .filter(|c| c.reason == "DeletionFailed")
                .cloned()
        },
    )
    .await;
    assert_eq!(ready.status, "False");
    assert!(ready.message.contains("AccessDenied"), "{}", ready.message);
    // It stays that way: several backoff steps later the object and its finalizer remain.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let net = network(&c).await;
    assert!(
        net.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"hipaa.dev/cleanup".to_string()),
        "the finalizer is kept while what remains is unknown"
    );
    let reasons = event_reasons(&c).await;
    assert!(
        reasons.iter().any(|r| r == "AwsRequestRefused"),
        "{reasons:?}"
    );
    assert!(
        !reasons.iter().any(|r| r == "CleanupComplete"),
        "{reasons:?}"
    );

    sim.allow("GetResources");
    eventually(Duration::from_secs(60), "the object is gone", || async {
        let gone = Api::<HipaaNetwork>::namespaced(c.client(), NS)
            .get_opt(NAME)
            .await
            .unwrap()
            .is_none();
        gone.then_some(())
    })
    .await;
    let owner = Owner::new("HipaaNetwork", NS, NAME);
    assert_eq!(sim.owned(&owner).await.unwrap(), vec![]);
    op.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_stamps_its_trace_id_on_its_status_write_and_its_events() {
    let (c, _sim, op) = ready_example(Duration::from_secs(30)).await;
    let status = network(&c).await.status.unwrap();
    let trace = status
        .common
        .trace_id
        .clone()
        .expect("the status names its pass");
    assert_eq!(trace.len(), 32, "a W3C trace id: {trace}");
    let out = c
        .kubectl_ok(&["get", "events", "-n", NS, "-o", "json"])
        .await;
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let notes: Vec<(String, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == NAME)
        .map(|e| {
            let text = |f: &str| e[f].as_str().unwrap_or_default().to_string();
            (text("reason"), text("message"))
        })
        .collect();
    // The pass that made the object Ready wrote the status and the Ready event.
    let ready = notes
        .iter()
        .find(|(r, _)| r == "Ready")
        .expect("a Ready event");
    assert!(
        ready.1.ends_with(&format!("(trace {trace})")),
        "{ready:?} carries {trace}"
    );
    // Every event names a pass.
    assert!(
        notes.iter().all(|(_, m)| m.contains("(trace ")),
        "{notes:?}"
    );
    op.stop().await;
    c.stop().await;
}
