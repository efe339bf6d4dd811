//! Security groups, and the rule operations the default security group shares with them.
//! A new group gets AWS's default egress rule (all traffic to 0.0.0.0/0); create then
//! authorizes/revokes toward the desired rules like an update does.

use super::SimCloud;
use super::api::{Result, dependency, not_found, ok_if_missing, sync_tags, terminal};
use super::cidr::Cidr;
use super::world::World;
use crate::cloud::{
    DefaultSecurityGroupSpec, Desired, InstanceSpec, Kind, Observed, SecurityGroupSpec, SgRule,
    Spec,
};

/// A rule allowing all traffic from/to `source`.
pub(crate) fn all_traffic(source: &str) -> SgRule {
    SgRule {
        protocol: "-1".into(),
        from_port: 0,
        to_port: 0,
        source: source.into(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Ingress,
    Egress,
}

pub(crate) async fn create(
    sim: &SimCloud,
    d: &Desired,
    spec: &SecurityGroupSpec,
) -> Result<Observed> {
    let SecurityGroupSpec {
        vpc_id,
        name,
        description,
        ..
    } = spec;
    let id = sim
        .call("ec2", "CreateSecurityGroup", |w, now| {
            let op = "CreateSecurityGroup";
            if w.get(Kind::Vpc, vpc_id).is_none() {
                return Err(not_found(
                    op,
                    "InvalidVpcID.NotFound",
                    format!("The vpc ID '{vpc_id}' does not exist"),
                ));
            }
            let taken = w
                .specs::<SecurityGroupSpec>()
                .any(|(_, group)| group.vpc_id == *vpc_id && group.name == *name);
            if taken || name == "default" {
                return Err(terminal(
                    op,
                    "InvalidGroup.Duplicate",
                    format!("The security group '{name}' already exists for VPC '{vpc_id}'"),
                ));
            }
            let id = w.new_id("sg-");
            let created = SecurityGroupSpec {
                vpc_id: vpc_id.clone(),
                name: name.clone(),
                description: description.clone(),
                ingress: vec![],
                egress: vec![all_traffic("0.0.0.0/0")],
            };
            w.insert(
                Kind::SecurityGroup,
                &id,
                created.into(),
                d.tags.clone(),
                now,
            );
            Ok(id)
        })
        .await?;
    let created = sim.snapshot(Kind::SecurityGroup, &id)?;
    reconcile_rules(
        sim,
        Kind::SecurityGroup,
        &id,
        (&spec.ingress, &spec.egress),
        rules(&created.spec),
    )
    .await?;
    sim.snapshot(Kind::SecurityGroup, &id)
}

pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &SecurityGroupSpec,
    have: &SecurityGroupSpec,
) -> Result<Observed> {
    d.spec
        .check_immutable("ModifySecurityGroupRules", &o.spec)?;
    reconcile_rules(
        sim,
        Kind::SecurityGroup,
        &o.id,
        (&want.ingress, &want.egress),
        (&have.ingress, &have.egress),
    )
    .await?;
    sync_tags(sim, Kind::SecurityGroup, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::SecurityGroup, &o.id)
}

/// A group's rules: (ingress, egress).
pub(crate) type Rules<'a> = (&'a [SgRule], &'a [SgRule]);

/// The rules of a security group or a default security group (none for other kinds).
pub(crate) fn rules(spec: &Spec) -> Rules<'_> {
    match spec {
        Spec::SecurityGroup(SecurityGroupSpec {
            ingress, egress, ..
        })
        | Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
            ingress, egress, ..
        }) => (ingress, egress),
        _ => (&[], &[]),
    }
}

