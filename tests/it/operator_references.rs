//! References between custom resources, on the devcluster with the simulated AWS: a
//! referrer waits for its network (no AWS call, `WaitingForReference`), starts the moment
//! the network is Ready (a watch, not its resync), and the network's deletion waits for
//! the referrer (`DependentsExist`).
//!
//! The referrer is a kind of this test's own (`TestReferrer`, one AWS resource: a
//! security group in the referenced network's VPC), run by the operator's generic
//! controller like any hipaa.dev kind.

use std::time::{Duration, Instant};

use crate::common::{Cluster, eventually, sim_operator_with};
use hipaa_operator::api::{CommonSpec, CommonStatus, ComplianceEntry, HipaaNetwork, LocalRef};
use hipaa_operator::blueprint::network::resource_name;
use hipaa_operator::blueprint::{BlueprintError, Graph, Node};
use hipaa_operator::cloud::sim::{SimCloud, SimConfig};
use hipaa_operator::cloud::{Kind, Owner, Provider, SecurityGroupSpec, Spec, TAG_OWNER};
use hipaa_operator::compliance::ObservedNode;
use hipaa_operator::controller::references::resource_of;
use hipaa_operator::controller::stack::{Referenced, Target, common_status_of};
use hipaa_operator::controller::status::{READY, condition};
use hipaa_operator::controller::{Settings, Stack};
use hipaa_operator::engine::Outcome;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, PostParams};
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const NS: &str = "clinic";
const NETWORK: &str = "clinic-net";
const REFERRER: &str = "clinic-app";

/// A minimal referring kind: one security group in the referenced network's VPC.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "test.hipaa.dev",
    version = "v1",
    kind = "TestReferrer",
    namespaced,
    status = "TestReferrerStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct TestReferrerSpec {
    #[serde(flatten)]
    common: CommonSpec,
    network_ref: LocalRef,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestReferrerStatus {
    #[serde(flatten)]
    common: CommonStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    security_group_id: Option<String>,
}

impl Stack for TestReferrer {
    const KIND: &'static str = "TestReferrer";
    const TARGET: Option<Target> = Some(Target {
        kind: "HipaaNetwork",
        field: "networkRef",
        resource: resource_of::<HipaaNetwork>,
        placeholder: hipaa_operator::controller::network::planned_outputs,
    });
    const CONTROLS: &'static [&'static str] = &[];
    type Status = TestReferrerStatus;

    fn common_spec(&self) -> &CommonSpec {
        &self.spec.common
    }
    fn status(&self) -> Option<&TestReferrerStatus> {
        self.status.as_ref()
    }
    fn common_status(status: &TestReferrerStatus) -> &CommonStatus {
        &status.common
    }
    fn with_common(status: TestReferrerStatus, common: CommonStatus) -> TestReferrerStatus {
        TestReferrerStatus { common, ..status }
    }
    fn reference(&self) -> Option<&str> {
        Some(&self.spec.network_ref.name)
    }
    fn blueprint(
        &self,
        owner: &Owner,
        target: Option<&Referenced>,
    ) -> Result<Graph, BlueprintError> {
        let vpc = target
            .and_then(|t| t.output("vpcId"))
            .ok_or(BlueprintError {
                field: "spec.networkRef".into(),
                message: "the network has no vpcId".into(),
            })?;
        Ok(Graph {
            nodes: vec![Node {
                key: "sg/app".into(),
                spec: Spec::SecurityGroup(SecurityGroupSpec {
                    vpc_id: vpc.into(),
                    name: resource_name(owner, "test-app", 255),
                    description: "test referrer".into(),
                    ingress: vec![],
                    egress: vec![],
                }),
                after: Default::default(),
            }],
            tags: self.spec.common.tags.clone(),
            region: self.spec.common.region.clone(),
        })
    }
    fn compliance(
        &self,
        _: &[ObservedNode],
        _: i32,
        _: Option<&Referenced>,
    ) -> Vec<ComplianceEntry> {
        Vec::new()
    }
    fn status_after(&self, common: CommonStatus, _: &Outcome) -> TestReferrerStatus {
        let security_group_id = common
            .resources
            .iter()
            .find(|r| r.node == "sg/app")
            .and_then(|r| r.id.clone());
        TestReferrerStatus {
            common,
            security_group_id,
        }
    }
}

fn referrer_owner() -> Owner {
    Owner::new("TestReferrer", NS, REFERRER)
}

/// Security groups tagged with the referrer as their owner, with their VPC.
fn referrer_groups(sim: &SimCloud) -> Vec<(String, String)> {
    let owner = referrer_owner().to_string();
    sim.resources()
        .into_iter()
        .filter(|(kind, o)| *kind == Kind::SecurityGroup && o.tags.get(TAG_OWNER) == Some(&owner))
        .map(|(_, o)| match o.spec {
            Spec::SecurityGroup(SecurityGroupSpec { vpc_id, .. }) => (o.id, vpc_id),
            _ => unreachable!("filtered on the kind"),
        })
        .collect()
}

