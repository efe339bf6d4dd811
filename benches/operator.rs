//! The operator end to end on the devcluster and the simulated AWS: time from
//! `kubectl apply` of the example HipaaNetwork to Ready, against the dependency graph's
//! critical path; then drift-detection latency (out-of-band edit -> `status.drift`) and
//! remediation latency at a resync interval, for edits made at random points of the
//! resync cycle.
//!
//! Run: `cargo bench --bench operator [-- SCALE [RESYNC_SECONDS [EDITS]]]`
//! (defaults 0.1, 60, 3). SCALE multiplies the simulated AWS's latencies (1.0 = real AWS);
//! the operator's requeue while AWS is busy is its default 5 s x SCALE.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hipaa_operator::api::HipaaNetwork;
use hipaa_operator::blueprint;
use hipaa_operator::cloud::any::AnyCloud;
use hipaa_operator::cloud::sim::{SimCloud, SimConfig};
use hipaa_operator::cloud::{Owner, Provider, SgRule};
use hipaa_operator::controller::status::{READY, condition};
use hipaa_operator::controller::{Regions, Settings};
use hipaa_operator::daemon::{self, RunOptions};
use hipaa_operator::devcluster::{DevCluster, Options};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};

/// What one create call costs at scale 1.0 (the simulated AWS's base Create latency).
const CREATE_CALL: Duration = Duration::from_millis(140);
const NS: &str = "default";
const NAME: &str = "clinic-net";

fn arg<T: std::str::FromStr>(n: usize, default: T) -> T {
    std::env::args()
        .filter(|a| !a.starts_with("--"))
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn ssh_open(sim: &SimCloud, sg: &str) -> bool {
    sim.ingress_rules(sg)
        .is_some_and(|rules| rules.iter().any(|r| r.source == "0.0.0.0/0"))
}

#[tokio::main]
async fn main() {
    let scale: f64 = arg(1, 0.1);
    let resync = Duration::from_secs(arg(2, 60));
    let edits: usize = arg(3, 3);
    let _ = rustls::crypto::ring::default_provider().install_default();

    let cluster = DevCluster::start(Options::default()).await.unwrap();
    let client = cluster.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in hipaa_operator::api::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let sim = SimCloud::new(SimConfig {
        time_scale: scale,
        ..SimConfig::default()
    });
    let for_regions = sim.clone();
    let settings = Settings {
        resync,
        pending_requeue: Duration::from_secs(5).mul_f64(scale),
        ..Settings::default()
    };
    let operator = daemon::spawn(
        client.clone(),
        Regions::new(move |_| AnyCloud::Sim(for_regions.clone())),
        &RunOptions {
            settings: settings.clone(),
            metrics_addr: "127.0.0.1:0".parse().unwrap(),
            election: None,
            identity: "bench".into(),
        },
    )
    .await
    .unwrap();

    // kubectl apply -> Ready.
    let stack = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/stack.yaml");
    let started = Instant::now();
    let out = std::process::Command::new("kubectl")
        .args(["apply", "-n", NS, "-f", stack])
        .env("KUBECONFIG", cluster.kubeconfig_path())
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api: Api<HipaaNetwork> = Api::namespaced(client.clone(), NS);
    let net = loop {
        let net = api.get(NAME).await.unwrap();
        let ready = net
            .status
            .as_ref()
            .and_then(|s| condition(&s.common.conditions, READY))
            .is_some_and(|c| c.status == "True");
        if ready {
            break net;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let to_ready = started.elapsed();
    let owner = Owner {
        kind: "HipaaNetwork".into(),
        namespace: NS.into(),
        name: NAME.into(),
    };
    let graph = blueprint::network::build(&owner, &net.spec).unwrap();
    let readiness: BTreeMap<String, Duration> = sim.readiness().into_iter().collect();
    let (last, critical) = graph
        .critical_path(|key| {
            CREATE_CALL.mul_f64(scale) + readiness.get(key).copied().unwrap_or_default()
        })
        .unwrap();
    let reconciles = operator
        .running
        .context
        .metrics
        .reconcile_total
        .with_label_values(&["HipaaNetwork", "success"])
        .get();
    println!(
        "operator bench: HipaaNetwork {NS}/{NAME} (2 zones, NAT per zone), latency scale {scale}, pending requeue {:?}, resync {resync:?}",
        settings.pending_requeue
    );
    println!(
        "kubectl apply -> Ready: {:.2} s in {reconciles} reconciles; critical path {:.2} s (ends at {last}); ratio {:.3}",
        to_ready.as_secs_f64(),
        critical.as_secs_f64(),
        to_ready.as_secs_f64() / critical.as_secs_f64()
    );
    let calls: u64 = sim.calls().values().sum();
    println!("AWS calls to Ready: {calls}");

    // Drift: SSH opened to the world at a random point of the resync cycle.
    let sg = net.status.unwrap().bastion_security_group_id.unwrap();
    let mut detected = Vec::new();
    let mut remediated = Vec::new();
    for i in 0..edits {
        // The previous round's (remediated) entry stays until the next pass: wait for it
        // to go, then edit at a uniformly random point of the resync cycle.
        while !api
            .get(NAME)
            .await
            .unwrap()
            .status
            .unwrap()
            .common
            .drift
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(resync.mul_f64(fastrand::f64())).await;
        sim.authorize_ingress(&sg, SgRule::tcp(22, 22, "0.0.0.0/0"))
            .unwrap();
        let edited = Instant::now();
        let mut found = None;
        loop {
            if found.is_none() {
                let drift = api.get(NAME).await.unwrap().status.unwrap().common.drift;
                if drift.iter().any(|d| d.resource == "sg/bastion") {
                    found = Some(edited.elapsed());
                }
            }
            if found.is_some() && !ssh_open(&sim, &sg) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let fixed = edited.elapsed();
        let found = found.unwrap();
        println!(
            "edit {}: drift in status after {:.2} s, remediated on AWS after {:.2} s",
            i + 1,
            found.as_secs_f64(),
            fixed.as_secs_f64()
        );
        detected.push(found.as_secs_f64());
        remediated.push(fixed.as_secs_f64());
    }
    if !detected.is_empty() {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
        println!(
            "drift detection at resync {resync:?}: mean {:.2} s, max {:.2} s over {} edits (bound: the resync interval plus one pass)",
            mean(&detected),
            max(&detected),
            detected.len()
        );
        println!(
            "remediation: mean {:.2} s, max {:.2} s",
            mean(&remediated),
            max(&remediated)
        );
    }
    let owned = sim.owned(&owner).await.unwrap().len();
    println!("AWS resources owned by {owner}: {owned}");
    operator.stop().await;
    cluster.shutdown().await;
}
