//! The whole HipaaNetwork against moto's server through the AWS SDK: a read-only plan,
//! converge, a no-op second pass, an out-of-band change made with the SDK (as a console
//! user would) found and remediated, and delete with nothing tagged left. AWS calls are
//! counted twice, by the operator and from moto's own request log, and must agree.
//!
//! One test function, run in order: moto's request log is shared by the whole server, so
//! it holds moto alone (`common::moto_alone`) while the other tests wait.

use std::time::Duration;

use crate::common::{self, moto};

use hipaa_operator::api::HipaaNetworkSpec;
use hipaa_operator::blueprint;
use hipaa_operator::cloud::aws::{AwsCloud, sdk_config};
use hipaa_operator::cloud::{Owner, Provider};
use hipaa_operator::engine::{self, ActionKind, Config, Engine, Mode, Records};

fn moto_endpoint() -> String {
    moto::endpoint()
}

fn moto_api(method: &str, path: &str) -> String {
    moto::api(&moto::endpoint(), method, path)
}

fn spec() -> HipaaNetworkSpec {
    serde_yaml_ng::from_str("region: us-east-1\ncidrBlock: 10.30.0.0/16\navailabilityZones: [us-east-1a, us-east-1b]\nbastion:\n  allowedCidrs: [203.0.113.0/24]\n  imageId: ami-0123456789abcdef0\ntags:\n  team: portal\n").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_on_moto_converges_drifts_back_and_deletes_with_matching_call_counts() {
    let _moto = common::moto_alone().await;
    let endpoint = moto_endpoint();
    let owner = Owner {
        kind: "HipaaNetwork".into(),
        namespace: "moto".into(),
        name: format!("net-{}", uuid::Uuid::new_v4().simple()),
    };
    let config = sdk_config("us-east-1", Some(&endpoint)).await;
    let cloud = AwsCloud::new(&config, "us-east-1");
    let engine = Engine::new(
        cloud.clone(),
        Config {
            base_backoff: Duration::from_millis(20),
            ..Config::default()
        },
    );
    let graph = blueprint::network::build(&owner, &spec()).unwrap();

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
    let theirs = moto::shared_recorded_counts();
    moto::print_counts(
        &format!("converge ({passes} passes), counted by the operator"),
        &ours,
    );
    assert_eq!(
        ours, theirs,
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
    moto::print_counts("no-drift pass, counted by the operator", &ours);
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

    // A console user opens SSH to the world on the bastion's security group.
    let sg = records["sg/bastion"].id.clone();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(
                    aws_sdk_ec2::types::IpRange::builder()
                        .cidr_ip("0.0.0.0/0")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("out-of-band change");
    let found = engine
        .converge(&graph, &owner, &records, Mode::Remediate)
        .await
        .unwrap();
    assert!(
        found.drift.iter().any(|d| d.node == "sg/bastion"
            && d.field == "ingress"
            && d.actual.contains("0.0.0.0/0")),
        "{:?}",
        found.drift
    );
    let after = engine
        .converge(&graph, &owner, &records, Mode::Remediate)
        .await
        .unwrap();
    assert!(after.drift.is_empty(), "remediated: {:?}", after.drift);

    // Delete leaves nothing tagged with the owner.
    let mut done = false;
    for _ in 0..300 {
        let deletion = engine.delete(&graph, &owner, &records).await.unwrap();
        if deletion.done {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(done, "delete finished");
    assert!(cloud.owned(&owner).await.unwrap().is_empty());
    moto_api("POST", "/moto-api/recorder/stop-recording");
}
