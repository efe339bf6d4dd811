//! The VPC's default security group (NET-5: no rules). AWS creates and deletes it with the
//! VPC; "create" finds it by VPC, tags it and revokes its rules toward the desired ones
//! (none), "update" does the same from the observed state, "delete" is a no-op.

use super::SimCloud;
use super::api::{Result, not_found, sync_tags};
use super::security_group::{reconcile_rules, rules};
use crate::cloud::{DefaultSecurityGroupSpec, Desired, Kind, Observed};

pub(crate) async fn create(
    sim: &SimCloud,
    d: &Desired,
    spec: &DefaultSecurityGroupSpec,
) -> Result<Observed> {
    let vpc_id = &spec.vpc_id;
    let op = "DescribeSecurityGroups";
    let found = sim
        .call("ec2", op, |w, _| {
            w.specs::<DefaultSecurityGroupSpec>()
                .find(|(_, group)| group.vpc_id == *vpc_id)
                .map(|(r, _)| r.observed())
                .ok_or_else(|| {
                    not_found(
                        op,
                        "InvalidVpcID.NotFound",
                        format!("no default security group for {vpc_id}"),
                    )
                })
        })
        .await?;
    sync_tags(
        sim,
        Kind::DefaultSecurityGroup,
        &found.id,
        &d.tags,
        &found.tags,
    )
    .await?;
    reconcile_rules(
        sim,
        Kind::DefaultSecurityGroup,
        &found.id,
        (&spec.ingress, &spec.egress),
        rules(&found.spec),
    )
    .await?;
    sim.snapshot(Kind::DefaultSecurityGroup, &found.id)
}

pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &DefaultSecurityGroupSpec,
    have: &DefaultSecurityGroupSpec,
) -> Result<Observed> {
    d.spec
        .check_immutable("RevokeSecurityGroupIngress", &o.spec)?;
    reconcile_rules(
        sim,
        Kind::DefaultSecurityGroup,
        &o.id,
        (&want.ingress, &want.egress),
        (&have.ingress, &have.egress),
    )
    .await?;
    sync_tags(sim, Kind::DefaultSecurityGroup, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::DefaultSecurityGroup, &o.id)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::cloud::{DefaultSecurityGroupSpec, Kind, Lookup, Provider, Spec, TAG_NODE};

    fn empty(vpc: &str) -> Spec {
        Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
            vpc_id: vpc.into(),
            ingress: vec![],
            egress: vec![],
        })
    }

    #[tokio::test]
    async fn create_tags_and_revokes_every_rule_then_observe_finds_it_by_vpc() {
        let sim = sim();
        let vpc = make(&sim, "vpc", vpc_spec()).await;
        sim.reset_calls();
        let sg = sim
            .create(&desired("default-sg", empty(&vpc.id)))
            .await
            .unwrap();
        assert_eq!(sg.spec, empty(&vpc.id));
        assert_eq!(
            sg.tags.get(TAG_NODE).map(String::as_str),
            Some("default-sg")
        );
        assert_eq!(
            ops(&sim),
            vec![
                "CreateTags",
                "DescribeSecurityGroups",
                "RevokeSecurityGroupEgress",
                "RevokeSecurityGroupIngress"
            ]
        );
        let lookup = Lookup {
            node: "other-node".into(),
            recorded_id: None,
            desired: Some(empty(&vpc.id)),
        };
        let found = sim
            .observe(Kind::DefaultSecurityGroup, &owner(), &[lookup])
            .await
            .unwrap();
        assert_eq!(found[0].as_ref().map(|o| o.id.clone()), Some(sg.id));
    }

    #[tokio::test]
    async fn delete_is_a_no_op_and_the_vpc_takes_it_away() {
        let sim = sim();
        let vpc = make(&sim, "vpc", vpc_spec()).await;
        let sg = sim
            .create(&desired("default-sg", empty(&vpc.id)))
            .await
            .unwrap();
        sim.reset_calls();
        sim.delete(Kind::DefaultSecurityGroup, &sg.id)
            .await
            .unwrap();
        assert!(ops(&sim).is_empty(), "no API call");
        assert!(sim.resources().iter().any(|(_, o)| o.id == sg.id));
        sim.delete(Kind::Vpc, &vpc.id).await.unwrap();
        assert!(!sim.resources().iter().any(|(_, o)| o.id == sg.id));
    }
}
