//! `DependencyViolation` on delete, one case per AWS rule: the delete is refused while the
//! dependent exists and succeeds once it is gone.

use crate::cloud::sim::SimCloud;
use crate::cloud::sim::testkit::*;
use crate::cloud::{CloudError, InternetGatewaySpec, Kind, Provider, Spec};

#[derive(Clone, Copy, Debug)]
enum Case {
    VpcWithSubnet,
    VpcWithAttachedIgw,
    VpcWithSecurityGroup,
    VpcWithRouteTable,
    VpcWithInstance,
    SubnetWithNat,
    SubnetWithInstance,
    SgUsedByInstance,
    SgReferencedByOtherSg,
    EipHeldByNat,
    IgwWithNatEip,
    IgwWithPublicInstance,
}

/// Builds the case: what to delete, and what blocks it (deleted in order to unblock).
async fn setup(sim: &SimCloud, case: Case) -> ((Kind, String), Vec<(Kind, String)>) {
    let vpc_only = || async { make(sim, "vpc", vpc_spec()).await.id };
    match case {
        Case::VpcWithSubnet => {
            let vpc = vpc_only().await;
            let s = make(sim, "s", subnet_spec(&vpc, "10.0.0.0/24", "us-east-1a"))
                .await
                .id;
            ((Kind::Vpc, vpc), vec![(Kind::Subnet, s)])
        }
        Case::VpcWithAttachedIgw => {
            let vpc = vpc_only().await;
            let igw = make(
                sim,
                "igw",
                Spec::InternetGateway(InternetGatewaySpec {
                    vpc_id: vpc.clone(),
                }),
            )
            .await
            .id;
            ((Kind::Vpc, vpc), vec![(Kind::InternetGateway, igw)])
        }
        Case::VpcWithSecurityGroup => {
            let vpc = vpc_only().await;
            let sg = make(sim, "sg", sg_spec(&vpc, "app", vec![], vec![]))
                .await
                .id;
            ((Kind::Vpc, vpc), vec![(Kind::SecurityGroup, sg)])
        }
        Case::VpcWithRouteTable => {
            let vpc = vpc_only().await;
            let rt = make(sim, "rt", table_spec(&vpc, vec![], &[])).await.id;
            ((Kind::Vpc, vpc), vec![(Kind::RouteTable, rt)])
        }
        Case::VpcWithInstance => {
            let vpc = vpc_only().await;
            let s = make(sim, "s", subnet_spec(&vpc, "10.0.0.0/24", "us-east-1a"))
                .await
                .id;
            let i = make(sim, "vm", instance_spec(&s, "", false)).await.id;
            (
                (Kind::Vpc, vpc),
                vec![(Kind::Instance, i), (Kind::Subnet, s)],
            )
        }
        Case::SubnetWithNat => {
            let net = network(sim).await;
            let nat = make(sim, "nat", nat_spec(&net.public, &net.eip)).await.id;
            ((Kind::Subnet, net.public), vec![(Kind::NatGateway, nat)])
        }
        Case::SubnetWithInstance => {
            let net = network(sim).await;
            let i = make(sim, "vm", instance_spec(&net.private, &net.sg, false))
                .await
                .id;
            ((Kind::Subnet, net.private), vec![(Kind::Instance, i)])
        }
        Case::SgUsedByInstance => {
            let net = network(sim).await;
            let i = make(sim, "vm", instance_spec(&net.private, &net.sg, false))
                .await
                .id;
            ((Kind::SecurityGroup, net.sg), vec![(Kind::Instance, i)])
        }
        Case::SgReferencedByOtherSg => {
            let vpc = vpc_only().await;
            let a = make(sim, "a", sg_spec(&vpc, "a", vec![], vec![])).await.id;
            let b = make(sim, "b", sg_spec(&vpc, "b", vec![tcp(5432, &a)], vec![]))
                .await
                .id;
            ((Kind::SecurityGroup, a), vec![(Kind::SecurityGroup, b)])
        }
        Case::EipHeldByNat => {
            let net = network(sim).await;
            let nat = make(sim, "nat", nat_spec(&net.public, &net.eip)).await.id;
            ((Kind::ElasticIp, net.eip), vec![(Kind::NatGateway, nat)])
        }
        Case::IgwWithNatEip => {
            let net = network(sim).await;
            let nat = make(sim, "nat", nat_spec(&net.public, &net.eip)).await.id;
            (
                (Kind::InternetGateway, net.igw),
                vec![(Kind::NatGateway, nat)],
            )
        }
        Case::IgwWithPublicInstance => {
            let net = network(sim).await;
            let i = make(sim, "vm", instance_spec(&net.public, &net.sg, true))
                .await
                .id;
            ((Kind::InternetGateway, net.igw), vec![(Kind::Instance, i)])
        }
    }
}

