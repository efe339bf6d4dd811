//! The VPC's default security group (NET-5: no rules). AWS creates and deletes it with the
//! VPC. Observe finds it by the desired VPC (`vpc-id` + `group-name=default`, one call for
//! every lookup) or by its recorded id; "create" finds it the same way, tags it and makes
//! its rules the desired ones (none: every rule revoked); "update" does the same from the
//! observed state; "delete" is a no-op (in the dispatcher).

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, SecurityGroup, UserIdGroupPair,
};

use super::vpc::{id_filter, immutable, merged_tags};
use super::{AwsCloud, ensure_ec2_tags, from_ec2_tags};
use crate::cloud::{CloudError, Desired, Lookup, Observed, Owner, SgRule, Spec, State};

async fn describe(
    cloud: &AwsCloud,
    filters: Vec<Filter>,
) -> Result<Vec<SecurityGroup>, CloudError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let result = cloud
            .ec2
            .describe_security_groups()
            .set_filters(Some(filters.clone()))
            .set_next_token(token.take())
            .send()
            .await;
        let page = cloud.done("ec2", "DescribeSecurityGroups", result)?;
        out.extend(page.security_groups().iter().cloned());
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// The default groups of `vpcs`.
async fn of_vpcs(cloud: &AwsCloud, vpcs: &[String]) -> Result<Vec<SecurityGroup>, CloudError> {
    describe(
        cloud,
        vec![
            id_filter("vpc-id", vpcs),
            id_filter("group-name", &["default".to_string()]),
        ],
    )
    .await
}

/// One rule per source, as AWS lists them. `-1` (all traffic) has no ports: 0/0.
pub(super) fn rules(permissions: &[IpPermission]) -> Vec<SgRule> {
    let mut out = Vec::new();
    for p in permissions {
        let rule = |source: &str| SgRule {
            protocol: p.ip_protocol().unwrap_or("-1").to_string(),
            from_port: p.from_port().unwrap_or(0),
            to_port: p.to_port().unwrap_or(0),
            source: source.to_string(),
        };
        out.extend(p.ip_ranges().iter().filter_map(|r| r.cidr_ip()).map(rule));
        out.extend(
            p.ipv6_ranges()
                .iter()
                .filter_map(|r| r.cidr_ipv6())
                .map(rule),
        );
        out.extend(
            p.user_id_group_pairs()
                .iter()
                .filter_map(|g| g.group_id())
                .map(rule),
        );
        out.extend(
            p.prefix_list_ids()
                .iter()
                .filter_map(|l| l.prefix_list_id())
                .map(rule),
        );
    }
    out.sort();
    out
}

/// A rule as the Authorize/Revoke calls take it.
pub(super) fn permission(rule: &SgRule) -> IpPermission {
    let mut p = IpPermission::builder().ip_protocol(&rule.protocol);
    if rule.protocol != "-1" {
        p = p.from_port(rule.from_port).to_port(rule.to_port);
    }
    let source = rule.source.as_str();
    p = if source.starts_with("sg-") {
        p.user_id_group_pairs(UserIdGroupPair::builder().group_id(source).build())
    } else if source.starts_with("pl-") {
        p.prefix_list_ids(PrefixListId::builder().prefix_list_id(source).build())
    } else if source.contains(':') {
        p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(source).build())
    } else {
        p.ip_ranges(IpRange::builder().cidr_ip(source).build())
    };
    p.build()
}

fn observed(group: &SecurityGroup) -> Observed {
    let mut attributes = std::collections::BTreeMap::new();
    if let Some(name) = group.group_name() {
        attributes.insert("groupName".to_string(), name.to_string());
    }
    Observed {
        id: group.group_id().unwrap_or_default().to_string(),
        arn: group.security_group_arn().map(String::from),
        state: State::Available,
        spec: Spec::DefaultSecurityGroup {
            vpc_id: group.vpc_id().unwrap_or_default().to_string(),
            ingress: rules(group.ip_permissions()),
            egress: rules(group.ip_permissions_egress()),
        },
        tags: from_ec2_tags(group.tags()),
        attributes,
    }
}

fn desired_vpc(spec: Option<&Spec>) -> Option<&str> {
    match spec {
        Some(Spec::DefaultSecurityGroup { vpc_id, .. }) if !vpc_id.is_empty() => Some(vpc_id),
        _ => None,
    }
}

