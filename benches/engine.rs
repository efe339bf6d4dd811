//! The engine converging the example HipaaNetwork, then the example PaymentPipeline in
//! it, on the simulated AWS: AWS calls per full converge and per no-drift pass (by
//! operation), and converge time against the dependency graph's critical path.
//!
//! Run: `cargo bench --bench engine [-- SCALE [REQUEUE_SECONDS]]` (SCALE multiplies the
//! simulated AWS's latencies; 1.0 = real AWS, default 0.1). The requeue interval between
//! passes, as a controller's short requeue while something is pending, is
//! REQUEUE_SECONDS (default 5) x SCALE.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use hipaa_operator::api::{HipaaNetwork, PaymentPipeline};
use hipaa_operator::blueprint;
use hipaa_operator::cloud::sim::{SimCloud, SimConfig};
use hipaa_operator::cloud::{CallCounts, Owner, Provider};
use hipaa_operator::engine::{self, Engine, Mode, Records};

/// What one create call costs at scale 1.0 (the simulated AWS's base Create latency).
const CREATE_CALL: Duration = Duration::from_millis(140);

/// The example's object of `kind`, as the API server would store it.
fn example<K: serde::de::DeserializeOwned>(kind: &str) -> K {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/stack.yaml"))
        .unwrap();
    let value = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde_json::Value::deserialize(doc).unwrap())
        .find(|v| v["kind"] == kind)
        .unwrap();
    // The schema's defaults, as the API server would store the object.
    let checker = hipaa_operator::api::manifests::Checker::new().unwrap();
    let defaulted = checker
        .check_stream(&serde_yaml_ng::to_string(&value).unwrap())
        .remove(0)
        .defaulted
        .unwrap();
    serde_json::from_value(defaulted).unwrap()
}

fn network() -> HipaaNetwork {
    example("HipaaNetwork")
}

fn print_calls(title: &str, calls: &CallCounts) {
    let mut by_operation: BTreeMap<String, u64> = BTreeMap::new();
    for ((service, operation, _), n) in calls {
        *by_operation
            .entry(format!("{service}:{operation}"))
            .or_default() += n;
    }
    let total: u64 = by_operation.values().sum();
    println!("{title}: {total} calls");
    for (operation, n) in by_operation {
        println!("  {operation:<40} {n:>4}");
    }
}

/// Converges `graph` from nothing by passes `poll` apart: (records, passes, time taken,
/// the critical path's last node and length). Each node on the critical path costs one
/// create call plus the time the simulated AWS took to make it available, and starts
/// once all its dependencies are available.
async fn converge_timed(
    engine: &Engine<SimCloud>,
    sim: &SimCloud,
    graph: &blueprint::Graph,
    owner: &Owner,
    poll: Duration,
    scale: f64,
) -> (Records, usize, Duration, String, Duration) {
    let started = Instant::now();
    let (outcome, records, passes) = engine::run_until_ready(
        engine,
        graph,
        owner,
        &Records::new(),
        Mode::Remediate,
        poll,
        10_000,
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert!(outcome.ready);
    let readiness: BTreeMap<String, Duration> = sim.readiness().into_iter().collect();
    let (last, critical) = graph
        .critical_path(|key| {
            CREATE_CALL.mul_f64(scale) + readiness.get(key).copied().unwrap_or_default()
        })
        .unwrap();
    (records, passes, elapsed, last, critical)
}

/// One more pass over a converged graph: no drift, and the calls it made.
async fn no_drift_pass(
    engine: &Engine<SimCloud>,
    sim: &SimCloud,
    graph: &blueprint::Graph,
    owner: &Owner,
    records: &Records,
    title: &str,
) {
    sim.reset_calls();
    let steady = engine
        .converge(graph, owner, records, Mode::Remediate)
        .await
        .unwrap();
    assert!(steady.ready && steady.drift.is_empty());
    print_calls(title, &sim.calls());
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let scale: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0.1);
    let network = network();
    let owner = Owner {
        kind: "HipaaNetwork".into(),
        namespace: "default".into(),
        name: network.metadata.name.clone().unwrap(),
    };
    let graph = blueprint::network::build(&owner, &network.spec).unwrap();
    let sim = SimCloud::new(SimConfig {
        time_scale: scale,
        ..SimConfig::default()
    });
    let engine = Engine::new(sim.clone(), engine::Config::default());
    let requeue: f64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5.0);
    let poll = Duration::from_secs_f64(requeue * scale);

    let (records, passes, elapsed, last, critical) =
        converge_timed(&engine, &sim, &graph, &owner, poll, scale).await;

    println!(
        "engine bench: HipaaNetwork clinic-net (2 zones, NAT per zone), latency scale {scale}, requeue {poll:?}"
    );
    println!(
        "converge: {passes} passes in {:.2} s",
        elapsed.as_secs_f64()
    );
    println!(
        "critical path: {:.2} s (ends at {last})",
        critical.as_secs_f64()
    );
    println!(
        "converge time / critical path: {:.3}",
        elapsed.as_secs_f64() / critical.as_secs_f64()
    );
    print_calls("AWS calls for the full converge", &sim.calls());

    no_drift_pass(
        &engine,
        &sim,
        &graph,
        &owner,
        &records,
        "AWS calls for a no-drift pass",
    )
    .await;

    // The pipeline in that network, from the network's Ready.
    let pipeline: PaymentPipeline = example("PaymentPipeline");
    let owner = Owner::new(
        "PaymentPipeline",
        "default",
        pipeline.metadata.name.as_deref().unwrap(),
    );
    let outputs = blueprint::payment::NetworkOutputs {
        vpc_id: records["vpc"].id.clone(),
        private_subnet_ids: records
            .iter()
            .filter(|(node, _)| node.starts_with("subnet/private/"))
            .map(|(_, r)| r.id.clone())
            .collect(),
    };
    let graph = blueprint::payment::build(&owner, &pipeline.spec, &outputs).unwrap();
    sim.reset_calls();
    let (records, passes, elapsed, last, critical) =
        converge_timed(&engine, &sim, &graph, &owner, poll, scale).await;
    println!(
        "PaymentPipeline clinic-payments: {passes} passes in {:.2} s; critical path {:.2} s (ends at {last}); ratio {:.3}",
        elapsed.as_secs_f64(),
        critical.as_secs_f64(),
        elapsed.as_secs_f64() / critical.as_secs_f64()
    );
    print_calls("AWS calls for the pipeline's converge", &sim.calls());
    no_drift_pass(
        &engine,
        &sim,
        &graph,
        &owner,
        &records,
        "AWS calls for a pipeline no-drift pass",
    )
    .await;
}
