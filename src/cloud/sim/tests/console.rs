//! Out-of-band edits: visible to observe, never counted.

use crate::cloud::sim::testkit::*;
use crate::cloud::{
    CloudError, ElasticIpSpec, Kind, Lookup, Provider, SecurityGroupSpec, Spec, SubnetSpec,
    TAG_NODE,
};

#[tokio::test]
async fn edits_are_visible_to_observe_and_not_counted() {
    let sim = sim();
    let net = network(&sim).await;
    sim.reset_calls();
    sim.edit(Kind::Subnet, &net.public, |s| {
        if let Spec::Subnet(SubnetSpec {
            map_public_ip_on_launch,
            ..
        }) = s
        {
            *map_public_ip_on_launch = true;
        }
    })
    .unwrap();
    sim.edit(Kind::SecurityGroup, &net.sg, |s| {
        if let Spec::SecurityGroup(SecurityGroupSpec { ingress, .. }) = s {
            ingress.push(tcp(22, "0.0.0.0/0"));
        }
    })
    .unwrap();
    assert!(
        sim.calls().is_empty(),
        "console edits are not operator calls"
    );
    let subnet = observe_id(&sim, Kind::Subnet, &net.public).await.unwrap();
    assert!(matches!(
        subnet.spec,
        Spec::Subnet(SubnetSpec {
            map_public_ip_on_launch: true,
            ..
        })
    ));
    let sg = observe_id(&sim, Kind::SecurityGroup, &net.sg)
        .await
        .unwrap();
    assert!(
        matches!(&sg.spec, Spec::SecurityGroup(SecurityGroupSpec { ingress, .. }) if ingress == &vec![tcp(22, "0.0.0.0/0")])
    );
}

#[tokio::test]
async fn retagging_moves_what_the_tag_lookup_finds() {
    let sim = sim();
    let vpc = make(&sim, "vpc", vpc_spec()).await;
    sim.set_tag(Kind::Vpc, &vpc.id, TAG_NODE, "renamed")
        .unwrap();
    let lookups = [
        Lookup {
            node: "vpc".into(),
            recorded_id: None,
            desired: None,
        },
        Lookup {
            node: "renamed".into(),
            recorded_id: None,
            desired: None,
        },
    ];
    let found = sim.observe(Kind::Vpc, &owner(), &lookups).await.unwrap();
    assert_eq!(
        (found[0].is_none(), found[1].as_ref().map(|o| o.id.clone())),
        (true, Some(vpc.id.clone()))
    );
}

#[tokio::test]
async fn remove_deletes_at_once_whatever_the_state() {
    let sim = sim();
    let net = network(&sim).await;
    let nat = make(&sim, "nat", nat_spec(&net.public, &net.eip)).await;
    sim.remove(Kind::NatGateway, &nat.id).unwrap();
    assert!(
        observe_id(&sim, Kind::NatGateway, &nat.id).await.is_none(),
        "no deleting phase"
    );
    sim.delete(Kind::ElasticIp, &net.eip)
        .await
        .expect("the EIP is free at once");
    sim.remove(Kind::Vpc, &net.vpc).unwrap();
    assert!(
        !sim.resources()
            .iter()
            .any(|(k, _)| matches!(k, Kind::DefaultSecurityGroup | Kind::Vpc))
    );
}

#[tokio::test]
async fn console_calls_on_missing_or_wrong_kind_fail() {
    let sim = sim();
    let vpc = make(&sim, "vpc", vpc_spec()).await;
    assert!(
        matches!(
            sim.edit(Kind::Subnet, &vpc.id, |_| {}),
            Err(CloudError::NotFound { .. })
        ),
        "wrong kind"
    );
    assert!(matches!(
        sim.remove(Kind::Vpc, "vpc-00000000000000000"),
        Err(CloudError::NotFound { .. })
    ));
    assert!(matches!(
        sim.set_tag(Kind::Vpc, "nope", "a", "b"),
        Err(CloudError::NotFound { .. })
    ));
    let err = sim
        .edit(Kind::Vpc, &vpc.id, |s| {
            *s = Spec::ElasticIp(ElasticIpSpec {})
        })
        .unwrap_err();
    assert_eq!(
        code(&err),
        "InvalidParameterValue",
        "an edit cannot change the kind"
    );
    assert_eq!(
        observe_id(&sim, Kind::Vpc, &vpc.id).await.unwrap().spec,
        vpc_spec()
    );
}
