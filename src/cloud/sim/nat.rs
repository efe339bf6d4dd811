//! NAT gateways: `CreateNatGateway` (client token) -> `pending` for 90 s ± 30 s, then
//! `available`; `DeleteNatGateway` -> `deleting` for 60 s, then gone (the EIP and the
//! subnet are held until then). All durations × `time_scale`.

use super::SimCloud;
use super::api::{Result, dependency, not_found, ok_if_missing, sync_tags, terminal};
use super::world::Phase;
use crate::cloud::{
    Desired, InternetGatewaySpec, Kind, NatGatewaySpec, Observed, Spec, SubnetSpec,
};

pub(crate) async fn create(sim: &SimCloud, d: &Desired, spec: &NatGatewaySpec) -> Result<Observed> {
    let NatGatewaySpec {
        subnet_id,
        allocation_id,
    } = spec;
    let id = sim
        .call("ec2", "CreateNatGateway", |w, now| {
            let op = "CreateNatGateway";
            if let Some(existing) = w.by_token(Kind::NatGateway, &d.client_token) {
                return same_request(op, existing.token.as_ref(), &d.spec)
                    .map(|_| existing.id.clone());
            }
            let Some(vpc) = w.spec::<SubnetSpec>(subnet_id).map(|s| s.vpc_id.clone()) else {
                return Err(not_found(
                    op,
                    "InvalidSubnetID.NotFound",
                    format!("The subnet ID '{subnet_id}' does not exist"),
                ));
            };
            let Some(ip) = w
                .get(Kind::ElasticIp, allocation_id)
                .map(|r| r.attributes.get("publicIp").cloned().unwrap_or_default())
            else {
                return Err(not_found(
                    op,
                    "InvalidAllocationID.NotFound",
                    format!("The allocation ID '{allocation_id}' does not exist"),
                ));
            };
            let holder = w
                .specs::<NatGatewaySpec>()
                .find(|(_, nat)| nat.allocation_id == *allocation_id)
                .map(|(r, _)| r);
            if let Some(holder) = holder {
                let message = format!(
                    "Elastic IP address {allocation_id} is already associated with {}",
                    holder.id
                );
                return Err(match holder.phase {
                    // Freed when that NAT gateway is gone: worth retrying.
                    Phase::Deleting(_) => {
                        dependency(op, format!("Resource.AlreadyAssociated: {message}"))
                    }
                    _ => terminal(op, "Resource.AlreadyAssociated", message),
                });
            }
            let igw = w
                .specs::<InternetGatewaySpec>()
                .any(|(_, igw)| igw.vpc_id == vpc);
            if !igw {
                return Err(dependency(
                    op,
                    format!("Gateway.NotAttached: Network {vpc} has no Internet gateway attached"),
                ));
            }
            let id = w.new_id("nat-");
            let ready = now + w.jittered(90.0, 30.0);
            w.insert(Kind::NatGateway, &id, d.spec.clone(), d.tags.clone(), now);
            if let Some(r) = w.get_mut(Kind::NatGateway, &id) {
                r.phase = Phase::Pending(ready);
                r.token = Some((d.client_token.clone(), d.spec.clone()));
                r.attributes.insert("publicIp".into(), ip);
                r.attributes.insert("vpcId".into(), vpc);
            }
            Ok(id)
        })
        .await?;
    sim.snapshot(Kind::NatGateway, &id)
}

/// A retried create with the same client token must carry the same parameters.
pub(crate) fn same_request(op: &str, token: Option<&(String, Spec)>, spec: &Spec) -> Result<()> {
    match token {
        Some((_, first)) if first != spec => Err(terminal(
            op,
            "IdempotentParameterMismatch",
            "The client token was already used with different parameters",
        )),
        _ => Ok(()),
    }
}

/// Nothing of a NAT gateway changes in place but its tags.
pub(crate) async fn update(sim: &SimCloud, d: &Desired, o: &Observed) -> Result<Observed> {
    d.spec.check_immutable("CreateNatGateway", &o.spec)?;
    sync_tags(sim, Kind::NatGateway, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::NatGateway, &o.id)
}

