//! EC2 instances: `RunInstances` (client token, tags and metadata options at launch) ->
//! `pending` for 30 s ± 3 s, then running (`Available`); `TerminateInstances` ->
//! `shutting-down` (`Deleting`) for 40 s, then gone. Durations × `time_scale`. Only the
//! security groups and the metadata options change in place.

use super::SimCloud;
use super::api::{Result, not_found, ok_if_missing, sync_tags, terminal};
use super::cidr::Cidr;
use super::nat::same_request;
use super::world::{Phase, World};
use crate::cloud::{DefaultSecurityGroupSpec, Desired, InstanceSpec, Kind, Observed, SubnetSpec};

pub(crate) async fn create(sim: &SimCloud, d: &Desired, spec: &InstanceSpec) -> Result<Observed> {
    let InstanceSpec {
        subnet_id,
        security_group_ids,
        image_id,
        root_volume_gib,
        associate_public_ip,
        ..
    } = spec;
    let id = sim
        .call("ec2", "RunInstances", |w, now| {
            let op = "RunInstances";
            if let Some(existing) = w.by_token(Kind::Instance, &d.client_token) {
                return same_request(op, existing.token.as_ref(), &d.spec)
                    .map(|_| existing.id.clone());
            }
            let Some(SubnetSpec {
                vpc_id, cidr_block, ..
            }) = w.spec::<SubnetSpec>(subnet_id).cloned()
            else {
                return Err(not_found(
                    op,
                    "InvalidSubnetID.NotFound",
                    format!("The subnet ID '{subnet_id}' does not exist"),
                ));
            };
            // EC2 accepts `resolve:ssm:<parameter>` and launches the AMI the public
            // parameter names; the simulated parameter store has one AMI per name.
            let resolved_image = match image_id.strip_prefix("resolve:ssm:") {
                Some(parameter) => format!(
                    "ami-{:017x}",
                    parameter
                        .bytes()
                        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b))
                            .wrapping_mul(0x100_0000_01b3))
                        >> 4
                ),
                None => image_id.clone(),
            };
            if !resolved_image.starts_with("ami-") {
                return Err(terminal(
                    op,
                    "InvalidAMIID.Malformed",
                    format!("Invalid id: \"{image_id}\" (expecting \"ami-...\")"),
                ));
            }
            if *root_volume_gib < 1 {
                return Err(terminal(
                    op,
                    "InvalidParameterValue",
                    format!("root volume size {root_volume_gib} GiB"),
                ));
            }
            let mut groups = security_group_ids.clone();
            if groups.is_empty() {
                groups.extend(
                    w.specs::<DefaultSecurityGroupSpec>()
                        .find(|(_, group)| group.vpc_id == vpc_id)
                        .map(|(r, _)| r.id.clone()),
                );
            }
            check_groups(w, op, &vpc_id, &groups)?;
            let id = w.new_id("i-");
            let launched = InstanceSpec {
                security_group_ids: groups,
                image_id: resolved_image,
                ..spec.clone()
            };
            let ready = now + w.jittered(30.0, 3.0);
            let private_ip = Cidr::parse(&cidr_block)
                .map(|c| c.host(4 + w.rng.next_u64() % 250))
                .unwrap_or_default();
            let public_ip = associate_public_ip.then(|| w.rng.public_ip());
            w.insert(Kind::Instance, &id, launched.into(), d.tags.clone(), now);
            if let Some(r) = w.get_mut(Kind::Instance, &id) {
                r.phase = Phase::Pending(ready);
                r.token = Some((d.client_token.clone(), d.spec.clone()));
                r.attributes.insert("privateIp".into(), private_ip);
                r.attributes
                    .extend(public_ip.map(|ip| ("publicIp".to_string(), ip)));
            }
            Ok(id)
        })
        .await?;
    sim.snapshot(Kind::Instance, &id)
}

