//! VPCs. `CreateVpc` also creates what AWS creates with every VPC: its default security
//! group (default rules) and its main route table. `DeleteVpc` removes those two and the
//! VPC's flow logs, and refuses while anything else is left in the VPC.

use std::collections::BTreeMap;

use super::SimCloud;
use super::api::{Result, dependency, missing, not_found, ok_if_missing, sync_tags, terminal};
use super::cidr::Cidr;
use super::security_group::all_traffic;
use super::world::World;
use crate::cloud::{
    DefaultSecurityGroupSpec, Desired, InternetGatewaySpec, Kind, Observed, RouteTableSpec, VpcSpec,
};

pub(crate) async fn create(sim: &SimCloud, d: &Desired, spec: &VpcSpec) -> Result<Observed> {
    let cidr_block = &spec.cidr_block;
    let id = sim
        .call("ec2", "CreateVpc", |w, now| {
            let op = "CreateVpc";
            let block = Cidr::parse(cidr_block).ok_or_else(|| {
                terminal(
                    op,
                    "InvalidParameterValue",
                    format!("invalid CIDR {cidr_block}"),
                )
            })?;
            if !(16..=28).contains(&block.prefix()) {
                return Err(terminal(
                    op,
                    "InvalidVpc.Range",
                    format!("The CIDR '{cidr_block}' is invalid."),
                ));
            }
            let id = w.new_id("vpc-");
            let created = VpcSpec {
                cidr_block: cidr_block.clone(),
                enable_dns_support: true,
                enable_dns_hostnames: false,
            };
            w.insert(Kind::Vpc, &id, created.into(), d.tags.clone(), now);
            let sg = w.new_id("sg-");
            let rules = DefaultSecurityGroupSpec {
                vpc_id: id.clone(),
                ingress: vec![all_traffic(&sg)],
                egress: vec![all_traffic("0.0.0.0/0")],
            };
            w.insert(
                Kind::DefaultSecurityGroup,
                &sg,
                rules.into(),
                BTreeMap::new(),
                now,
            );
            if let Some(r) = w.get_mut(Kind::DefaultSecurityGroup, &sg) {
                r.attributes.insert("groupName".into(), "default".into());
            }
            let rtb = w.new_id("rtb-");
            let table = RouteTableSpec {
                vpc_id: id.clone(),
                routes: vec![],
                subnet_ids: vec![],
            };
            w.insert(Kind::RouteTable, &rtb, table.into(), BTreeMap::new(), now);
            if let Some(r) = w.get_mut(Kind::RouteTable, &rtb) {
                r.attributes.insert("main".into(), "true".into());
            }
            Ok(id)
        })
        .await?;
    let created = current(sim, &id)?;
    modify_attributes(sim, &id, spec, &created).await?;
    sim.snapshot(Kind::Vpc, &id)
}

/// The VPC's spec as it is now, without an API call.
fn current(sim: &SimCloud, id: &str) -> Result<VpcSpec> {
    sim.world()
        .spec::<VpcSpec>(id)
        .cloned()
        .ok_or_else(|| missing(Kind::Vpc, id))
}

pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &VpcSpec,
    have: &VpcSpec,
) -> Result<Observed> {
    d.spec.check_immutable("ModifyVpcAttribute", &o.spec)?;
    modify_attributes(sim, &o.id, want, have).await?;
    sync_tags(sim, Kind::Vpc, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::Vpc, &o.id)
}

/// One `ModifyVpcAttribute` per differing attribute (AWS takes one per call). DNS support
/// is turned on before hostnames and hostnames off before support, as AWS requires.
async fn modify_attributes(sim: &SimCloud, id: &str, want: &VpcSpec, have: &VpcSpec) -> Result<()> {
    let support = (want.enable_dns_support != have.enable_dns_support)
        .then_some(("enableDnsSupport", want.enable_dns_support));
    let hosts = (want.enable_dns_hostnames != have.enable_dns_hostnames)
        .then_some(("enableDnsHostnames", want.enable_dns_hostnames));
    let order = if want.enable_dns_support {
        [support, hosts]
    } else {
        [hosts, support]
    };
    for (attribute, value) in order.into_iter().flatten() {
        sim.call("ec2", "ModifyVpcAttribute", |w, _| {
            set_attribute(w, id, attribute, value)
        })
        .await?;
    }
    Ok(())
}

fn set_attribute(w: &mut World, id: &str, attribute: &str, value: bool) -> Result<()> {
    let op = "ModifyVpcAttribute";
    let vpc = w
        .spec_mut::<VpcSpec>(id)
        .ok_or_else(|| not_found(op, "InvalidVpcID.NotFound", format!("{id} does not exist")))?;
    match attribute {
        "enableDnsSupport" => vpc.enable_dns_support = value,
        _ if value && !vpc.enable_dns_support => {
            return Err(terminal(
                op,
                "InvalidParameterValue",
                "enableDnsHostnames requires enableDnsSupport",
            ));
        }
        _ => vpc.enable_dns_hostnames = value,
    }
    Ok(())
}

