//! Security groups: `CreateSecurityGroup` (tags at creation), then one
//! `AuthorizeSecurityGroup{Ingress,Egress}` with every missing rule and one
//! `RevokeSecurityGroup{Ingress,Egress}` with every extra one per direction — which, on a
//! new group, revokes AWS's default egress-all rule unless it is desired. Observe is one
//! paginated `DescribeSecurityGroups` by the owner tag (plus one by `group-id` for recorded
//! ids the tag search missed). Default groups (`default`) are never reported here.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, SecurityGroup,
    UserIdGroupPair,
};

use super::paginate;
use super::{
    AwsCloud, ensure_ec2_tags, from_ec2_tags, match_lookups, owner_filter, tag_specification,
};
use crate::cloud::{
    CloudError, DefaultSecurityGroupSpec, Desired, Kind, Lookup, Observed, Owned, Owner,
    SecurityGroupSpec, SgRule, Spec, State, TAG_NODE,
};

/// Every security group matching `filters`, all pages.
pub(crate) async fn describe(
    cloud: &AwsCloud,
    filters: Vec<Filter>,
) -> Result<Vec<SecurityGroup>, CloudError> {
    paginate(|token| {
        let call = cloud
            .ec2
            .describe_security_groups()
            .set_filters(Some(filters.clone()))
            .set_next_token(token);
        async move {
            let page = cloud.done("ec2", "DescribeSecurityGroups", call.send().await)?;
            Ok((
                page.security_groups().to_vec(),
                page.next_token().map(String::from),
            ))
        }
    })
    .await
}

fn id_filter(ids: &[String]) -> Filter {
    Filter::builder()
        .name("group-id")
        .set_values(Some(ids.to_vec()))
        .build()
}

/// One rule per (permission, source: CIDR, IPv6 CIDR, group id or prefix list), sorted.
/// Also the default security group's (see `default_sg`).
pub(crate) fn rules_of(permissions: &[IpPermission]) -> Vec<SgRule> {
    let mut rules = Vec::new();
    for p in permissions {
        let protocol = p.ip_protocol().unwrap_or("-1").to_string();
        // AWS reports no ports for protocol -1; the spec writes 0-0 (as the sim does).
        let (from_port, to_port) = if protocol == "-1" {
            (0, 0)
        } else {
            (p.from_port().unwrap_or(0), p.to_port().unwrap_or(0))
        };
        let rule = |source: &str| SgRule {
            protocol: protocol.clone(),
            from_port,
            to_port,
            source: source.to_string(),
        };
        rules.extend(p.ip_ranges().iter().filter_map(|r| r.cidr_ip()).map(rule));
        rules.extend(
            p.ipv6_ranges()
                .iter()
                .filter_map(|r| r.cidr_ipv6())
                .map(rule),
        );
        rules.extend(
            p.user_id_group_pairs()
                .iter()
                .filter_map(|g| g.group_id())
                .map(rule),
        );
        rules.extend(
            p.prefix_list_ids()
                .iter()
                .filter_map(|l| l.prefix_list_id())
                .map(rule),
        );
    }
    rules.sort();
    rules.dedup();
    rules
}

/// The permission granting one rule.
pub(crate) fn permission(rule: &SgRule) -> IpPermission {
    let mut p = IpPermission::builder().ip_protocol(&rule.protocol);
    if rule.protocol != "-1" {
        p = p.from_port(rule.from_port).to_port(rule.to_port);
    }
    if rule.source.starts_with("sg-") {
        p = p.user_id_group_pairs(UserIdGroupPair::builder().group_id(&rule.source).build());
    } else if rule.source.starts_with("pl-") {
        p = p.prefix_list_ids(PrefixListId::builder().prefix_list_id(&rule.source).build());
    } else if rule.source.contains(':') {
        p = p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(&rule.source).build());
    } else {
        p = p.ip_ranges(IpRange::builder().cidr_ip(&rule.source).build());
    }
    p.build()
}

fn to_observed(group: &SecurityGroup) -> Observed {
    Observed {
        id: group.group_id().unwrap_or_default().to_string(),
        arn: group.security_group_arn().map(String::from),
        state: State::Available,
        spec: Spec::SecurityGroup(SecurityGroupSpec {
            vpc_id: group.vpc_id().unwrap_or_default().to_string(),
            name: group.group_name().unwrap_or_default().to_string(),
            description: group.description().unwrap_or_default().to_string(),
            ingress: rules_of(group.ip_permissions()),
            egress: rules_of(group.ip_permissions_egress()),
        }),
        tags: from_ec2_tags(group.tags()),
        attributes: BTreeMap::new(),
    }
}

