//! The PaymentPipeline in the operator, on the simulated AWS (its pending states and
//! latencies): it waits for its network without an AWS call, starts the moment the
//! network is Ready, converges with every HIPAA row passing, finds and remediates drift,
//! and leaves nothing behind when deleted.

use std::time::{Duration, Instant};

use hipaa_operator::api::{ControlResult, HipaaNetwork, PaymentPipeline};
use hipaa_operator::cloud::sim::{SimCloud, SimConfig};
use hipaa_operator::cloud::{DynamoDbTableSpec, Kind, Owner, Provider, Spec, TAG_OWNER};
use hipaa_operator::controller::Settings;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::Api;

use crate::common::{Cluster, eventually, example, sim_operator};

const NS: &str = "payments";
const NETWORK: &str = "clinic-net";
const PIPELINE: &str = "clinic-payments";

/// One document of examples/stack.yaml, its deletion policy Delete.
pub fn example_document(kind: &str) -> String {
    example(kind).replace("deletionPolicy: Retain", "deletionPolicy: Delete")
}

async fn condition<K>(api: &Api<K>, name: &str, type_: &str) -> Option<Condition>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K: serde::Serialize,
{
    let value = serde_json::to_value(api.get_opt(name).await.ok()??).ok()?;
    let conditions: Vec<Condition> =
        serde_json::from_value(value["status"]["conditions"].clone()).ok()?;
    conditions.into_iter().find(|c| c.type_ == type_)
}

