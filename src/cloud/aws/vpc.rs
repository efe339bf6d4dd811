//! VPCs: `CreateVpc` (tags at creation) then one `ModifyVpcAttribute` per DNS attribute
//! that differs from AWS's defaults (support on, hostnames off). Observe reads
//! `DescribeVpcs` (owner tag, then recorded ids) and, for each matched VPC, its two DNS
//! attributes (`DescribeVpcAttribute`: AWS reports them nowhere else).
//!
//! Also holds what the network kinds of this backend share: recorded ids not yet seen,
//! id filters, merged tags.

use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, ResourceType, Vpc, VpcAttributeName, VpcState,
};

use super::paginate;
use super::{
    AwsCloud, ensure_ec2_tags, from_ec2_tags, match_lookups, missing_tags, owner_filter,
    tag_specification,
};
use crate::cloud::{
    CloudError, Desired, Kind, KindSpec, Lookup, Observed, Owned, Owner, State, TAG_NODE, VpcSpec,
};

/// Recorded ids of `lookups` that are not among `seen` (sorted, no duplicates).
pub(super) fn unseen<'a>(
    lookups: &[Lookup],
    seen: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let seen: Vec<&str> = seen.into_iter().collect();
    let mut ids: Vec<String> = lookups
        .iter()
        .filter_map(|l| l.recorded_id.clone())
        .filter(|id| !seen.contains(&id.as_str()))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A filter on ids (`vpc-id`, `subnet-id`, …): unlike the `*Ids` parameters, an unknown
/// id is simply not found instead of failing the whole call with `*.NotFound`.
pub(super) fn id_filter(name: &str, ids: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(ids.to_vec()))
        .build()
}

/// `observed.tags` once `ensure_ec2_tags` has added what `desired` lacks.
pub(super) fn merged_tags(
    desired: &Desired,
    observed: &Observed,
) -> std::collections::BTreeMap<String, String> {
    let mut tags = observed.tags.clone();
    tags.extend(missing_tags(&desired.tags, &observed.tags));
    tags
}

pub(super) fn bool_value(value: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(value).build()
}

async fn describe(cloud: &AwsCloud, filter: Filter) -> Result<Vec<Vpc>, CloudError> {
    paginate(|token| {
        let call = cloud
            .ec2
            .describe_vpcs()
            .filters(filter.clone())
            .set_next_token(token);
        async move {
            let page = cloud.done("ec2", "DescribeVpcs", call.send().await)?;
            Ok((page.vpcs().to_vec(), page.next_token().map(String::from)))
        }
    })
    .await
}

/// The VPC as described; the DNS attributes are AWS's defaults until read.
fn observed(cloud: &AwsCloud, vpc: &Vpc) -> Observed {
    let id = vpc.vpc_id().unwrap_or_default().to_string();
    let arn = vpc
        .owner_id()
        .map(|account| format!("arn:aws:ec2:{}:{account}:vpc/{id}", cloud.region));
    Observed {
        arn,
        state: match vpc.state() {
            Some(VpcState::Pending) => State::Pending,
            _ => State::Available,
        },
        spec: VpcSpec {
            cidr_block: vpc.cidr_block().unwrap_or_default().to_string(),
            enable_dns_support: true,
            enable_dns_hostnames: false,
        }
        .into(),
        tags: from_ec2_tags(vpc.tags()),
        attributes: Default::default(),
        id,
    }
}

async fn read_attribute(
    cloud: &AwsCloud,
    id: &str,
    attribute: VpcAttributeName,
) -> Result<Option<bool>, CloudError> {
    let result = cloud
        .ec2
        .describe_vpc_attribute()
        .vpc_id(id)
        .attribute(attribute.clone())
        .send()
        .await;
    let output = cloud.done("ec2", "DescribeVpcAttribute", result)?;
    let value = match attribute {
        VpcAttributeName::EnableDnsHostnames => output.enable_dns_hostnames(),
        _ => output.enable_dns_support(),
    };
    Ok(value.and_then(|v| v.value()))
}

