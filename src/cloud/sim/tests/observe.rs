//! Ids, observe (by id, by tags, batched, read-only), owned, the consistency window,
//! regions and zones.

use std::time::Duration;

use crate::cloud::sim::testkit::*;
use crate::cloud::sim::{SimCloud, SimConfig};
use crate::cloud::{
    DefaultSecurityGroupSpec, ElasticIpSpec, InstanceSpec, Kind, Lookup, Owner, Provider, Spec,
    TAG_MANAGED_BY, TAG_NODE, TAG_OWNER,
};

fn by_node(node: &str) -> Lookup {
    Lookup {
        node: node.into(),
        recorded_id: None,
        desired: None,
    }
}

fn hex_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == 17 && rest.chars().all(|c| c.is_ascii_hexdigit()))
}

#[tokio::test]
async fn ec2_ids_have_aws_formats() {
    let sim = sim();
    let net = network(&sim).await;
    let nat = make(&sim, "nat", nat_spec(&net.public, &net.eip)).await.id;
    let rt = make(&sim, "rt", table_spec(&net.vpc, vec![], &[])).await.id;
    let vm = make(&sim, "vm", instance_spec(&net.private, &net.sg, false))
        .await
        .id;
    let fl = make(&sim, "fl", flow_spec(&net.vpc)).await.id;
    let cases = [
        (net.vpc, "vpc-"),
        (net.public, "subnet-"),
        (net.igw, "igw-"),
        (net.eip, "eipalloc-"),
        (nat, "nat-"),
        (rt, "rtb-"),
        (net.sg, "sg-"),
        (vm, "i-"),
        (fl, "fl-"),
    ];
    for (id, prefix) in cases {
        assert!(hex_id(&id, prefix), "{id} is {prefix} + 17 hex digits");
    }
}

#[tokio::test]
async fn create_applies_tags_and_observe_finds_by_id_then_by_tags() {
    let sim = sim();
    let vpc = make(&sim, "vpc", vpc_spec()).await;
    for key in [TAG_OWNER, TAG_NODE, TAG_MANAGED_BY, "team"] {
        assert!(vpc.tags.contains_key(key), "{key} set at creation");
    }
    let lookups = [
        Lookup {
            node: "whatever".into(),
            recorded_id: Some(vpc.id.clone()),
            desired: None,
        },
        by_node("vpc"),
        Lookup {
            node: "vpc".into(),
            recorded_id: Some("vpc-0000000000000000a".into()),
            desired: None,
        },
        by_node("other"),
    ];
    sim.reset_calls();
    let found = sim.observe(Kind::Vpc, &owner(), &lookups).await.unwrap();
    let ids: Vec<Option<String>> = found
        .iter()
        .map(|o| o.as_ref().map(|o| o.id.clone()))
        .collect();
    let want = Some(vpc.id.clone());
    assert_eq!(
        ids,
        vec![want.clone(), want.clone(), want, None],
        "by id; by tags; stale id falls back to tags; no match"
    );
    assert_eq!(
        ops(&sim),
        vec!["DescribeVpcs"],
        "one batched call for four lookups"
    );
    assert_eq!(
        found[0].as_ref().unwrap(),
        &vpc,
        "observe reports what create returned"
    );
    let stranger = Owner {
        kind: "HipaaNetwork".into(),
        namespace: "other".into(),
        name: "prod".into(),
    };
    assert_eq!(
        sim.observe(Kind::Vpc, &stranger, &[by_node("vpc")])
            .await
            .unwrap(),
        vec![None],
        "other owner"
    );
    assert_eq!(
        sim.observe(Kind::Subnet, &owner(), &[by_node("vpc")])
            .await
            .unwrap(),
        vec![None],
        "other kind"
    );
}

#[tokio::test]
async fn of_two_tag_matches_the_oldest_is_returned() {
    let sim = sim();
    let first = make(&sim, "key", key_spec(true)).await;
    make(&sim, "key", key_spec(true)).await;
    let found = sim
        .observe(Kind::KmsKey, &owner(), &[by_node("key")])
        .await
        .unwrap();
    assert_eq!(found[0].as_ref().map(|o| o.id.clone()), Some(first.id));
}

#[tokio::test]
async fn observe_never_mutates() {
    let sim = sim();
    let net = network(&sim).await;
    let before = sim.resources();
    for kind in [
        Kind::Vpc,
        Kind::Subnet,
        Kind::SecurityGroup,
        Kind::DefaultSecurityGroup,
        Kind::ElasticIp,
    ] {
        let lookup = Lookup {
            node: "vpc".into(),
            recorded_id: None,
            desired: Some(Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
                vpc_id: net.vpc.clone(),
                ingress: vec![],
                egress: vec![],
            })),
        };
        sim.observe(kind, &owner(), &[lookup]).await.unwrap();
    }
    assert_eq!(sim.resources(), before);
}