fn is_default(group: &SecurityGroup) -> bool {
    group.group_name() == Some("default")
}

pub(crate) async fn observe(
    cloud: &AwsCloud,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>, CloudError> {
    let mut groups = describe(cloud, vec![owner_filter(owner)]).await?;
    let missing: Vec<String> = lookups
        .iter()
        .filter_map(|l| l.recorded_id.clone())
        .filter(|id| !groups.iter().any(|g| g.group_id() == Some(id.as_str())))
        .collect();
    if !missing.is_empty() {
        groups.extend(describe(cloud, vec![id_filter(&missing)]).await?);
    }
    let found = groups
        .iter()
        .filter(|g| !is_default(g))
        .map(to_observed)
        .collect();
    Ok(match_lookups(lookups, found))
}

async fn read(cloud: &AwsCloud, id: &str) -> Result<Observed, CloudError> {
    describe(cloud, vec![id_filter(&[id.to_string()])])
        .await?
        .first()
        .map(to_observed)
        .ok_or_else(|| CloudError::NotFound {
            operation: "DescribeSecurityGroups".into(),
            message: format!("InvalidGroup.NotFound: The security group '{id}' does not exist"),
        })
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &SecurityGroupSpec,
) -> Result<Observed, CloudError> {
    let result = cloud
        .ec2
        .create_security_group()
        .group_name(&spec.name)
        .description(&spec.description)
        .vpc_id(&spec.vpc_id)
        .tag_specifications(tag_specification(
            ResourceType::SecurityGroup,
            &desired.tags,
        ))
        .send()
        .await;
    let output = cloud.done("ec2", "CreateSecurityGroup", result)?;
    let id = output.group_id().unwrap_or_default().to_string();
    // The new group as AWS makes it: no ingress, egress all traffic to 0.0.0.0/0.
    let all_out = [SgRule {
        protocol: "-1".into(),
        from_port: 0,
        to_port: 0,
        source: "0.0.0.0/0".into(),
    }];
    reconcile_rules(cloud, &id, (&spec.ingress, &spec.egress), (&[], &all_out)).await?;
    read(cloud, &id).await
}

pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &SecurityGroupSpec,
    have: &SecurityGroupSpec,
) -> Result<Observed, CloudError> {
    desired
        .spec
        .check_immutable("ModifySecurityGroupRules", &observed.spec)?;
    reconcile_rules(
        cloud,
        &observed.id,
        (&want.ingress, &want.egress),
        (&have.ingress, &have.egress),
    )
    .await?;
    ensure_ec2_tags(cloud, &observed.id, &desired.tags, &observed.tags).await?;
    read(cloud, &observed.id).await
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

/// Makes the group's rules `want`, starting from `have`: one authorize call with every
/// missing rule and one revoke call with every extra one, per direction that differs.
pub(crate) async fn reconcile_rules(
    cloud: &AwsCloud,
    id: &str,
    want: Rules<'_>,
    have: Rules<'_>,
) -> Result<(), CloudError> {
    let ((want_in, want_out), (have_in, have_out)) = (want, have);
    for (ingress, want, have) in [(true, want_in, have_in), (false, want_out, have_out)] {
        let mut add: Vec<SgRule> = want.iter().filter(|r| !have.contains(r)).cloned().collect();
        add.sort();
        add.dedup();
        let remove: Vec<SgRule> = have.iter().filter(|r| !want.contains(r)).cloned().collect();
        let add: Vec<IpPermission> = add.iter().map(permission).collect();
        let remove: Vec<IpPermission> = remove.iter().map(permission).collect();
        if !add.is_empty() {
            if ingress {
                let result = cloud
                    .ec2
                    .authorize_security_group_ingress()
                    .group_id(id)
                    .set_ip_permissions(Some(add))
                    .send()
                    .await;
                cloud.done("ec2", "AuthorizeSecurityGroupIngress", result)?;
            } else {
                let result = cloud
                    .ec2
                    .authorize_security_group_egress()
                    .group_id(id)
                    .set_ip_permissions(Some(add))
                    .send()
                    .await;
                cloud.done("ec2", "AuthorizeSecurityGroupEgress", result)?;
            }
        }
        if !remove.is_empty() {
            if ingress {
                let result = cloud
                    .ec2
                    .revoke_security_group_ingress()
                    .group_id(id)
                    .set_ip_permissions(Some(remove))
                    .send()
                    .await;
                cloud.done("ec2", "RevokeSecurityGroupIngress", result)?;
            } else {
                let result = cloud
                    .ec2
                    .revoke_security_group_egress()
                    .group_id(id)
                    .set_ip_permissions(Some(remove))
                    .send()
                    .await;
                cloud.done("ec2", "RevokeSecurityGroupEgress", result)?;
            }
        }
    }
    Ok(())
}

pub(crate) async fn delete(cloud: &AwsCloud, id: &str) -> Result<(), CloudError> {
    let result = cloud.ec2.delete_security_group().group_id(id).send().await;
    cloud.done("ec2", "DeleteSecurityGroup", result).map(|_| ())
}

/// The owner's security groups; default groups are left out (they are `DefaultSecurityGroup`,
/// found through their VPC).
pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    Ok(describe(cloud, vec![owner_filter(owner)])
        .await?
        .iter()
        .filter(|g| !is_default(g))
        .map(|g| Owned {
            kind: Kind::SecurityGroup,
            id: g.group_id().unwrap_or_default().to_string(),
            node: from_ec2_tags(g.tags()).remove(TAG_NODE).unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::route_table::tests::{by_id, by_tag, cloud, desired, network, owner};
    use crate::cloud::{Kind, Provider, SecurityGroupSpec, SgRule, Spec};

    fn tcp(port: i32, source: &str) -> SgRule {
        SgRule {
            protocol: "tcp".into(),
            from_port: port,
            to_port: port,
            source: source.into(),
        }
    }

    #[tokio::test]
    async fn security_group_against_moto() {
        let cloud = cloud().await;
        let owner = owner("sg");
        let (vpc, ..) = network(&cloud).await;
        let base = desired(
            &owner,
            "base",
            Spec::SecurityGroup(SecurityGroupSpec {
                vpc_id: vpc.clone(),
                name: "base".into(),
                description: "base".into(),
                ingress: vec![],
                egress: vec![],
            }),
        );
        let base = cloud.create(&base).await.unwrap();
        let spec = Spec::SecurityGroup(SecurityGroupSpec {
            vpc_id: vpc.clone(),
            name: "web".into(),
            description: "web servers".into(),
            ingress: vec![tcp(22, &base.id), tcp(443, "10.0.0.0/16"), tcp(443, "::/0")],
            egress: vec![tcp(443, "0.0.0.0/0")],
        });
        let d = desired(&owner, "web", spec.clone());
        let created = cloud.create(&d).await.unwrap();
        assert_eq!(
            created.spec, spec,
            "default egress revoked, desired rules authorized"
        );
        assert_eq!(created.tags, d.tags);
        assert_eq!(
            by_id(&cloud, &owner, Kind::SecurityGroup, &created.id)
                .await
                .unwrap()
                .spec,
            spec
        );
        let seen = by_tag(&cloud, &owner, Kind::SecurityGroup, "web")
            .await
            .unwrap();
        assert_eq!(seen.id, created.id);

        let all = SgRule {
            protocol: "-1".into(),
            from_port: 0,
            to_port: 0,
            source: "0.0.0.0/0".into(),
        };
        let want = Spec::SecurityGroup(SecurityGroupSpec {
            vpc_id: vpc.clone(),
            name: "web".into(),
            description: "web servers".into(),
            ingress: vec![tcp(443, "10.0.0.0/16")],
            egress: vec![all],
        });
        let updated = cloud
            .update(&desired(&owner, "web", want.clone()), &seen)
            .await
            .unwrap();
        assert_eq!(updated.spec, want);

        // The VPC's default group is tagged too (as the default-SG kind does): never reported here.
        let defaults = super::describe(
            &cloud,
            vec![
                aws_sdk_ec2::types::Filter::builder()
                    .name("vpc-id")
                    .values(&vpc)
                    .build(),
            ],
        )
        .await
        .unwrap();
        let default = defaults
            .iter()
            .find(|g| g.group_name() == Some("default"))
            .unwrap()
            .group_id()
            .unwrap()
            .to_string();
        cloud
            .ec2
            .create_tags()
            .resources(&default)
            .set_tags(Some(super::super::ec2_tags(&d.tags)))
            .send()
            .await
            .unwrap();
        let owned = cloud.owned(&owner).await.unwrap();
        let groups: Vec<_> = owned
            .iter()
            .filter(|o| o.kind == Kind::SecurityGroup)
            .map(|o| o.id.clone())
            .collect();
        assert_eq!(groups.len(), 2, "{owned:?}");
        assert!(!groups.contains(&default));

        cloud
            .delete(Kind::SecurityGroup, &created.id)
            .await
            .unwrap();
        cloud
            .delete(Kind::SecurityGroup, &created.id)
            .await
            .expect("missing: success");
        assert!(
            by_id(&cloud, &owner, Kind::SecurityGroup, &created.id)
                .await
                .is_none()
        );
    }
}