#[tokio::test]
async fn each_dependency_blocks_delete_until_it_is_gone() {
    let cases = [
        Case::VpcWithSubnet,
        Case::VpcWithAttachedIgw,
        Case::VpcWithSecurityGroup,
        Case::VpcWithRouteTable,
        Case::VpcWithInstance,
        Case::SubnetWithNat,
        Case::SubnetWithInstance,
        Case::SgUsedByInstance,
        Case::SgReferencedByOtherSg,
        Case::EipHeldByNat,
        Case::IgwWithNatEip,
        Case::IgwWithPublicInstance,
    ];
    for case in cases {
        let sim = sim();
        let ((kind, id), blockers) = setup(&sim, case).await;
        let err = sim.delete(kind, &id).await.unwrap_err();
        assert!(
            matches!(err, CloudError::DependencyViolation { .. }) && err.retryable(),
            "{case:?}: {err}"
        );
        for (blocker_kind, blocker) in &blockers {
            sim.delete(*blocker_kind, blocker)
                .await
                .unwrap_or_else(|e| panic!("{case:?}: {e}"));
            wait_gone(&sim, blocker).await;
        }
        sim.delete(kind, &id)
            .await
            .unwrap_or_else(|e| panic!("{case:?} after the dependents went: {e}"));
        assert!(
            !sim.resources().iter().any(|(_, o)| o.id == id),
            "{case:?}: {id} deleted"
        );
    }
}

#[tokio::test]
async fn nat_and_instance_block_while_deleting() {
    // A slower clock: NAT deleting 300 ms, instance shutting down 200 ms.
    for case in [
        Case::SubnetWithNat,
        Case::EipHeldByNat,
        Case::SgUsedByInstance,
        Case::IgwWithPublicInstance,
    ] {
        let sim = sim_at(0.005);
        let ((kind, id), blockers) = setup(&sim, case).await;
        let (blocker_kind, blocker) = &blockers[0];
        sim.delete(*blocker_kind, blocker).await.unwrap();
        let err = sim.delete(kind, &id).await.unwrap_err();
        assert!(
            matches!(err, CloudError::DependencyViolation { .. }),
            "{case:?}: still blocked while deleting: {err}"
        );
        wait_gone(&sim, blocker).await;
        sim.delete(kind, &id)
            .await
            .unwrap_or_else(|e| panic!("{case:?}: {e}"));
    }
}

#[tokio::test]
async fn igw_detach_error_is_the_aws_mapped_address_message() {
    let sim = sim();
    let ((_, igw), _) = setup(&sim, Case::IgwWithNatEip).await;
    let err = sim.delete(Kind::InternetGateway, &igw).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("has some mapped public address(es)"),
        "{err}"
    );
    assert_eq!(count(&sim, "DetachInternetGateway"), 1);
    assert_eq!(
        count(&sim, "DeleteInternetGateway"),
        0,
        "the delete never ran"
    );
}

#[tokio::test]
async fn delete_of_missing_resources_succeeds_for_every_kind() {
    let sim = sim();
    let kinds = [
        (Kind::KmsKey, "0b1c2d3e-0000-4000-8000-000000000000"),
        (Kind::LogGroup, "/nope"),
        (Kind::IamRole, "AROANOPE"),
        (Kind::Vpc, "vpc-00000000000000000"),
        (Kind::DefaultSecurityGroup, "sg-00000000000000000"),
        (Kind::Subnet, "subnet-00000000000000000"),
        (Kind::InternetGateway, "igw-00000000000000000"),
        (Kind::ElasticIp, "eipalloc-00000000000000000"),
        (Kind::NatGateway, "nat-00000000000000000"),
        (Kind::RouteTable, "rtb-00000000000000000"),
        (Kind::SecurityGroup, "sg-00000000000000000"),
        (Kind::Instance, "i-00000000000000000"),
        (Kind::FlowLog, "fl-00000000000000000"),
        (Kind::SnsTopic, "arn:aws:sns:us-east-1:123456789012:nope"),
        (
            Kind::SqsQueue,
            "https://sqs.us-east-1.amazonaws.com/123456789012/nope",
        ),
        (Kind::DynamoDbTable, "nope"),
    ];
    for (kind, id) in kinds {
        sim.delete(kind, id)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    }
}

#[tokio::test]
async fn delete_twice_succeeds_and_whole_stack_tears_down_in_order() {
    let sim = sim();
    let net = network(&sim).await;
    let nat = make(&sim, "nat", nat_spec(&net.public, &net.eip)).await.id;
    let rt = make(
        &sim,
        "rt",
        table_spec(&net.vpc, vec![route("0.0.0.0/0", &nat)], &[&net.private]),
    )
    .await
    .id;
    let vm = make(&sim, "vm", instance_spec(&net.private, &net.sg, false))
        .await
        .id;
    let order = [
        (Kind::Instance, vm),
        (Kind::NatGateway, nat),
        (Kind::RouteTable, rt),
        (Kind::ElasticIp, net.eip),
        (Kind::SecurityGroup, net.sg),
        (Kind::Subnet, net.public),
        (Kind::Subnet, net.private),
        (Kind::InternetGateway, net.igw),
        (Kind::Vpc, net.vpc),
    ];
    for (kind, id) in &order {
        loop {
            match sim.delete(*kind, id).await {
                Ok(()) => break,
                Err(CloudError::DependencyViolation { .. }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await
                }
                Err(e) => panic!("{kind:?} {id}: {e}"),
            }
        }
        sim.delete(*kind, id)
            .await
            .expect("second delete is success");
        wait_gone(&sim, id).await;
    }
    assert!(sim.owned(&owner()).await.unwrap().is_empty());
    assert!(
        sim.resources().is_empty(),
        "default SG and main route table went with the VPC: {:?}",
        sim.resources()
    );
}