#[tokio::test]
async fn observed_spec_and_attributes_reflect_reality() {
    let sim = sim();
    let net = network(&sim).await;
    let eip = observe_id(&sim, Kind::ElasticIp, &net.eip).await.unwrap();
    assert_eq!(eip.attributes.get("publicIp"), net.eip_ip.as_ref());
    assert!(eip.arn.is_none(), "EC2 Describe* return no ARN");
    let vm = make(&sim, "vm", instance_spec(&net.public, &net.sg, true)).await;
    sim.edit(Kind::Instance, &vm.id, |s| {
        if let Spec::Instance(InstanceSpec {
            imds_v2_required, ..
        }) = s
        {
            *imds_v2_required = false;
        }
    })
    .unwrap();
    let seen = observe_id(&sim, Kind::Instance, &vm.id).await.unwrap();
    assert!(
        matches!(
            seen.spec,
            Spec::Instance(InstanceSpec {
                imds_v2_required: false,
                ..
            })
        ),
        "the console edit shows"
    );
    assert!(seen.attributes.contains_key("publicIp") && seen.attributes.contains_key("privateIp"));
}

#[tokio::test]
async fn consistency_window_hides_new_resources_then_shows_them() {
    let sim = SimCloud::new(SimConfig {
        consistency_window: Duration::from_millis(300),
        ..SimConfig::fast()
    });
    let vpc = make(&sim, "vpc", vpc_spec()).await;
    assert!(
        observe_id(&sim, Kind::Vpc, &vpc.id).await.is_none(),
        "not by id"
    );
    assert_eq!(
        sim.observe(Kind::Vpc, &owner(), &[by_node("vpc")])
            .await
            .unwrap(),
        vec![None],
        "not by tags"
    );
    assert!(
        sim.owned(&owner()).await.unwrap().is_empty(),
        "not in the tag search"
    );
    assert!(
        sim.resources().iter().any(|(_, o)| o.id == vpc.id),
        "but it exists"
    );
    let doomed = make(&sim, "doomed", Spec::ElasticIp(ElasticIpSpec {})).await;
    sim.delete(Kind::ElasticIp, &doomed.id)
        .await
        .expect("delete inside the window works");
    assert!(!sim.resources().iter().any(|(_, o)| o.id == doomed.id));
    tokio::time::sleep(Duration::from_millis(320)).await;
    assert_eq!(
        observe_id(&sim, Kind::Vpc, &vpc.id).await.map(|o| o.id),
        Some(vpc.id.clone())
    );
    assert_eq!(
        sim.owned(&owner())
            .await
            .unwrap()
            .into_iter()
            .map(|o| (o.kind, o.id))
            .collect::<Vec<_>>(),
        vec![(Kind::Vpc, vpc.id)]
    );
    sim.set_consistency_window(Duration::ZERO);
    let now = make(&sim, "eip", Spec::ElasticIp(ElasticIpSpec {})).await;
    assert!(
        observe_id(&sim, Kind::ElasticIp, &now.id).await.is_some(),
        "window off: visible at once"
    );
}

#[tokio::test]
async fn owned_lists_every_tagged_resource_oldest_first() {
    let sim = sim();
    let net = network(&sim).await;
    let owned = sim.owned(&owner()).await.unwrap();
    let kinds: Vec<Kind> = owned.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        vec![
            Kind::Vpc,
            Kind::InternetGateway,
            Kind::Subnet,
            Kind::Subnet,
            Kind::ElasticIp,
            Kind::SecurityGroup
        ]
    );
    assert_eq!(owned[0].id, net.vpc);
    assert_eq!(count(&sim, "GetResources"), 1);
    sim.remove_tag(Kind::ElasticIp, &net.eip, TAG_OWNER)
        .unwrap();
    assert_eq!(
        sim.owned(&owner()).await.unwrap().len(),
        5,
        "untagged: no longer the owner's"
    );
}

#[tokio::test]
async fn availability_zones_by_region() {
    let sim = sim();
    let cases = [
        ("us-east-1", 6, "us-east-1f"),
        ("us-west-2", 4, "us-west-2d"),
        ("eu-west-1", 3, "eu-west-1c"),
    ];
    for (region, n, last) in cases {
        let zones = sim.availability_zones(region).await.unwrap();
        assert_eq!(
            (zones.len(), zones.last().map(String::as_str)),
            (n, Some(last)),
            "{region}"
        );
    }
    let err = sim.availability_zones("mars-north-1").await.unwrap_err();
    assert!(
        !err.retryable() && code(&err) == "InvalidParameterValue",
        "{err}"
    );
}

#[tokio::test]
async fn region_shapes_arns_and_zones() {
    let sim = SimCloud::with_region(SimConfig::fast(), "eu-west-1");
    assert_eq!(sim.region(), "eu-west-1");
    let key = make(&sim, "key", key_spec(false)).await;
    assert!(
        key.arn
            .unwrap()
            .starts_with("arn:aws:kms:eu-west-1:123456789012:key/")
    );
    let vpc = make(&sim, "vpc", vpc_spec()).await.id;
    make(&sim, "a", subnet_spec(&vpc, "10.0.0.0/24", "eu-west-1a")).await;
    let err = sim
        .create(&desired(
            "b",
            subnet_spec(&vpc, "10.0.1.0/24", "us-east-1a"),
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterValue");
}

#[tokio::test]
async fn provider_futures_are_send() {
    let sim = sim();
    let d = desired("vpc", vpc_spec());
    let task = tokio::spawn(async move {
        let vpc = sim.create(&d).await?;
        sim.observe(Kind::Vpc, &owner(), &[by_node("vpc")]).await?;
        sim.update(&d, &vpc).await?;
        sim.delete(Kind::Vpc, &vpc.id).await?;
        sim.owned(&owner()).await
    });
    assert!(task.await.unwrap().unwrap().is_empty());
}
