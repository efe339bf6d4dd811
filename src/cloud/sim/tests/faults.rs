//! Injected throttles and 5xx errors, and the call counter.

use crate::cloud::sim::testkit::*;
use crate::cloud::sim::{SimCloud, SimConfig};
use crate::cloud::{CallOutcome, CloudError, Kind, Provider};

fn outcomes(sim: &SimCloud, outcome: CallOutcome) -> u64 {
    sim.calls()
        .iter()
        .filter(|((_, _, o), _)| *o == outcome)
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test]
async fn fault_rates_are_roughly_honoured_over_1000_calls() {
    let config = SimConfig {
        throttle_rate: 0.1,
        server_error_rate: 0.05,
        seed: 42,
        ..SimConfig::fast()
    };
    let sim = SimCloud::new(config);
    for _ in 0..1000 {
        match sim.availability_zones("us-east-1").await {
            Ok(_) => {}
            Err(CloudError::Throttled { message, .. }) => {
                assert!(message.starts_with("RequestLimitExceeded"))
            }
            Err(CloudError::Server { message, .. }) => {
                assert!(message.starts_with("InternalError"))
            }
            Err(other) => panic!("{other}"),
        }
    }
    let (throttled, server, ok) = (
        outcomes(&sim, CallOutcome::Throttled),
        outcomes(&sim, CallOutcome::ServerError),
        outcomes(&sim, CallOutcome::Ok),
    );
    // Expected 100 throttles and 0.9 × 0.05 × 1000 = 45 server errors.
    assert!((70..=130).contains(&throttled), "throttled {throttled}");
    assert!((25..=70).contains(&server), "server errors {server}");
    assert_eq!(throttled + server + ok, 1000);
}

#[tokio::test]
async fn same_seed_same_faults() {
    let run = || async {
        let sim = SimCloud::new(SimConfig {
            throttle_rate: 0.3,
            server_error_rate: 0.3,
            seed: 7,
            ..SimConfig::fast()
        });
        let mut seen = Vec::new();
        for _ in 0..50 {
            seen.push(
                sim.availability_zones("us-east-1")
                    .await
                    .map_err(|e| e.category())
                    .err(),
            );
        }
        seen
    };
    assert_eq!(run().await, run().await);
}

#[tokio::test]
async fn a_faulted_call_does_nothing_and_is_retryable() {
    let sim = sim();
    let cases = [
        (1.0, 0.0, CallOutcome::Throttled, "throttled"),
        (0.0, 1.0, CallOutcome::ServerError, "server_error"),
    ];
    for (throttle, server, outcome, category) in cases {
        sim.set_faults(throttle, server);
        sim.reset_calls();
        let err = sim.create(&desired("vpc", vpc_spec())).await.unwrap_err();
        assert!(err.retryable() && err.category() == category, "{err}");
        assert!(
            sim.resources().is_empty(),
            "{category}: nothing was created"
        );
        assert_eq!(
            sim.calls().into_iter().collect::<Vec<_>>(),
            vec![(("ec2".into(), "CreateVpc".into(), outcome), 1)]
        );
    }
    sim.set_faults(1.0, 0.0);
    let err = sim
        .create(&desired("key", key_spec(false)))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("ThrottlingException"),
        "non-EC2 services say ThrottlingException: {err}"
    );
    sim.set_faults(0.0, 0.0);
    make(&sim, "vpc", vpc_spec()).await;
}

#[tokio::test]
async fn calls_are_counted_by_service_operation_and_outcome() {
    let sim = sim();
    let vpc = make(&sim, "vpc", vpc_spec()).await;
    observe_id(&sim, Kind::Vpc, &vpc.id).await;
    observe_id(&sim, Kind::Vpc, &vpc.id).await;
    make(&sim, "key", key_spec(false)).await;
    make(&sim, "logs", log_spec("/a", 0, "")).await;
    let _ = sim
        .create(&desired("logs", log_spec("/a", 0, "")))
        .await
        .unwrap_err();
    make(&sim, "role", role_spec("r", &[])).await;
    sim.owned(&owner()).await.unwrap();
    sim.delete(Kind::Vpc, &vpc.id).await.unwrap();
    sim.delete(Kind::Vpc, &vpc.id).await.unwrap();
    let want = [
        ("ec2", "CreateVpc", CallOutcome::Ok, 1),
        ("ec2", "DeleteVpc", CallOutcome::Ok, 1),
        ("ec2", "DeleteVpc", CallOutcome::ClientError, 1),
        ("ec2", "DescribeVpcs", CallOutcome::Ok, 2),
        ("iam", "CreateRole", CallOutcome::Ok, 1),
        ("kms", "CreateKey", CallOutcome::Ok, 1),
        ("kms", "PutKeyPolicy", CallOutcome::Ok, 1),
        ("logs", "CreateLogGroup", CallOutcome::Ok, 1),
        ("logs", "CreateLogGroup", CallOutcome::ClientError, 1),
        ("tagging", "GetResources", CallOutcome::Ok, 1),
    ];
    let got: Vec<(String, String, CallOutcome, u64)> = sim
        .calls()
        .into_iter()
        .map(|((s, o, c), n)| (s, o, c, n))
        .collect();
    let want: Vec<(String, String, CallOutcome, u64)> = want
        .iter()
        .map(|(s, o, c, n)| (s.to_string(), o.to_string(), *c, *n))
        .collect();
    assert_eq!(
        got, want,
        "the second delete hit InvalidVpcID.NotFound (client error) and still succeeded"
    );
    sim.reset_calls();
    assert!(sim.calls().is_empty());
}

#[tokio::test]
async fn latency_follows_time_scale() {
    let sim = SimCloud::new(SimConfig {
        time_scale: 0.1,
        ..SimConfig::default()
    });
    let start = std::time::Instant::now();
    sim.availability_zones("us-east-1").await.unwrap();
    let took = start.elapsed();
    // DescribeAvailabilityZones: 60 ms ± 20 % at scale 1.0, so 4.8–7.2 ms here.
    assert!(
        took >= std::time::Duration::from_millis(4) && took < std::time::Duration::from_millis(100),
        "{took:?}"
    );
}
