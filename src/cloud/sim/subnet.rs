//! Subnets. `DeleteSubnet` refuses while a NAT gateway (until deleted) or an instance
//! (until terminated) has a network interface in it; a route table association does not
//! block it: AWS drops the association with the subnet.

use super::api::{Result, dependency, not_found, ok_if_missing, sync_tags, terminal};
use super::cidr::Cidr;
use super::{SimCloud, zones_of};
use crate::cloud::{Desired, Kind, Observed, SubnetSpec, VpcSpec};

pub(crate) async fn create(sim: &SimCloud, d: &Desired, spec: &SubnetSpec) -> Result<Observed> {
    let SubnetSpec {
        vpc_id,
        cidr_block,
        availability_zone,
        ..
    } = spec;
    let id = sim
        .call("ec2", "CreateSubnet", |w, now| {
            let op = "CreateSubnet";
            let Some(vpc) = w.spec::<VpcSpec>(vpc_id) else {
                return Err(not_found(
                    op,
                    "InvalidVpcID.NotFound",
                    format!("The vpc ID '{vpc_id}' does not exist"),
                ));
            };
            if !zones_of(&w.region)
                .unwrap_or_default()
                .contains(availability_zone)
            {
                return Err(terminal(
                    op,
                    "InvalidParameterValue",
                    format!(
                        "Value ({availability_zone}) for parameter availabilityZone is invalid"
                    ),
                ));
            }
            let block = Cidr::parse(cidr_block).filter(|b| (16..=28).contains(&b.prefix()));
            let inside = Cidr::parse(&vpc.cidr_block)
                .zip(block)
                .is_some_and(|(v, b)| v.contains(b));
            let Some(block) = block.filter(|_| inside) else {
                return Err(terminal(
                    op,
                    "InvalidSubnet.Range",
                    format!("The CIDR '{cidr_block}' is invalid."),
                ));
            };
            let clash = w.specs::<SubnetSpec>().any(|(_, other)| {
                other.vpc_id == *vpc_id
                    && Cidr::parse(&other.cidr_block).is_some_and(|c| c.overlaps(block))
            });
            if clash {
                return Err(terminal(
                    op,
                    "InvalidSubnet.Conflict",
                    format!("The CIDR '{cidr_block}' conflicts with another subnet"),
                ));
            }
            let id = w.new_id("subnet-");
            let created = SubnetSpec {
                map_public_ip_on_launch: false,
                ..spec.clone()
            };
            w.insert(Kind::Subnet, &id, created.into(), d.tags.clone(), now);
            Ok(id)
        })
        .await?;
    modify(sim, &id, spec.map_public_ip_on_launch, false).await?;
    sim.snapshot(Kind::Subnet, &id)
}

pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &SubnetSpec,
    have: &SubnetSpec,
) -> Result<Observed> {
    d.spec.check_immutable("ModifySubnetAttribute", &o.spec)?;
    modify(
        sim,
        &o.id,
        want.map_public_ip_on_launch,
        have.map_public_ip_on_launch,
    )
    .await?;
    sync_tags(sim, Kind::Subnet, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::Subnet, &o.id)
}

/// `ModifySubnetAttribute MapPublicIpOnLaunch` when it differs.
async fn modify(sim: &SimCloud, id: &str, want: bool, have: bool) -> Result<()> {
    if want == have {
        return Ok(());
    }
    let op = "ModifySubnetAttribute";
    sim.call("ec2", op, |w, _| {
        let subnet = w.spec_mut::<SubnetSpec>(id).ok_or_else(|| {
            not_found(
                op,
                "InvalidSubnetID.NotFound",
                format!("The subnet ID '{id}' does not exist"),
            )
        })?;
        subnet.map_public_ip_on_launch = want;
        Ok(())
    })
    .await
}

pub(crate) async fn delete(sim: &SimCloud, id: &str) -> Result<()> {
    let result = sim
        .call("ec2", "DeleteSubnet", |w, _| {
            let op = "DeleteSubnet";
            if w.get(Kind::Subnet, id).is_none() {
                return Err(not_found(
                    op,
                    "InvalidSubnetID.NotFound",
                    format!("The subnet ID '{id}' does not exist"),
                ));
            }
            // Whatever lives in the subnet (the registry's `parent`): NAT gateways,
            // instances; and Lambda's network interfaces.
            let user = w
                .all()
                .find(|r| r.subnet_id().as_deref() == Some(id))
                .map(|r| r.id.clone())
                .or_else(|| super::lambda_function::network_user(w, id));
            if let Some(user) = user {
                return Err(dependency(
                    op,
                    format!("The subnet '{id}' has dependencies and cannot be deleted ({user})."),
                ));
            }
            w.remove(id);
            super::route_table::forget_subnet(w, id);
            Ok(())
        })
        .await;
    ok_if_missing(result)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::cloud::Provider;

    #[tokio::test]
    async fn create_validates_zone_and_range_like_aws() {
        let sim = sim();
        let vpc = make(&sim, "vpc", vpc_spec()).await;
        make(&sim, "a", subnet_spec(&vpc.id, "10.0.1.0/24", "us-east-1a")).await;
        let cases = [
            (
                "10.0.2.0/24",
                "us-east-1z",
                "InvalidParameterValue",
                "zone not in the region",
            ),
            (
                "10.1.0.0/24",
                "us-east-1a",
                "InvalidSubnet.Range",
                "outside the VPC block",
            ),
            (
                "10.0.1.128/25",
                "us-east-1b",
                "InvalidSubnet.Conflict",
                "overlaps subnet a",
            ),
            (
                "10.0.2.0/29",
                "us-east-1b",
                "InvalidSubnet.Range",
                "smaller than /28",
            ),
        ];
        for (cidr, zone, want, why) in cases {
            let err = sim
                .create(&desired("x", subnet_spec(&vpc.id, cidr, zone)))
                .await
                .unwrap_err();
            assert_eq!(code(&err), want, "{why}");
        }
    }

    #[tokio::test]
    async fn subnet_in_missing_vpc_is_not_found() {
        let sim = sim();
        let err = sim
            .create(&desired(
                "x",
                subnet_spec("vpc-0123456789abcdef0", "10.0.1.0/24", "us-east-1a"),
            ))
            .await;
        assert!(matches!(
            err,
            Err(crate::cloud::CloudError::NotFound { .. })
        ));
    }
}