pub(crate) async fn delete(sim: &SimCloud, id: &str) -> Result<()> {
    let result = sim
        .call("ec2", "DeleteVpc", |w, _| {
            let op = "DeleteVpc";
            if w.get(Kind::Vpc, id).is_none() {
                return Err(not_found(
                    op,
                    "InvalidVpcID.NotFound",
                    format!("The vpc ID '{id}' does not exist"),
                ));
            }
            if let Some(blocker) = blocker(w, id) {
                return Err(dependency(
                    op,
                    format!("The vpc '{id}' has dependencies and cannot be deleted ({blocker})."),
                ));
            }
            let doomed: Vec<String> = w
                .all()
                .filter(|r| {
                    matches!(
                        r.kind,
                        Kind::DefaultSecurityGroup | Kind::RouteTable | Kind::FlowLog
                    )
                })
                .filter(|r| r.vpc_id().as_deref() == Some(id))
                .map(|r| r.id.clone())
                .collect();
            for other in doomed.iter().map(String::as_str).chain([id]) {
                w.remove(other);
            }
            Ok(())
        })
        .await;
    ok_if_missing(result)
}

/// What keeps a VPC from being deleted: subnets (and so NATs and instances), an attached
/// internet gateway, non-default security groups, non-main route tables.
fn blocker(w: &World, vpc: &str) -> Option<String> {
    let first = |kind: Kind| w.in_vpc(kind, vpc).next().map(|r| r.id.clone());
    let igw = w
        .specs::<InternetGatewaySpec>()
        .find(|(_, igw)| igw.vpc_id == vpc)
        .map(|(r, _)| r);
    let table = w
        .in_vpc(Kind::RouteTable, vpc)
        .find(|r| !r.attributes.contains_key("main"));
    first(Kind::Subnet)
        .or_else(|| first(Kind::NatGateway))
        .or_else(|| first(Kind::Instance))
        .or_else(|| igw.map(|r| r.id.clone()))
        .or_else(|| first(Kind::SecurityGroup))
        .or_else(|| table.map(|r| r.id.clone()))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::cloud::{DefaultSecurityGroupSpec, Kind, Provider, Spec, VpcSpec};

    #[tokio::test]
    async fn create_makes_default_sg_with_aws_rules_and_main_table() {
        let sim = sim();
        let vpc = make(&sim, "vpc", vpc_spec()).await;
        let all = sim.resources();
        let sg = all
            .iter()
            .find(|(k, _)| *k == Kind::DefaultSecurityGroup)
            .expect("default SG created")
            .1
            .clone();
        let Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
            vpc_id,
            ingress,
            egress,
        }) = sg.spec
        else {
            panic!()
        };
        assert_eq!(vpc_id, vpc.id);
        assert_eq!(
            ingress,
            vec![super::all_traffic(&sg.id)],
            "ingress: all from itself"
        );
        assert_eq!(
            egress,
            vec![super::all_traffic("0.0.0.0/0")],
            "egress: all to anywhere"
        );
        assert!(
            all.iter()
                .any(|(k, o)| *k == Kind::RouteTable && o.attributes.contains_key("main"))
        );
    }

    #[tokio::test]
    async fn dns_hostnames_costs_one_modify_call_and_is_observed() {
        let sim = sim();
        let mut spec = vpc_spec();
        if let Spec::Vpc(VpcSpec {
            enable_dns_hostnames,
            ..
        }) = &mut spec
        {
            *enable_dns_hostnames = true;
        }
        let vpc = make(&sim, "vpc", spec.clone()).await;
        assert_eq!(vpc.spec, spec);
        assert_eq!(count(&sim, "CreateVpc"), 1);
        assert_eq!(
            count(&sim, "ModifyVpcAttribute"),
            1,
            "support is on by default: only hostnames changes"
        );
    }

    #[tokio::test]
    async fn vpc_range_outside_16_to_28_is_rejected() {
        let sim = sim();
        let err = sim
            .create(&desired(
                "vpc",
                Spec::Vpc(VpcSpec {
                    cidr_block: "10.0.0.0/8".into(),
                    enable_dns_support: true,
                    enable_dns_hostnames: false,
                }),
            ))
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidVpc.Range");
    }

    #[tokio::test]
    async fn delete_removes_default_sg_main_table_and_flow_logs() {
        let sim = sim();
        let vpc = make(&sim, "vpc", vpc_spec()).await;
        make(&sim, "flow", flow_spec(&vpc.id)).await;
        sim.delete(Kind::Vpc, &vpc.id).await.unwrap();
        assert!(
            sim.resources()
                .iter()
                .all(|(k, _)| matches!(k, Kind::LogGroup | Kind::IamRole)),
            "{:?}",
            sim.resources()
        );
    }
}