/// Makes the group's rules `want`, starting from `have`: one
/// `AuthorizeSecurityGroup{Ingress,Egress}` with every missing rule and one
/// `RevokeSecurityGroup{Ingress,Egress}` with every extra one, per direction that differs.
pub(crate) async fn reconcile_rules(
    sim: &SimCloud,
    kind: Kind,
    id: &str,
    want: Rules<'_>,
    have: Rules<'_>,
) -> Result<()> {
    let ((want_in, want_out), (have_in, have_out)) = (want, have);
    for (direction, want, have) in [
        (Direction::Ingress, want_in, have_in),
        (Direction::Egress, want_out, have_out),
    ] {
        let mut add: Vec<SgRule> = want.iter().filter(|r| !have.contains(r)).cloned().collect();
        add.sort();
        add.dedup();
        let remove: Vec<SgRule> = have.iter().filter(|r| !want.contains(r)).cloned().collect();
        let suffix = if direction == Direction::Ingress {
            "Ingress"
        } else {
            "Egress"
        };
        if !add.is_empty() {
            let op = format!("AuthorizeSecurityGroup{suffix}");
            sim.call("ec2", &op, |w, _| {
                authorize(w, &op, kind, id, direction, add)
            })
            .await?;
        }
        if !remove.is_empty() {
            let op = format!("RevokeSecurityGroup{suffix}");
            sim.call("ec2", &op, |w, _| {
                revoke(w, &op, kind, id, direction, &remove)
            })
            .await?;
        }
    }
    Ok(())
}

fn group_rules<'a>(
    w: &'a mut World,
    op: &str,
    kind: Kind,
    id: &str,
    direction: Direction,
) -> Result<&'a mut Vec<SgRule>> {
    let record = w.get_mut(kind, id).ok_or_else(|| {
        not_found(
            op,
            "InvalidGroup.NotFound",
            format!("The security group '{id}' does not exist"),
        )
    })?;
    match (&mut record.spec, direction) {
        (
            Spec::SecurityGroup(SecurityGroupSpec { ingress, .. })
            | Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec { ingress, .. }),
            Direction::Ingress,
        ) => Ok(ingress),
        (
            Spec::SecurityGroup(SecurityGroupSpec { egress, .. })
            | Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec { egress, .. }),
            Direction::Egress,
        ) => Ok(egress),
        _ => Err(terminal(
            op,
            "InvalidGroupId.Malformed",
            format!("{id} is not a security group"),
        )),
    }
}

fn validate(w: &World, op: &str, rule: &SgRule) -> Result<()> {
    let bad = |why: String| Err(terminal(op, "InvalidParameterValue", why));
    match rule.protocol.as_str() {
        "-1" | "icmp" => {}
        "tcp" | "udp" => {
            if !(0..=65535).contains(&rule.from_port)
                || rule.from_port > rule.to_port
                || rule.to_port > 65535
            {
                return bad(format!(
                    "invalid port range {}-{}",
                    rule.from_port, rule.to_port
                ));
            }
        }
        other => return bad(format!("invalid protocol {other}")),
    }
    if rule.source.starts_with("sg-") {
        let exists = w
            .get(Kind::SecurityGroup, &rule.source)
            .or_else(|| w.get(Kind::DefaultSecurityGroup, &rule.source));
        if exists.is_none() {
            return Err(not_found(
                op,
                "InvalidGroup.NotFound",
                format!("The security group '{}' does not exist", rule.source),
            ));
        }
    } else if !rule.source.contains(':') && Cidr::parse(&rule.source).is_none() {
        return bad(format!("invalid CIDR {}", rule.source));
    }
    Ok(())
}

fn authorize(
    w: &mut World,
    op: &str,
    kind: Kind,
    id: &str,
    direction: Direction,
    add: Vec<SgRule>,
) -> Result<()> {
    for rule in &add {
        validate(w, op, rule)?;
    }
    let rules = group_rules(w, op, kind, id, direction)?;
    if let Some(dup) = add.iter().find(|r| rules.contains(r)) {
        return Err(terminal(
            op,
            "InvalidPermission.Duplicate",
            format!("the rule {dup:?} already exists in {id}"),
        ));
    }
    rules.extend(add);
    rules.sort();
    Ok(())
}

fn revoke(
    w: &mut World,
    op: &str,
    kind: Kind,
    id: &str,
    direction: Direction,
    remove: &[SgRule],
) -> Result<()> {
    let rules = group_rules(w, op, kind, id, direction)?;
    if let Some(absent) = remove.iter().find(|r| !rules.contains(r)) {
        return Err(terminal(
            op,
            "InvalidPermission.NotFound",
            format!("the rule {absent:?} does not exist in {id}"),
        ));
    }
    rules.retain(|r| !remove.contains(r));
    Ok(())
}

