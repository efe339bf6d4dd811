//! The example PaymentPipeline through the engine on the simulated AWS with its faults
//! on: throttling, server errors and a consistency window together, and crashes that
//! lose what was recorded. Each ends Ready with one resource per node (no duplicates),
//! whatever each kind does with a second create (SNS and SQS return the first, the
//! table, functions and mapping refuse the name, the key makes a second one).

use std::collections::BTreeMap;
use std::time::Duration;

use hipaa_operator::api::{HipaaNetworkSpec, PaymentPipeline};
use hipaa_operator::blueprint::{self, Graph, payment::NetworkOutputs};
use hipaa_operator::cloud::sim::{SimCloud, SimConfig};
use hipaa_operator::cloud::{Owner, Provider, TAG_NODE, TAG_OWNER};
use hipaa_operator::engine::{self, Config, Engine, Mode, Records};

use crate::common;

const POLL: Duration = Duration::from_millis(20);

fn engine(sim: &SimCloud) -> Engine<SimCloud> {
    Engine::new(
        sim.clone(),
        Config {
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
            attempts: 8,
            ..Config::default()
        },
    )
}

fn owner() -> Owner {
    Owner::new("PaymentPipeline", "clinic", "payments")
}

/// The network converged (without faults), and the pipeline's graph in it.
async fn pipeline_in_a_network(sim: &SimCloud) -> Graph {
    let network: HipaaNetworkSpec = serde_yaml_ng::from_str(
        "region: us-east-1\ncidrBlock: 10.40.0.0/16\navailabilityZones: [us-east-1a, us-east-1b]\nbastion:\n  allowedCidrs: [203.0.113.0/24]\n",
    )
    .unwrap();
    let network_owner = Owner::new("HipaaNetwork", "clinic", "net");
    let graph = blueprint::network::build(&network_owner, &network).unwrap();
    let (outcome, records, _) = engine::run_until_ready(
        &engine(sim),
        &graph,
        &network_owner,
        &Records::new(),
        Mode::Remediate,
        POLL,
        2000,
    )
    .await
    .unwrap();
    assert!(outcome.ready);
    let pipeline: PaymentPipeline =
        serde_yaml_ng::from_str(&common::example("PaymentPipeline")).unwrap();
    let outputs = NetworkOutputs {
        vpc_id: records["vpc"].id.clone(),
        private_subnet_ids: ["subnet/private/us-east-1a", "subnet/private/us-east-1b"]
            .map(|n| records[n].id.clone())
            .to_vec(),
    };
    blueprint::payment::build(&owner(), &pipeline.spec, &outputs).unwrap()
}

/// Resources tagged with the pipeline, counted by node.
fn copies_per_node(sim: &SimCloud) -> BTreeMap<String, usize> {
    let owner = owner().to_string();
    let mut copies = BTreeMap::new();
    for (_, observed) in sim.resources() {
        if observed.tags.get(TAG_OWNER) == Some(&owner) {
            *copies
                .entry(observed.tags.get(TAG_NODE).cloned().unwrap_or_default())
                .or_insert(0) += 1;
        }
    }
    copies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_converges_under_throttling_server_errors_and_a_consistency_window() {
    let sim = SimCloud::new(SimConfig::fast());
    let graph = pipeline_in_a_network(&sim).await;
    sim.set_faults(0.3, 0.05);
    sim.set_consistency_window(Duration::from_secs(3));
    sim.reset_calls();
    let (outcome, _, passes) = engine::run_until_ready(
        &engine(&sim),
        &graph,
        &owner(),
        &Records::new(),
        Mode::Remediate,
        POLL,
        2000,
    )
    .await
    .unwrap();
    assert!(outcome.ready, "{:?}", outcome.errors().collect::<Vec<_>>());
    let copies = copies_per_node(&sim);
    assert_eq!(copies.len(), graph.nodes.len(), "{copies:?}");
    assert!(
        copies.values().all(|&n| n == 1),
        "no duplicates: {copies:?}"
    );
    let by_outcome = |wanted: &str| -> u64 {
        sim.calls()
            .iter()
            .filter(|((_, _, o), _)| o.as_str() == wanted)
            .map(|(_, n)| n)
            .sum()
    };
    let (throttled, failed) = (by_outcome("throttled"), by_outcome("server_error"));
    println!("converged in {passes} passes; {throttled} calls throttled, {failed} server errors");
    assert!(
        throttled > 10,
        "the simulator really throttled ({throttled})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_that_lose_the_records_leave_no_duplicate_resource() {
    let sim = SimCloud::new(SimConfig::fast());
    let graph = pipeline_in_a_network(&sim).await;
    let engine = engine(&sim);
    // Several passes, each followed by a "crash" that loses everything recorded.
    for _ in 0..6 {
        engine
            .converge(&graph, &owner(), &Records::new(), Mode::Remediate)
            .await
            .unwrap();
        tokio::time::sleep(POLL).await;
    }
    let (outcome, _, _) = engine::run_until_ready(
        &engine,
        &graph,
        &owner(),
        &Records::new(),
        Mode::Remediate,
        POLL,
        2000,
    )
    .await
    .unwrap();
    assert!(outcome.ready);
    let copies = copies_per_node(&sim);
    assert_eq!(copies.len(), graph.nodes.len(), "{copies:?}");
    assert!(
        copies.values().all(|&n| n == 1),
        "no duplicates after crashes: {copies:?}"
    );
}
