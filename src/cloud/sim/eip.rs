//! Elastic IPs (VPC domain). `ReleaseAddress` of an address a NAT gateway still holds
//! (until the NAT is deleted) fails: AWS says `InvalidIPAddress.InUse`, the simulation
//! reports it as a retryable `DependencyViolation`.

use super::SimCloud;
use super::api::{Result, dependency, not_found, ok_if_missing, sync_tags};
use crate::cloud::{Desired, ElasticIpSpec, Kind, NatGatewaySpec, Observed};

pub(crate) async fn create(sim: &SimCloud, d: &Desired) -> Result<Observed> {
    let id = sim
        .call("ec2", "AllocateAddress", |w, now| {
            let id = w.new_id("eipalloc-");
            let ip = w.rng.public_ip();
            w.insert(
                Kind::ElasticIp,
                &id,
                ElasticIpSpec {}.into(),
                d.tags.clone(),
                now,
            );
            if let Some(r) = w.get_mut(Kind::ElasticIp, &id) {
                r.attributes.insert("publicIp".into(), ip);
            }
            Ok(id)
        })
        .await?;
    sim.snapshot(Kind::ElasticIp, &id)
}

pub(crate) async fn update(sim: &SimCloud, d: &Desired, o: &Observed) -> Result<Observed> {
    sync_tags(sim, Kind::ElasticIp, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::ElasticIp, &o.id)
}

pub(crate) async fn delete(sim: &SimCloud, id: &str) -> Result<()> {
    let result = sim
        .call("ec2", "ReleaseAddress", |w, _| {
            let op = "ReleaseAddress";
            if w.get(Kind::ElasticIp, id).is_none() {
                return Err(not_found(
                    op,
                    "InvalidAllocationID.NotFound",
                    format!("The allocation ID '{id}' does not exist"),
                ));
            }
            let holder = w
                .specs::<NatGatewaySpec>()
                .find(|(_, nat)| nat.allocation_id == id)
                .map(|(r, _)| r);
            if let Some(nat) = holder {
                return Err(dependency(
                    op,
                    format!(
                        "InvalidIPAddress.InUse: Address {id} is in use by {}",
                        nat.id
                    ),
                ));
            }
            w.remove(id);
            Ok(())
        })
        .await;
    ok_if_missing(result)
}