pub(crate) async fn delete(sim: &SimCloud, id: &str) -> Result<()> {
    let result = sim
        .call("ec2", "DeleteNatGateway", |w, now| {
            let gone_at = now + w.scaled(60.0);
            let record = w.get_mut(Kind::NatGateway, id).ok_or_else(|| {
                not_found(
                    "DeleteNatGateway",
                    "NatGatewayNotFound",
                    format!("NAT gateway {id} was not found"),
                )
            })?;
            if !matches!(record.phase, Phase::Deleting(_)) {
                record.phase = Phase::Deleting(gone_at);
            }
            Ok(())
        })
        .await;
    ok_if_missing(result)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testkit::*;
    use crate::cloud::{Kind, Provider, State};

    #[tokio::test]
    async fn pending_then_available_after_scaled_latency_then_deleting_then_gone() {
        let sim = sim_at(0.004);
        let net = network(&sim).await;
        let nat = make(&sim, "nat", nat_spec(&net.public, &net.eip)).await;
        assert!(
            nat.id.starts_with("nat-") && nat.id.len() == 21,
            "{}",
            nat.id
        );
        assert_eq!(
            nat.state,
            State::Pending,
            "a create returns the initial state"
        );
        assert_eq!(nat.attributes.get("publicIp"), net.eip_ip.as_ref());
        // 90 s ± 30 s at time_scale 0.004: 240–480 ms.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            observe_id(&sim, Kind::NatGateway, &nat.id)
                .await
                .unwrap()
                .state,
            State::Pending,
            "not before 60 s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            observe_id(&sim, Kind::NatGateway, &nat.id)
                .await
                .unwrap()
                .state,
            State::Available,
            "by 120 s"
        );
        sim.delete(Kind::NatGateway, &nat.id).await.unwrap();
        assert_eq!(
            observe_id(&sim, Kind::NatGateway, &nat.id)
                .await
                .unwrap()
                .state,
            State::Deleting
        );
        sim.delete(Kind::NatGateway, &nat.id)
            .await
            .expect("deleting a deleting NAT is fine");
        tokio::time::sleep(Duration::from_millis(260)).await;
        assert!(
            observe_id(&sim, Kind::NatGateway, &nat.id).await.is_none(),
            "gone 60 s (240 ms) later"
        );
    }

    #[tokio::test]
    async fn client_token_returns_the_same_gateway_and_rejects_other_parameters() {
        let sim = sim();
        let net = network(&sim).await;
        let first = make(&sim, "nat", nat_spec(&net.public, &net.eip)).await;
        let again = sim
            .create(&desired("nat", nat_spec(&net.public, &net.eip)))
            .await
            .unwrap();
        assert_eq!(first.id, again.id);
        let other = sim
            .create(&desired("nat", nat_spec(&net.private, &net.eip)))
            .await
            .unwrap_err();
        assert_eq!(code(&other), "IdempotentParameterMismatch");
        assert_eq!(
            sim.resources()
                .iter()
                .filter(|(k, _)| *k == Kind::NatGateway)
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn an_eip_held_by_another_nat_is_refused_retryably_only_while_that_one_is_deleting() {
        let sim = sim();
        let net = network(&sim).await;
        let first = make(&sim, "nat", nat_spec(&net.public, &net.eip)).await;
        let err = sim
            .create(&desired("nat2", nat_spec(&net.public, &net.eip)))
            .await
            .unwrap_err();
        assert_eq!(
            code(&err),
            "Resource.AlreadyAssociated",
            "held by a live NAT: terminal"
        );
        sim.delete(Kind::NatGateway, &first.id).await.unwrap();
        let err = sim
            .create(&desired("nat2", nat_spec(&net.public, &net.eip)))
            .await
            .unwrap_err();
        assert!(
            err.retryable(),
            "held by a deleting NAT: retry later ({err})"
        );
    }

    #[tokio::test]
    async fn without_an_attached_internet_gateway_it_is_retryable() {
        let sim = sim();
        let vpc = make(&sim, "vpc", vpc_spec()).await;
        let subnet = make(&sim, "s", subnet_spec(&vpc.id, "10.0.0.0/24", "us-east-1a")).await;
        let eip = make(
            &sim,
            "eip",
            crate::cloud::Spec::ElasticIp(crate::cloud::ElasticIpSpec {}),
        )
        .await;
        let err = sim
            .create(&desired("nat", nat_spec(&subnet.id, &eip.id)))
            .await
            .unwrap_err();
        assert!(
            err.retryable() && err.to_string().contains("Gateway.NotAttached"),
            "{err}"
        );
    }
}