pub(crate) async fn observe(
    cloud: &AwsCloud,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>, CloudError> {
    let mut vpcs = describe(cloud, owner_filter(owner)).await?;
    let missing = unseen(lookups, vpcs.iter().filter_map(|v| v.vpc_id()));
    if !missing.is_empty() {
        vpcs.extend(describe(cloud, id_filter("vpc-id", &missing)).await?);
    }
    let found = vpcs.iter().map(|v| observed(cloud, v)).collect();
    let mut matched = match_lookups(lookups, found);
    for found in matched.iter_mut().flatten() {
        let support = read_attribute(cloud, &found.id, VpcAttributeName::EnableDnsSupport).await?;
        let hostnames =
            read_attribute(cloud, &found.id, VpcAttributeName::EnableDnsHostnames).await?;
        if let Some(vpc) = VpcSpec::of_mut(&mut found.spec) {
            vpc.enable_dns_support = support.unwrap_or(true);
            vpc.enable_dns_hostnames = hostnames.unwrap_or(false);
        }
    }
    Ok(matched)
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &VpcSpec,
) -> Result<Observed, CloudError> {
    // CreateVpc takes no client token: a retried create after a lost response makes a
    // second VPC, which observe (oldest tagged first) and `owned` then account for.
    let result = cloud
        .ec2
        .create_vpc()
        .cidr_block(&spec.cidr_block)
        .tag_specifications(tag_specification(ResourceType::Vpc, &desired.tags))
        .send()
        .await;
    let output = cloud.done("ec2", "CreateVpc", result)?;
    let vpc = output.vpc().ok_or_else(|| CloudError::Server {
        operation: "CreateVpc".into(),
        message: "no VPC in the response".into(),
    })?;
    let mut created = observed(cloud, vpc);
    if created.tags.is_empty() {
        created.tags = desired.tags.clone();
    }
    // AWS's defaults: support on, hostnames off.
    let defaults = VpcSpec {
        cidr_block: spec.cidr_block.clone(),
        enable_dns_support: true,
        enable_dns_hostnames: false,
    };
    modify_attributes(cloud, &created.id, spec, &defaults).await?;
    created.spec = desired.spec.clone();
    Ok(created)
}

pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &VpcSpec,
    have: &VpcSpec,
) -> Result<Observed, CloudError> {
    desired
        .spec
        .check_immutable("ModifyVpcAttribute", &observed.spec)?;
    modify_attributes(cloud, &observed.id, want, have).await?;
    ensure_ec2_tags(cloud, &observed.id, &desired.tags, &observed.tags).await?;
    Ok(Observed {
        spec: desired.spec.clone(),
        tags: merged_tags(desired, observed),
        ..observed.clone()
    })
}

/// One `ModifyVpcAttribute` per differing attribute (AWS takes one per call): support is
/// turned on before hostnames, hostnames off before support.
async fn modify_attributes(
    cloud: &AwsCloud,
    id: &str,
    want: &VpcSpec,
    have: &VpcSpec,
) -> Result<(), CloudError> {
    let support = (want.enable_dns_support != have.enable_dns_support)
        .then_some((VpcAttributeName::EnableDnsSupport, want.enable_dns_support));
    let hosts = (want.enable_dns_hostnames != have.enable_dns_hostnames).then_some((
        VpcAttributeName::EnableDnsHostnames,
        want.enable_dns_hostnames,
    ));
    let order = if want.enable_dns_support {
        [support, hosts]
    } else {
        [hosts, support]
    };
    for (attribute, value) in order.into_iter().flatten() {
        let request = cloud.ec2.modify_vpc_attribute().vpc_id(id);
        let request = match attribute {
            VpcAttributeName::EnableDnsSupport => request.enable_dns_support(bool_value(value)),
            _ => request.enable_dns_hostnames(bool_value(value)),
        };
        let result = request.send().await;
        cloud.done("ec2", "ModifyVpcAttribute", result)?;
    }
    Ok(())
}