/// Resources on the simulated AWS tagged with the pipeline as their owner.
fn pipeline_resources(sim: &SimCloud) -> Vec<(Kind, String)> {
    let owner = Owner::new("PaymentPipeline", NS, PIPELINE).to_string();
    sim.resources()
        .into_iter()
        .filter(|(_, o)| o.tags.get(TAG_OWNER) == Some(&owner))
        .map(|(kind, o)| (kind, o.id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_waits_for_its_network_converges_remediates_drift_and_deletes() {
    let c = Cluster::start().await;
    c.install_crds().await;
    c.create_namespace(NS).await;
    // AWS's latencies x 0.01: NAT gateways, functions Pending, the table CREATING.
    let sim = SimCloud::new(SimConfig {
        time_scale: 0.01,
        ..SimConfig::default()
    });
    let settings = Settings {
        // Drift is found by the resync (the network's Ready reaches the pipeline by a
        // watch: the start time printed below is well under it).
        resync: Duration::from_secs(5),
        pending_requeue: Duration::from_millis(200),
        backoff_base: Duration::from_millis(500),
        backoff_cap: Duration::from_secs(4),
        ..Settings::default()
    };
    let op = sim_operator(&c, &sim, settings).await;
    let pipelines = Api::<PaymentPipeline>::namespaced(c.client(), NS);
    let networks = Api::<HipaaNetwork>::namespaced(c.client(), NS);

    // The pipeline first: it waits for its network, calling nothing.
    let file = c.home.join("pipeline.yaml");
    std::fs::write(&file, example_document("PaymentPipeline")).unwrap();
    c.kubectl_ok(&["apply", "-n", NS, "-f", file.to_str().unwrap()])
        .await;
    let waiting = eventually(Duration::from_secs(30), "WaitingForReference", || async {
        condition(&pipelines, PIPELINE, "Ready")
            .await
            .filter(|c| c.reason == "WaitingForReference")
    })
    .await;
    assert!(waiting.message.contains(NETWORK), "{}", waiting.message);
    assert!(sim.calls().is_empty(), "no AWS call: {:?}", sim.calls());

    // The network: the pipeline's first resource appears once it is Ready, not before.
    let file = c.home.join("network.yaml");
    std::fs::write(&file, example_document("HipaaNetwork")).unwrap();
    c.kubectl_ok(&["apply", "-n", NS, "-f", file.to_str().unwrap()])
        .await;
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut network_ready = None;
    loop {
        assert!(Instant::now() < deadline, "the pipeline never started");
        let started = !pipeline_resources(&sim).is_empty();
        if network_ready.is_none() {
            let ready = condition(&networks, NETWORK, "Ready")
                .await
                .is_some_and(|c| c.status == "True");
            if ready {
                network_ready = Some(Instant::now());
            } else {
                assert!(
                    !started,
                    "the pipeline made a resource before its network was Ready"
                );
            }
        }
        if let (Some(at), true) = (network_ready, started) {
            println!(
                "network Ready -> the pipeline's first AWS resource: {:.3} s (resync 5 s, polled every 10 ms)",
                at.elapsed().as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eventually(Duration::from_secs(240), "the pipeline Ready", || async {
        condition(&pipelines, PIPELINE, "Ready")
            .await
            .filter(|c| c.status == "True")
    })
    .await;

    let status = pipelines.get(PIPELINE).await.unwrap().status.unwrap();
    for (what, value) in [
        ("queueUrl", &status.queue_url),
        ("deadLetterQueueUrl", &status.dead_letter_queue_url),
        ("topicArn", &status.topic_arn),
        ("paymentFunctionArn", &status.payment_function_arn),
        ("pollerFunctionArn", &status.poller_function_arn),
        ("eventSourceMappingId", &status.event_source_mapping_id),
        ("tableName", &status.table_name),
        ("tableArn", &status.table_arn),
        ("kmsKeyArn", &status.kms_key_arn),
    ] {
        assert!(
            value.as_deref().is_some_and(|v| !v.is_empty()),
            "status.{what}: {value:?}"
        );
    }
    let rows: Vec<(String, ControlResult)> = status
        .common
        .compliance
        .iter()
        .map(|e| (e.id.clone(), e.result))
        .collect();
    assert_eq!(
        rows.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        hipaa_operator::compliance::PAYMENT_CONTROLS.to_vec()
    );
    for (id, result) in &rows {
        assert_eq!(
            *result,
            ControlResult::Passed,
            "{id}: {:?}",
            status.common.compliance
        );
    }
    assert_eq!(
        status.common.resources.len(),
        13,
        "{:?}",
        status.common.resources
    );
    // The functions run in the network's private subnets.
    let network = networks.get(NETWORK).await.unwrap().status.unwrap();
    let payment = sim
        .resources()
        .into_iter()
        .find_map(|(_, o)| match o.spec {
            Spec::LambdaFunction(f)
                if Some(&o.arn.clone().unwrap_or_default())
                    == status.payment_function_arn.as_ref() =>
            {
                Some(f)
            }
            _ => None,
        })
        .expect("the payment function on AWS");
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    assert_eq!(
        sorted(payment.subnet_ids.clone()),
        sorted(network.private_subnet_ids.clone())
    );
    assert_eq!(
        payment.environment.get("PAYMENT_TOPIC_ARN"),
        status.topic_arn.as_ref()
    );

    // Point-in-time recovery turned off behind the operator's back: drift, then back on.
    let table = status.table_name.clone().unwrap();
    sim.edit(Kind::DynamoDbTable, &table, |spec| {
        if let Spec::DynamoDbTable(t) = spec {
            t.point_in_time_recovery = false
        }
    })
    .unwrap();
    let pitr = |sim: &SimCloud| {
        sim.resources().into_iter().find_map(|(_, o)| match o.spec {
            Spec::DynamoDbTable(DynamoDbTableSpec {
                point_in_time_recovery,
                ..
            }) if o.id == table => Some(point_in_time_recovery),
            _ => None,
        })
    };
    assert_eq!(pitr(&sim), Some(false));
    let drift = eventually(
        Duration::from_secs(60),
        "the PITR drift reported",
        || async {
            let status = pipelines.get(PIPELINE).await.ok()?.status?;
            status
                .common
                .drift
                .into_iter()
                .find(|d| d.resource == "dynamodb/table" && d.field == "pointInTimeRecovery")
        },
    )
    .await;
    assert!(
        drift.change.contains("true") && drift.change.contains("false"),
        "{drift:?}"
    );
    eventually(Duration::from_secs(60), "PITR back on", || async {
        (pitr(&sim) == Some(true)).then_some(())
    })
    .await;

    // Delete: everything goes, the key scheduled for deletion.
    c.kubectl_ok(&["delete", "hpay", PIPELINE, "-n", NS, "--timeout=180s"])
        .await;
    let owner = Owner::new("PaymentPipeline", NS, PIPELINE);
    assert!(
        sim.owned(&owner).await.unwrap().is_empty(),
        "left: {:?}",
        pipeline_resources(&sim)
    );
    c.kubectl_ok(&["delete", "hnet", NETWORK, "-n", NS, "--timeout=300s"])
        .await;
    op.stop().await;
    c.stop().await;
}