pub(crate) async fn observe(
    cloud: &AwsCloud,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>, CloudError> {
    let _ = owner; // found by VPC, not by tags: AWS created it untagged
    let mut vpcs: Vec<String> = lookups
        .iter()
        .filter_map(|l| desired_vpc(l.desired.as_ref()))
        .map(String::from)
        .collect();
    vpcs.sort();
    vpcs.dedup();
    let mut groups = if vpcs.is_empty() {
        Vec::new()
    } else {
        of_vpcs(cloud, &vpcs).await?
    };
    let mut missing: Vec<String> = lookups
        .iter()
        .filter_map(|l| l.recorded_id.clone())
        .filter(|id| !groups.iter().any(|g| g.group_id() == Some(id.as_str())))
        .collect();
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        groups.extend(describe(cloud, vec![id_filter("group-id", &missing)]).await?);
    }
    let found: Vec<Observed> = groups.iter().map(observed).collect();
    Ok(lookups
        .iter()
        .map(|lookup| {
            let by_id = lookup.recorded_id.as_ref().and_then(|id| found.iter().find(|o| &o.id == id));
            let by_vpc = || {
                let vpc = desired_vpc(lookup.desired.as_ref())?;
                found.iter().find(|o| matches!(&o.spec, Spec::DefaultSecurityGroup { vpc_id, .. } if vpc_id == vpc))
            };
            by_id.or_else(by_vpc).cloned()
        })
        .collect())
}

pub(crate) async fn create(cloud: &AwsCloud, desired: &Desired) -> Result<Observed, CloudError> {
    let Spec::DefaultSecurityGroup { vpc_id, .. } = &desired.spec else {
        unreachable!("dispatched by kind")
    };
    let groups = of_vpcs(cloud, std::slice::from_ref(vpc_id)).await?;
    let found = groups
        .first()
        .map(observed)
        .ok_or_else(|| CloudError::NotFound {
            operation: "DescribeSecurityGroups".into(),
            message: format!("InvalidVpcID.NotFound: no default security group for {vpc_id}"),
        })?;
    ensure_ec2_tags(cloud, &found.id, &desired.tags, &found.tags).await?;
    reconcile_rules(cloud, &found.id, &desired.spec, &found.spec).await?;
    Ok(Observed {
        spec: desired.spec.clone(),
        tags: merged_tags(desired, &found),
        ..found
    })
}

pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
) -> Result<Observed, CloudError> {
    if let (
        Spec::DefaultSecurityGroup { vpc_id: want, .. },
        Spec::DefaultSecurityGroup { vpc_id: have, .. },
    ) = (&desired.spec, &observed.spec)
        && want != have
    {
        return Err(immutable("RevokeSecurityGroupIngress", "vpcId", have, want));
    }
    reconcile_rules(cloud, &observed.id, &desired.spec, &observed.spec).await?;
    ensure_ec2_tags(cloud, &observed.id, &desired.tags, &observed.tags).await?;
    Ok(Observed {
        spec: desired.spec.clone(),
        tags: merged_tags(desired, observed),
        ..observed.clone()
    })
}

fn spec_rules(spec: &Spec) -> (&[SgRule], &[SgRule]) {
    match spec {
        Spec::DefaultSecurityGroup {
            ingress, egress, ..
        }
        | Spec::SecurityGroup {
            ingress, egress, ..
        } => (ingress, egress),
        _ => (&[], &[]),
    }
}

/// Makes the group's rules those of `want`, from `have`: per direction that differs, one
/// Revoke with every extra rule and one Authorize with every missing one.
async fn reconcile_rules(
    cloud: &AwsCloud,
    id: &str,
    want: &Spec,
    have: &Spec,
) -> Result<(), CloudError> {
    let (want_in, want_out) = spec_rules(want);
    let (have_in, have_out) = spec_rules(have);
    let diff = |want: &[SgRule], have: &[SgRule]| {
        let remove: Vec<IpPermission> = have
            .iter()
            .filter(|r| !want.contains(r))
            .map(permission)
            .collect();
        let mut add: Vec<SgRule> = want.iter().filter(|r| !have.contains(r)).cloned().collect();
        add.sort();
        add.dedup();
        (remove, add.iter().map(permission).collect::<Vec<_>>())
    };
    let (remove, add) = diff(want_in, have_in);
    if !remove.is_empty() {
        let result = cloud
            .ec2
            .revoke_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(remove))
            .send()
            .await;
        cloud.done("ec2", "RevokeSecurityGroupIngress", result)?;
    }
    if !add.is_empty() {
        let result = cloud
            .ec2
            .authorize_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(add))
            .send()
            .await;
        cloud.done("ec2", "AuthorizeSecurityGroupIngress", result)?;
    }
    let (remove, add) = diff(want_out, have_out);
    if !remove.is_empty() {
        let result = cloud
            .ec2
            .revoke_security_group_egress()
            .group_id(id)
            .set_ip_permissions(Some(remove))
            .send()
            .await;
        cloud.done("ec2", "RevokeSecurityGroupEgress", result)?;
    }
    if !add.is_empty() {
        let result = cloud
            .ec2
            .authorize_security_group_egress()
            .group_id(id)
            .set_ip_permissions(Some(add))
            .send()
            .await;
        cloud.done("ec2", "AuthorizeSecurityGroupEgress", result)?;
    }
    Ok(())
}