pub(crate) async fn delete(cloud: &AwsCloud, id: &str) -> Result<(), CloudError> {
    let result = cloud.ec2.delete_vpc().vpc_id(id).send().await;
    cloud.done("ec2", "DeleteVpc", result).map(|_| ())
}

pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    Ok(describe(cloud, owner_filter(owner))
        .await?
        .iter()
        .map(|vpc| Owned {
            kind: Kind::Vpc,
            id: vpc.vpc_id().unwrap_or_default().to_string(),
            node: from_ec2_tags(vpc.tags())
                .remove(TAG_NODE)
                .unwrap_or_default(),
        })
        .collect())
}

/// Against moto's server (`MOTO_ENDPOINT`): every verb of vpc, default_sg, subnet, igw,
/// eip and nat. `.ci/with-moto cargo test --lib cloud::aws`.
#[cfg(test)]
mod moto {
    use std::collections::BTreeMap;

    use crate::cloud::aws::{AwsCloud, sdk_config};
    use crate::cloud::{
        CloudError, DefaultSecurityGroupSpec, Desired, ElasticIpSpec, InternetGatewaySpec, Kind,
        Lookup, NatGatewaySpec, Observed, Owner, Provider, Spec, State, SubnetSpec, VpcSpec,
        ownership_tags,
    };

    fn desired(owner: &Owner, node: &str, spec: Spec) -> Desired {
        Desired {
            node: node.into(),
            spec,
            tags: ownership_tags(
                owner,
                node,
                &BTreeMap::from([("team".to_string(), "smoke".to_string())]),
            ),
            client_token: format!("{owner}-{node}-{}", uuid::Uuid::new_v4()),
        }
    }

    async fn by_id(cloud: &AwsCloud, owner: &Owner, kind: Kind, id: &str) -> Option<Observed> {
        let lookup = Lookup {
            node: "elsewhere".into(),
            recorded_id: Some(id.into()),
            desired: None,
        };
        cloud
            .observe(kind, owner, &[lookup])
            .await
            .unwrap()
            .remove(0)
    }

    async fn by_tags(cloud: &AwsCloud, owner: &Owner, kind: Kind, node: &str) -> Option<Observed> {
        let lookup = Lookup {
            node: node.into(),
            recorded_id: None,
            desired: None,
        };
        cloud
            .observe(kind, owner, &[lookup])
            .await
            .unwrap()
            .remove(0)
    }

    fn is_immutable(result: Result<Observed, CloudError>) -> bool {
        matches!(result, Err(CloudError::Terminal { code, .. }) if code == "InvalidParameterValue")
    }

