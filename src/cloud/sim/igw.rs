//! Internet gateways: created detached, then attached to the desired VPC. Delete detaches
//! first (as the provider must), and the detach fails with `DependencyViolation` while the
//! VPC still has mapped public addresses (a NAT gateway's EIP, an instance's public IP).

use super::SimCloud;
use super::api::{Result, dependency, not_found, ok_if_missing, sync_tags, terminal};
use super::world::World;
use crate::cloud::{CloudError, Desired, InternetGatewaySpec, Kind, Observed};

pub(crate) async fn create(
    sim: &SimCloud,
    d: &Desired,
    spec: &InternetGatewaySpec,
) -> Result<Observed> {
    let id = sim
        .call("ec2", "CreateInternetGateway", |w, now| {
            let id = w.new_id("igw-");
            let detached = InternetGatewaySpec::default();
            w.insert(
                Kind::InternetGateway,
                &id,
                detached.into(),
                d.tags.clone(),
                now,
            );
            Ok(id)
        })
        .await?;
    if !spec.vpc_id.is_empty()
        && let Err(error) = sim
            .call("ec2", "AttachInternetGateway", |w, _| {
                attach(w, &id, &spec.vpc_id)
            })
            .await
    {
        // The gateway exists (detached): a retried create would make a second one.
        return sim
            .snapshot(Kind::InternetGateway, &id)
            .map(|created| crate::cloud::settings_pending(created, &error));
    }
    sim.snapshot(Kind::InternetGateway, &id)
}

/// Moves the attachment when the VPC differs (detach, then attach).
pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &InternetGatewaySpec,
    have: &InternetGatewaySpec,
) -> Result<Observed> {
    if want.vpc_id != have.vpc_id {
        if !have.vpc_id.is_empty() {
            sim.call("ec2", "DetachInternetGateway", |w, _| {
                detach(w, &o.id, &have.vpc_id)
            })
            .await?;
        }
        if !want.vpc_id.is_empty() {
            sim.call("ec2", "AttachInternetGateway", |w, _| {
                attach(w, &o.id, &want.vpc_id)
            })
            .await?;
        }
    }
    sync_tags(sim, Kind::InternetGateway, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::InternetGateway, &o.id)
}

fn no_gateway(id: &str) -> CloudError {
    not_found(
        "DescribeInternetGateways",
        "InvalidInternetGatewayID.NotFound",
        format!("The internetGateway ID '{id}' does not exist"),
    )
}

fn gateway<'a>(w: &'a mut World, id: &str) -> Result<&'a mut InternetGatewaySpec> {
    w.spec_mut::<InternetGatewaySpec>(id)
        .ok_or_else(|| no_gateway(id))
}

/// The VPC the gateway is attached to ("" when detached).
fn attached_to(w: &World, id: &str) -> Result<String> {
    w.spec::<InternetGatewaySpec>(id)
        .map(|igw| igw.vpc_id.clone())
        .ok_or_else(|| no_gateway(id))
}

fn attach(w: &mut World, id: &str, vpc: &str) -> Result<()> {
    let op = "AttachInternetGateway";
    let current = attached_to(w, id)?;
    if w.get(Kind::Vpc, vpc).is_none() {
        return Err(not_found(
            op,
            "InvalidVpcID.NotFound",
            format!("The vpc ID '{vpc}' does not exist"),
        ));
    }
    let other = w
        .specs::<InternetGatewaySpec>()
        .find(|(r, igw)| r.id != id && igw.vpc_id == vpc)
        .map(|(r, _)| r);
    if let Some(other) = other {
        return Err(terminal(
            op,
            "Resource.AlreadyAssociated",
            format!("{vpc} already has {} attached", other.id),
        ));
    }
    if !current.is_empty() {
        return Err(terminal(
            op,
            "Resource.AlreadyAssociated",
            format!("resource {id} is already attached to {current}"),
        ));
    }
    gateway(w, id)?.vpc_id = vpc.to_string();
    Ok(())
}

/// NAT gateways (until deleted) and instances with a public IP (until terminated) in `vpc`.
fn mapped_public_address(w: &World, vpc: &str) -> bool {
    w.in_vpc(Kind::NatGateway, vpc).next().is_some()
        || w.in_vpc(Kind::Instance, vpc)
            .any(|r| r.attributes.contains_key("publicIp"))
}

fn detach(w: &mut World, id: &str, vpc: &str) -> Result<()> {
    let op = "DetachInternetGateway";
    let current = attached_to(w, id)?;
    if current != vpc {
        return Err(terminal(
            op,
            "Gateway.NotAttached",
            format!("resource {id} is not attached to network {vpc}"),
        ));
    }
    if mapped_public_address(w, vpc) {
        return Err(dependency(
            op,
            format!(
                "Network {vpc} has some mapped public address(es). Please unmap those public address(es) before detaching the gateway."
            ),
        ));
    }
    gateway(w, id)?.vpc_id.clear();
    Ok(())
}

pub(crate) async fn delete(sim: &SimCloud, id: &str) -> Result<()> {
    let result = async {
        let vpc = sim
            .call("ec2", "DescribeInternetGateways", |w, _| attached_to(w, id))
            .await?;
        if !vpc.is_empty() {
            sim.call("ec2", "DetachInternetGateway", |w, _| detach(w, id, &vpc))
                .await?;
        }
        sim.call("ec2", "DeleteInternetGateway", |w, _| {
            let vpc = attached_to(w, id)?;
            if !vpc.is_empty() {
                return Err(dependency(
                    "DeleteInternetGateway",
                    format!("The internetGateway '{id}' has dependencies and cannot be deleted."),
                ));
            }
            w.remove(id);
            Ok(())
        })
        .await
    };
    ok_if_missing(result.await)
}