/// Every group exists and lives in the instance's VPC.
fn check_groups(w: &World, op: &str, vpc: &str, groups: &[String]) -> Result<()> {
    for group in groups {
        let record = w
            .get(Kind::SecurityGroup, group)
            .or_else(|| w.get(Kind::DefaultSecurityGroup, group));
        match record.and_then(|r| r.vpc_id()).as_deref() {
            None => {
                return Err(not_found(
                    op,
                    "InvalidGroup.NotFound",
                    format!("The security group '{group}' does not exist"),
                ));
            }
            Some(v) if v != vpc => {
                return Err(terminal(
                    op,
                    "InvalidParameter",
                    format!("Security group {group} and subnet belong to different networks."),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Only the security groups and the metadata options change in place.
pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &InstanceSpec,
    have: &InstanceSpec,
) -> Result<Observed> {
    d.spec.check_immutable("ModifyInstanceAttribute", &o.spec)?;
    let (mut a, mut b) = (
        want.security_group_ids.clone(),
        have.security_group_ids.clone(),
    );
    a.sort();
    b.sort();
    if a != b {
        let op = "ModifyInstanceAttribute";
        let want_groups = &want.security_group_ids;
        sim.call("ec2", op, |w, _| {
            let vpc = running(w, op, &o.id)?;
            if want_groups.is_empty() {
                return Err(terminal(
                    op,
                    "InvalidParameterValue",
                    "an instance needs at least one security group",
                ));
            }
            check_groups(w, op, &vpc, want_groups)?;
            if let Some(instance) = w.spec_mut::<InstanceSpec>(&o.id) {
                instance.security_group_ids = want_groups.clone();
            }
            Ok(())
        })
        .await?;
    }
    if want.imds_v2_required != have.imds_v2_required {
        let op = "ModifyInstanceMetadataOptions";
        sim.call("ec2", op, |w, _| {
            running(w, op, &o.id)?;
            if let Some(instance) = w.spec_mut::<InstanceSpec>(&o.id) {
                instance.imds_v2_required = want.imds_v2_required;
            }
            Ok(())
        })
        .await?;
    }
    sync_tags(sim, Kind::Instance, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::Instance, &o.id)
}

/// The instance exists and is not shutting down; returns its VPC.
fn running(w: &World, op: &str, id: &str) -> Result<String> {
    let record = w.get(Kind::Instance, id).ok_or_else(|| {
        not_found(
            op,
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{id}' does not exist"),
        )
    })?;
    if matches!(record.phase, Phase::Deleting(_)) {
        return Err(terminal(
            op,
            "IncorrectInstanceState",
            format!("The instance '{id}' is not in a state from which it can be modified."),
        ));
    }
    let subnet = record.subnet_id().unwrap_or_default();
    Ok(w.spec::<SubnetSpec>(&subnet)
        .map(|s| s.vpc_id.clone())
        .unwrap_or_default())
}

pub(crate) async fn delete(sim: &SimCloud, id: &str) -> Result<()> {
    let result = sim
        .call("ec2", "TerminateInstances", |w, now| {
            let gone_at = now + w.scaled(40.0);
            let record = w.get_mut(Kind::Instance, id).ok_or_else(|| {
                not_found(
                    "TerminateInstances",
                    "InvalidInstanceID.NotFound",
                    format!("The instance ID '{id}' does not exist"),
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
    use crate::cloud::{InstanceSpec, Kind, Provider, Spec, State};

    #[tokio::test]
    async fn run_pending_then_running_terminate_shutting_down_then_gone() {
        let sim = sim_at(0.005);
        let net = network(&sim).await;
        let i = make(&sim, "vm", instance_spec(&net.private, &net.sg, false)).await;
        assert!(i.id.starts_with("i-") && i.id.len() == 19, "{}", i.id);
        assert_eq!(i.state, State::Pending);
        assert!(!i.attributes.contains_key("publicIp"), "no public IP asked");
        // 30 s ± 3 s at time_scale 0.005: 135–165 ms.
        tokio::time::sleep(Duration::from_millis(180)).await;
        assert_eq!(
            observe_id(&sim, Kind::Instance, &i.id).await.unwrap().state,
            State::Available
        );
        sim.delete(Kind::Instance, &i.id).await.unwrap();
        assert_eq!(
            observe_id(&sim, Kind::Instance, &i.id).await.unwrap().state,
            State::Deleting
        );
        tokio::time::sleep(Duration::from_millis(220)).await;
        assert!(observe_id(&sim, Kind::Instance, &i.id).await.is_none());
    }

    #[tokio::test]
    async fn client_token_returns_same_instance_and_public_ip_is_an_attribute() {
        let sim = sim();
        let net = network(&sim).await;
        let a = make(&sim, "vm", instance_spec(&net.public, &net.sg, true)).await;
        let b = sim
            .create(&desired("vm", instance_spec(&net.public, &net.sg, true)))
            .await
            .unwrap();
        assert_eq!(a.id, b.id);
        assert!(a.attributes.contains_key("publicIp"));
        assert_eq!(
            count(&sim, "RunInstances"),
            2,
            "both calls counted, one instance"
        );
    }

    #[tokio::test]
    async fn no_security_group_means_the_vpc_default_one() {
        let sim = sim();
        let net = network(&sim).await;
        let i = make(&sim, "vm", instance_spec(&net.private, "", false)).await;
        let Spec::Instance(InstanceSpec {
            security_group_ids, ..
        }) = &i.spec
        else {
            panic!()
        };
        let default = sim
            .resources()
            .into_iter()
            .find(|(k, _)| *k == Kind::DefaultSecurityGroup)
            .unwrap()
            .1;
        assert_eq!(security_group_ids, &vec![default.id]);
    }
}