    #[tokio::test]
    async fn network_kinds_against_moto() {
        let endpoint = std::env::var("MOTO_ENDPOINT")
            .expect("moto is required: run the tests through .ci/with-moto (sets MOTO_ENDPOINT)");
        let cloud = AwsCloud::new(&sdk_config("us-east-1", Some(&endpoint)).await, "us-east-1");
        let owner = Owner {
            kind: "HipaaNetwork".into(),
            namespace: "smoke".into(),
            name: uuid::Uuid::new_v4().to_string(),
        };
        // An unrelated owner's lookups find nothing of ours.
        let stranger = Owner {
            kind: "HipaaNetwork".into(),
            namespace: "smoke".into(),
            name: "stranger".into(),
        };

        // VPC
        let vpc_spec = Spec::Vpc(VpcSpec {
            cidr_block: "10.7.0.0/16".into(),
            enable_dns_support: true,
            enable_dns_hostnames: true,
        });
        let vpc_d = desired(&owner, "vpc", vpc_spec.clone());
        let vpc = cloud.create(&vpc_d).await.unwrap();
        assert_eq!(vpc.spec, vpc_spec);
        assert!(vpc.id.starts_with("vpc-"));
        assert_eq!(
            by_id(&cloud, &stranger, Kind::Vpc, &vpc.id)
                .await
                .unwrap()
                .spec,
            vpc_spec
        );
        let seen = by_tags(&cloud, &owner, Kind::Vpc, "vpc").await.unwrap();
        assert_eq!(
            (seen.id.as_str(), &seen.spec, seen.state),
            (vpc.id.as_str(), &vpc_spec, State::Available)
        );
        assert_eq!(seen.tags, vpc_d.tags);
        assert!(by_tags(&cloud, &stranger, Kind::Vpc, "vpc").await.is_none());
        let off = Spec::Vpc(VpcSpec {
            cidr_block: "10.7.0.0/16".into(),
            enable_dns_support: true,
            enable_dns_hostnames: false,
        });
        cloud
            .update(
                &Desired {
                    spec: off.clone(),
                    ..vpc_d.clone()
                },
                &seen,
            )
            .await
            .unwrap();
        assert_eq!(
            by_tags(&cloud, &owner, Kind::Vpc, "vpc")
                .await
                .unwrap()
                .spec,
            off
        );
        let moved = Spec::Vpc(VpcSpec {
            cidr_block: "10.8.0.0/16".into(),
            enable_dns_support: true,
            enable_dns_hostnames: false,
        });
        assert!(is_immutable(
            cloud
                .update(
                    &Desired {
                        spec: moved,
                        ..vpc_d.clone()
                    },
                    &seen
                )
                .await
        ));

        // Default security group: found by VPC, rules revoked, tagged.
        let empty = Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
            vpc_id: vpc.id.clone(),
            ingress: vec![],
            egress: vec![],
        });
        let sg_lookup = Lookup {
            node: "default-sg".into(),
            recorded_id: None,
            desired: Some(empty.clone()),
        };
        let before = cloud
            .observe(
                Kind::DefaultSecurityGroup,
                &owner,
                std::slice::from_ref(&sg_lookup),
            )
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        let Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
            ingress, egress, ..
        }) = &before.spec
        else {
            panic!()
        };
        eprintln!("moto default SG rules: ingress {ingress:?} egress {egress:?}");
        assert!(
            !egress.is_empty(),
            "AWS gives the default SG an all-traffic egress rule"
        );
        let sg_d = desired(&owner, "default-sg", empty.clone());
        let sg = cloud.create(&sg_d).await.unwrap();
        assert_eq!(sg.id, before.id);
        let after = cloud
            .observe(Kind::DefaultSecurityGroup, &owner, &[sg_lookup])
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        assert_eq!(after.spec, empty);
        assert_eq!(after.tags, sg_d.tags);
        assert_eq!(
            by_id(&cloud, &owner, Kind::DefaultSecurityGroup, &sg.id)
                .await
                .unwrap()
                .spec,
            empty
        );
        // Rules of every source shape go in and out again (the revoke path with groups, IPv6).
        let rule = |protocol: &str, from, to, source: &str| crate::cloud::SgRule {
            protocol: protocol.into(),
            from_port: from,
            to_port: to,
            source: source.into(),
        };
        let mut ingress = vec![
            rule("-1", 0, 0, &sg.id),
            rule("tcp", 443, 443, "10.0.0.0/8"),
            rule("tcp", 22, 22, "::/0"),
        ];
        ingress.sort();
        let ruled = Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
            vpc_id: vpc.id.clone(),
            ingress,
            egress: vec![rule("udp", 53, 53, "10.7.0.0/16")],
        });
        cloud
            .update(
                &Desired {
                    spec: ruled.clone(),
                    ..sg_d.clone()
                },
                &after,
            )
            .await
            .unwrap();
        let seen = by_id(&cloud, &owner, Kind::DefaultSecurityGroup, &sg.id)
            .await
            .unwrap();
        assert_eq!(seen.spec, ruled);
        let updated = cloud.update(&sg_d, &seen).await.unwrap();
        assert_eq!(updated.spec, empty);
        assert_eq!(
            by_id(&cloud, &owner, Kind::DefaultSecurityGroup, &sg.id)
                .await
                .unwrap()
                .spec,
            empty
        );

        // Subnet
        let zone = cloud
            .availability_zones("us-east-1")
            .await
            .unwrap()
            .remove(0);
        let public = |map| {
            Spec::Subnet(SubnetSpec {
                vpc_id: vpc.id.clone(),
                cidr_block: "10.7.1.0/24".into(),
                availability_zone: zone.clone(),
                map_public_ip_on_launch: map,
            })
        };
        let subnet_d = desired(&owner, "subnet", public(true));
        let subnet = cloud.create(&subnet_d).await.unwrap();
        let seen = by_tags(&cloud, &owner, Kind::Subnet, "subnet")
            .await
            .unwrap();
        assert_eq!((&seen.id, &seen.spec), (&subnet.id, &public(true)));
        cloud
            .update(
                &Desired {
                    spec: public(false),
                    ..subnet_d.clone()
                },
                &seen,
            )
            .await
            .unwrap();
        assert_eq!(
            by_id(&cloud, &owner, Kind::Subnet, &subnet.id)
                .await
                .unwrap()
                .spec,
            public(false)
        );
        let elsewhere = Spec::Subnet(SubnetSpec {
            vpc_id: vpc.id.clone(),
            cidr_block: "10.7.2.0/24".into(),
            availability_zone: zone.clone(),
            map_public_ip_on_launch: false,
        });
        assert!(is_immutable(
            cloud
                .update(
                    &Desired {
                        spec: elsewhere,
                        ..subnet_d.clone()
                    },
                    &seen
                )
                .await
        ));

        // Internet gateway
        let attached = Spec::InternetGateway(InternetGatewaySpec {
            vpc_id: vpc.id.clone(),
        });
        let igw_d = desired(&owner, "igw", attached.clone());
        let igw = cloud.create(&igw_d).await.unwrap();
        let seen = by_tags(&cloud, &owner, Kind::InternetGateway, "igw")
            .await
            .unwrap();
        assert_eq!((&seen.id, &seen.spec), (&igw.id, &attached));
        let detached = Spec::InternetGateway(InternetGatewaySpec {
            vpc_id: String::new(),
        });
        cloud
            .update(
                &Desired {
                    spec: detached.clone(),
                    ..igw_d.clone()
                },
                &seen,
            )
            .await
            .unwrap();
        let seen = by_id(&cloud, &owner, Kind::InternetGateway, &igw.id)
            .await
            .unwrap();
        assert_eq!(seen.spec, detached);
        cloud.update(&igw_d, &seen).await.unwrap();
        assert_eq!(
            by_id(&cloud, &owner, Kind::InternetGateway, &igw.id)
                .await
                .unwrap()
                .spec,
            attached
        );

        // Elastic IP
        let eip_d = desired(&owner, "eip", Spec::ElasticIp(ElasticIpSpec {}));
        let eip = cloud.create(&eip_d).await.unwrap();
        assert!(eip.id.starts_with("eipalloc-"));
        assert!(eip.attributes.contains_key("publicIp"));
        let seen = by_tags(&cloud, &owner, Kind::ElasticIp, "eip")
            .await
            .unwrap();
        assert_eq!((&seen.id, &seen.attributes), (&eip.id, &eip.attributes));
        assert_eq!(seen.tags, eip_d.tags);
        assert_eq!(
            by_id(&cloud, &owner, Kind::ElasticIp, &eip.id)
                .await
                .unwrap()
                .id,
            eip.id
        );
        let mut retagged = eip_d.clone();
        retagged.tags.insert("extra".into(), "1".into());
        cloud.update(&retagged, &seen).await.unwrap();
        assert_eq!(
            by_id(&cloud, &owner, Kind::ElasticIp, &eip.id)
                .await
                .unwrap()
                .tags,
            retagged.tags
        );

        // NAT gateway
        let nat_spec = Spec::NatGateway(NatGatewaySpec {
            subnet_id: subnet.id.clone(),
            allocation_id: eip.id.clone(),
        });
        let nat_d = desired(&owner, "nat", nat_spec.clone());
        let nat = cloud.create(&nat_d).await.unwrap();
        eprintln!("moto NAT state after create: {:?}", nat.state);
        assert_eq!(nat.spec, nat_spec);
        let seen = by_tags(&cloud, &owner, Kind::NatGateway, "nat")
            .await
            .unwrap();
        assert_eq!((&seen.id, &seen.spec), (&nat.id, &nat_spec));
        assert!(seen.attributes.contains_key("publicIp"));
        assert_eq!(
            by_id(&cloud, &owner, Kind::NatGateway, &nat.id)
                .await
                .unwrap()
                .id,
            nat.id
        );
        // AWS returns the first gateway for a retried client token; moto ignores the token
        // (and then refuses the EIP as already associated).
        let again = cloud.create(&nat_d).await.map(|o| o.id);
        eprintln!(
            "moto NAT create retried with the same client token: {again:?} (first {})",
            nat.id
        );
        let other = Spec::NatGateway(NatGatewaySpec {
            subnet_id: subnet.id.clone(),
            allocation_id: "eipalloc-0000".into(),
        });
        assert!(is_immutable(
            cloud
                .update(
                    &Desired {
                        spec: other,
                        ..nat_d.clone()
                    },
                    &seen
                )
                .await
        ));
        cloud.update(&nat_d, &seen).await.unwrap();

        // owned
        let owned = cloud.owned(&owner).await.unwrap();
        for (kind, id) in [
            (Kind::Vpc, &vpc.id),
            (Kind::Subnet, &subnet.id),
            (Kind::InternetGateway, &igw.id),
            (Kind::ElasticIp, &eip.id),
            (Kind::NatGateway, &nat.id),
        ] {
            assert!(
                owned.iter().any(|o| o.kind == kind && &o.id == id),
                "{kind:?} {id} in {owned:?}"
            );
        }

        // delete, dependencies first; deleting twice is fine.
        for extra in again.iter().filter(|id| **id != nat.id) {
            cloud.delete(Kind::NatGateway, extra).await.unwrap();
        }
        cloud.delete(Kind::NatGateway, &nat.id).await.unwrap();
        let gone = by_id(&cloud, &owner, Kind::NatGateway, &nat.id).await;
        eprintln!(
            "moto NAT after delete: {:?}",
            gone.as_ref().map(|o| o.state)
        );
        cloud.delete(Kind::ElasticIp, &eip.id).await.unwrap();
        cloud.delete(Kind::ElasticIp, &eip.id).await.unwrap();
        cloud.delete(Kind::InternetGateway, &igw.id).await.unwrap();
        cloud.delete(Kind::InternetGateway, &igw.id).await.unwrap();
        cloud.delete(Kind::Subnet, &subnet.id).await.unwrap();
        cloud.delete(Kind::Subnet, &subnet.id).await.unwrap();
        cloud
            .delete(Kind::DefaultSecurityGroup, &sg.id)
            .await
            .unwrap();
        cloud.delete(Kind::Vpc, &vpc.id).await.unwrap();
        cloud.delete(Kind::Vpc, &vpc.id).await.unwrap();
        for kind in [
            Kind::Vpc,
            Kind::Subnet,
            Kind::InternetGateway,
            Kind::ElasticIp,
        ] {
            assert!(by_tags(&cloud, &owner, kind, "x").await.is_none());
        }
        assert!(by_id(&cloud, &owner, Kind::Vpc, &vpc.id).await.is_none());
        assert!(
            by_id(&cloud, &owner, Kind::Subnet, &subnet.id)
                .await
                .is_none()
        );
        let left = cloud.owned(&owner).await.unwrap();
        assert!(left.iter().all(|o| o.kind == Kind::NatGateway), "{left:?}");
    }
}