/// The Ready condition of the object `name` of kind `K`, if it exists and has one.
async fn ready_condition<K: Stack>(c: &Cluster, name: &str) -> Option<Condition> {
    let object = Api::<K>::namespaced(c.client(), NS)
        .get_opt(name)
        .await
        .ok()??;
    condition(&common_status_of(&object).conditions, READY).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referrer_waits_for_its_network_starts_when_it_is_ready_and_holds_its_deletion() {
    let c = Cluster::start().await;
    c.install_crds().await;
    Api::<CustomResourceDefinition>::all(c.client())
        .create(&PostParams::default(), &TestReferrer::crd())
        .await
        .expect("the test kind's CRD");
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=10s",
        "crd/testreferrers.test.hipaa.dev",
    ])
    .await;
    c.create_namespace(NS).await;
    let sim = SimCloud::new(SimConfig::fast());
    // A resync far longer than the test: whatever happens within it was a watch's doing.
    let settings = Settings {
        resync: Duration::from_secs(600),
        pending_requeue: Duration::from_millis(100),
        backoff_base: Duration::from_millis(500),
        backoff_cap: Duration::from_secs(4),
        ..Settings::default()
    };
    let op = sim_operator_with(&c, &sim, settings, |runner| runner.with::<TestReferrer>()).await;

    // The referrer first, naming a network that does not exist yet.
    let manifest = c.home.join("referrer.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: test.hipaa.dev/v1\nkind: TestReferrer\nmetadata:\n  name: {REFERRER}\n\
             spec:\n  region: us-east-1\n  networkRef:\n    name: {NETWORK}\n"
        ),
    )
    .unwrap();
    c.kubectl_ok(&["apply", "-n", NS, "-f", manifest.to_str().unwrap()])
        .await;
    let waiting = eventually(Duration::from_secs(30), "WaitingForReference", || async {
        ready_condition::<TestReferrer>(&c, REFERRER)
            .await
            .filter(|c| c.reason == "WaitingForReference")
    })
    .await;
    assert_eq!(waiting.status, "False");
    assert!(
        waiting
            .message
            .contains(&format!("HipaaNetwork {NS}/{NETWORK} does not exist")),
        "{}",
        waiting.message
    );
    assert!(
        sim.calls().is_empty(),
        "no AWS call while waiting: {:?}",
        sim.calls()
    );

    // The network (the example, deleted with its resources at the end).
    let network = c.example_file("HipaaNetwork");
    c.kubectl_ok(&["apply", "-n", NS, "-f", network.to_str().unwrap()])
        .await;
    c.kubectl_ok(&[
        "patch",
        "hnet",
        NETWORK,
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"deletionPolicy":"Delete"}}"#,
    ])
    .await;
    // Until the network is Ready the referrer has nothing on AWS; the moment it is, the
    // referrer creates its security group in the network's VPC. Polled every 10 ms to
    // time it (the figure in BENCHMARKS.md; not asserted: a loaded machine may be slow).
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut network_ready: Option<Instant> = None;
    let groups = loop {
        assert!(Instant::now() < deadline, "the referrer never started");
        let groups = referrer_groups(&sim);
        if network_ready.is_none() {
            let ready = ready_condition::<HipaaNetwork>(&c, NETWORK)
                .await
                .is_some_and(|c| c.status == "True");
            if ready {
                network_ready = Some(Instant::now());
            } else {
                assert!(
                    groups.is_empty(),
                    "the referrer made its AWS resource before the network was Ready"
                );
            }
        }
        if let (Some(ready), false) = (network_ready, groups.is_empty()) {
            println!(
                "network Ready -> the referrer's security group on AWS: {:.3} s (resync 600 s, polled every 10 ms)",
                ready.elapsed().as_secs_f64()
            );
            break groups;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let network = Api::<HipaaNetwork>::namespaced(c.client(), NS)
        .get(NETWORK)
        .await
        .unwrap();
    let vpc = network.status.unwrap().vpc_id.unwrap();
    assert_eq!(
        groups,
        vec![(groups[0].0.clone(), vpc)],
        "one group, in the network's VPC"
    );
    eventually(Duration::from_secs(60), "the referrer Ready", || async {
        ready_condition::<TestReferrer>(&c, REFERRER)
            .await
            .filter(|c| c.status == "True")
    })
    .await;

    // Deleting the network waits for the referrer.
    c.kubectl_ok(&["delete", "hnet", NETWORK, "-n", NS, "--wait=false"])
        .await;
    let held = eventually(Duration::from_secs(30), "DependentsExist", || async {
        ready_condition::<HipaaNetwork>(&c, NETWORK)
            .await
            .filter(|c| c.reason == "DependentsExist")
    })
    .await;
    assert!(
        held.message.contains(&format!("TestReferrer {REFERRER}")),
        "{}",
        held.message
    );
    let network_owner = Owner::new("HipaaNetwork", NS, NETWORK);
    assert!(
        !sim.owned(&network_owner).await.unwrap().is_empty(),
        "nothing of the network is deleted while the referrer exists"
    );
    assert_eq!(referrer_groups(&sim).len(), 1);

    // Once the referrer is gone, the network's deletion goes on at once (no resync).
    c.kubectl_ok(&[
        "delete",
        "testreferrer",
        REFERRER,
        "-n",
        NS,
        "--timeout=60s",
    ])
    .await;
    assert!(referrer_groups(&sim).is_empty());
    eventually(Duration::from_secs(120), "the network gone", || async {
        Api::<HipaaNetwork>::namespaced(c.client(), NS)
            .get_opt(NETWORK)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(sim.owned(&network_owner).await.unwrap().is_empty());
    op.stop().await;
    c.stop().await;
}
