//! The example's PaymentPipeline against moto's server through the AWS SDK, in its
//! network: a read-only plan, converge, a no-op second pass, point-in-time recovery
//! turned off with the SDK found and remediated, and delete with nothing tagged left.
//! AWS calls are counted by the operator and from moto's own request log, and must agree
//! (the figures in BENCHMARKS.md).
//!
//! moto's request log is shared by the whole server: the test holds moto alone.

use std::time::Duration;

use crate::common::{self, moto};

use hipaa_operator::api::{HipaaNetworkSpec, PaymentPipeline};
use hipaa_operator::blueprint;
use hipaa_operator::blueprint::payment::NetworkOutputs;
use hipaa_operator::cloud::aws::{AwsCloud, sdk_config};
use hipaa_operator::cloud::{Owner, Provider};
use hipaa_operator::engine::{self, ActionKind, Config, Engine, Mode, Records};

fn moto_api(method: &str, path: &str) -> String {
    moto::api(&moto::endpoint(), method, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_on_moto_converges_drifts_back_and_deletes_with_matching_call_counts() {
    let _moto = common::moto_alone().await;
    let endpoint = moto::endpoint();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let config = sdk_config("us-east-1", Some(&endpoint)).await;
    let cloud = AwsCloud::new(&config, "us-east-1");
    let engine = Engine::new(
        cloud.clone(),
        Config {
            base_backoff: Duration::from_millis(20),
            ..Config::default()
        },
    );

    // Its network first.
    let network_owner = Owner::new("HipaaNetwork", "moto", &format!("net-{suffix}"));
    let network_spec: HipaaNetworkSpec = serde_yaml_ng::from_str(
        "region: us-east-1\ncidrBlock: 10.31.0.0/16\navailabilityZones: [us-east-1a, us-east-1b]\nbastion:\n  allowedCidrs: [203.0.113.0/24]\n  imageId: ami-0123456789abcdef0\n",
    )
    .unwrap();
    let network_graph = blueprint::network::build(&network_owner, &network_spec).unwrap();
    let (network, network_records, _) = engine::run_until_ready(
        &engine,
        &network_graph,
        &network_owner,
        &Records::new(),
        Mode::Remediate,
        Duration::from_millis(200),
        300,
    )
    .await
    .unwrap();
    assert!(network.ready);
    let outputs = NetworkOutputs {
        vpc_id: network_records["vpc"].id.clone(),
        private_subnet_ids: ["subnet/private/us-east-1a", "subnet/private/us-east-1b"]
            .map(|n| network_records[n].id.clone())
            .to_vec(),
    };

    // The functions' code where the example says it is.
    let pipeline: PaymentPipeline =
        serde_yaml_ng::from_str(&common::example("PaymentPipeline")).unwrap();
    for code in [
        &pipeline.spec.payment_function.code,
        &pipeline.spec.poller_function.function.code,
    ] {
        moto::request(
            &endpoint,
            "s3",
            "PUT",
            &format!("/{}", code.s3_bucket),
            "text/plain",
            b"",
        );
        let path = format!("/{}/{}", code.s3_bucket, code.s3_key);
        let (status, body) = moto::request(
            &endpoint,
            "s3",
            "PUT",
            &path,
            "application/zip",
            &crate::contract::empty_zip(&code.s3_key),
        );
        assert_eq!(status, 200, "{body}");
    }
    let owner = Owner::new("PaymentPipeline", "moto", &format!("pay-{}", &suffix[..12]));
    let graph = blueprint::payment::build(&owner, &pipeline.spec, &outputs).unwrap();

    // A plan makes no mutating call, as moto's log shows.
    moto_api("POST", "/moto-api/recorder/reset-recording");
    moto_api("POST", "/moto-api/recorder/start-recording");
    let plan = engine.plan(&graph, &owner, &Records::new()).await.unwrap();
    assert!(plan.actions.iter().all(|a| a.action == ActionKind::Create));
    assert_eq!(
        moto::mutating(&moto::shared_recorded_counts()),
        0,
        "plan is read-only: {:?}",
        moto::shared_recorded_counts()
    );

    // Converge, counting calls both ways.
    moto_api("POST", "/moto-api/recorder/reset-recording");
    cloud.reset_calls();
    let (outcome, records, passes) = engine::run_until_ready(
        &engine,
        &graph,
        &owner,
        &Records::new(),
        Mode::Remediate,
        Duration::from_millis(200),
        300,
    )
    .await
    .unwrap();
    assert!(outcome.ready, "{:?}", outcome.errors().collect::<Vec<_>>());
    let ours = moto::operator_counts(&cloud.calls());
    moto::print_counts(
        &format!("pipeline converge ({passes} passes), counted by the operator"),
        &ours,
    );
    assert_eq!(
        ours,
        moto::shared_recorded_counts(),
        "the operator's count and moto's request log agree"
    );

    // A no-op second pass.
    moto_api("POST", "/moto-api/recorder/reset-recording");
    cloud.reset_calls();
    let second = engine
        .converge(&graph, &owner, &records, Mode::Remediate)
        .await
        .unwrap();
    assert!(
        second.ready && second.drift.is_empty(),
        "{:?}",
        second.drift
    );
    let ours = moto::operator_counts(&cloud.calls());
    moto::print_counts("pipeline no-drift pass, counted by the operator", &ours);
    assert_eq!(
        ours,
        moto::shared_recorded_counts(),
        "counts agree on the steady pass too"
    );
    assert_eq!(
        moto::mutating(&ours),
        0,
        "a no-drift pass makes no mutating call"
    );

    // Point-in-time recovery off through the SDK: found, then turned on again.
    let table = records["dynamodb/table"].id.clone();
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    dynamodb
        .update_continuous_backups()
        .table_name(&table)
        .point_in_time_recovery_specification(
            aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(false)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let found = engine
        .converge(&graph, &owner, &records, Mode::Remediate)
        .await
        .unwrap();
    assert!(
        found
            .drift
            .iter()
            .any(|d| d.node == "dynamodb/table" && d.field == "pointInTimeRecovery"),
        "{:?}",
        found.drift
    );
    let after = engine
        .converge(&graph, &owner, &records, Mode::Remediate)
        .await
        .unwrap();
    assert!(after.drift.is_empty(), "remediated: {:?}", after.drift);

    // Delete leaves nothing tagged with the pipeline, then the network goes.
    for (graph, owner, records) in [
        (&graph, &owner, &records),
        (&network_graph, &network_owner, &network_records),
    ] {
        let mut done = false;
        for _ in 0..300 {
            if engine.delete(graph, owner, records).await.unwrap().done {
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(done, "{owner}: delete finished");
        assert!(
            cloud.owned(owner).await.unwrap().is_empty(),
            "{owner}: nothing left"
        );
    }
}