pub(crate) async fn delete(sim: &SimCloud, id: &str) -> Result<()> {
    let result = sim
        .call("ec2", "DeleteSecurityGroup", |w, _| {
            let op = "DeleteSecurityGroup";
            if w.get(Kind::SecurityGroup, id).is_none() {
                return Err(not_found(
                    op,
                    "InvalidGroup.NotFound",
                    format!("The security group '{id}' does not exist"),
                ));
            }
            if let Some(user) = user_of(w, id) {
                return Err(dependency(
                    op,
                    format!("resource {id} has a dependent object ({user})"),
                ));
            }
            w.remove(id);
            Ok(())
        })
        .await;
    ok_if_missing(result)
}

/// An instance using the group, another group whose rules reference it, or a Lambda
/// network interface (a VPC function's, or one Lambda keeps after the function left).
fn user_of(w: &World, id: &str) -> Option<String> {
    let instance = w
        .specs::<InstanceSpec>()
        .find(|(_, instance)| instance.security_group_ids.iter().any(|g| g == id))
        .map(|(r, _)| r);
    let referrer = w.all().filter(|r| r.id != id).find(|r| {
        let (ingress, egress) = rules(&r.spec);
        ingress.iter().chain(egress).any(|rule| rule.source == id)
    });
    instance
        .or(referrer)
        .map(|r| r.id.clone())
        .or_else(|| super::lambda_function::network_user(w, id))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::cloud::{Provider, SecurityGroupSpec, Spec};

    #[tokio::test]
    async fn create_sets_desired_rules_replacing_default_egress() {
        let sim = sim();
        let vpc = make(&sim, "vpc", vpc_spec()).await;
        let spec = sg_spec(
            &vpc.id,
            "web",
            vec![tcp(443, "10.0.0.0/16")],
            vec![tcp(443, "0.0.0.0/0")],
        );
        let sg = make(&sim, "sg", spec.clone()).await;
        assert_eq!(
            sg.spec, spec,
            "AWS's default egress rule was revoked, the desired ones authorized"
        );
        assert!(sg.id.starts_with("sg-") && sg.id.len() == 20);
        for op in [
            "CreateSecurityGroup",
            "AuthorizeSecurityGroupIngress",
            "AuthorizeSecurityGroupEgress",
        ] {
            assert_eq!(count(&sim, op), 1, "{op}");
        }
        assert_eq!(count(&sim, "RevokeSecurityGroupEgress"), 1);
    }

    #[tokio::test]
    async fn duplicate_name_in_same_vpc_is_terminal_but_other_vpc_is_fine() {
        let sim = sim();
        let a = make(&sim, "a", vpc_spec()).await;
        let b = make(&sim, "b", vpc_spec()).await;
        make(&sim, "sg", sg_spec(&a.id, "web", vec![], vec![])).await;
        let err = sim
            .create(&desired("sg2", sg_spec(&a.id, "web", vec![], vec![])))
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidGroup.Duplicate");
        sim.create(&desired("sg3", sg_spec(&b.id, "web", vec![], vec![])))
            .await
            .expect("same name, other VPC");
    }

    #[tokio::test]
    async fn rule_referencing_a_missing_group_is_not_found() {
        let sim = sim();
        let vpc = make(&sim, "vpc", vpc_spec()).await;
        let err = sim
            .create(&desired(
                "sg",
                sg_spec(&vpc.id, "x", vec![tcp(22, "sg-00000000000000000")], vec![]),
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(err, crate::cloud::CloudError::NotFound { .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn stale_observed_authorize_is_duplicate() {
        let sim = sim();
        let vpc = make(&sim, "vpc", vpc_spec()).await;
        let sg = make(&sim, "sg", sg_spec(&vpc.id, "x", vec![], vec![])).await;
        let mut want = sg.spec.clone();
        if let Spec::SecurityGroup(SecurityGroupSpec { ingress, .. }) = &mut want {
            ingress.push(tcp(22, "10.0.0.0/8"));
        }
        sim.update(&desired("sg", want.clone()), &sg).await.unwrap();
        let err = sim.update(&desired("sg", want), &sg).await.unwrap_err();
        assert_eq!(
            code(&err),
            "InvalidPermission.Duplicate",
            "observed was stale: AWS refuses the duplicate"
        );
    }
}
