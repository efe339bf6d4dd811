//! The VPC's default security group (NET-5: no rules). AWS creates and deletes it with the
//! VPC. Observe finds it by the desired VPC (`vpc-id` + `group-name=default`, one call for
//! every lookup) or by its recorded id; "create" finds it the same way, tags it and makes
//! its rules the desired ones (none: every rule revoked); "update" does the same from the
//! observed state; "delete" is a no-op (in the dispatcher).

use aws_sdk_ec2::types::SecurityGroup;

use super::security_group::{describe, reconcile_rules, rules, rules_of};
use super::vpc::{id_filter, merged_tags};
use super::{AwsCloud, ensure_ec2_tags, from_ec2_tags};
use crate::cloud::{
    CloudError, DefaultSecurityGroupSpec, Desired, KindSpec, Lookup, Observed, Owner, Spec, State,
};

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

fn observed(group: &SecurityGroup) -> Observed {
    let mut attributes = std::collections::BTreeMap::new();
    if let Some(name) = group.group_name() {
        attributes.insert("groupName".to_string(), name.to_string());
    }
    Observed {
        id: group.group_id().unwrap_or_default().to_string(),
        arn: group.security_group_arn().map(String::from),
        state: State::Available,
        spec: Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
            vpc_id: group.vpc_id().unwrap_or_default().to_string(),
            ingress: rules_of(group.ip_permissions()),
            egress: rules_of(group.ip_permissions_egress()),
        }),
        tags: from_ec2_tags(group.tags()),
        attributes,
    }
}

fn desired_vpc(spec: Option<&Spec>) -> Option<&str> {
    match spec {
        Some(Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec { vpc_id, .. }))
            if !vpc_id.is_empty() =>
        {
            Some(vpc_id)
        }
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
            let by_id = lookup
                .recorded_id
                .as_ref()
                .and_then(|id| found.iter().find(|o| &o.id == id));
            let by_vpc = || {
                let vpc = desired_vpc(lookup.desired.as_ref())?;
                found.iter().find(|o| {
                    DefaultSecurityGroupSpec::of(&o.spec).is_some_and(|g| g.vpc_id == vpc)
                })
            };
            by_id.or_else(by_vpc).cloned()
        })
        .collect())
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &DefaultSecurityGroupSpec,
) -> Result<Observed, CloudError> {
    let vpc_id = &spec.vpc_id;
    let groups = of_vpcs(cloud, std::slice::from_ref(vpc_id)).await?;
    let found = groups
        .first()
        .map(observed)
        .ok_or_else(|| CloudError::NotFound {
            operation: "DescribeSecurityGroups".into(),
            message: format!("InvalidVpcID.NotFound: no default security group for {vpc_id}"),
        })?;
    ensure_ec2_tags(cloud, &found.id, &desired.tags, &found.tags).await?;
    reconcile_rules(
        cloud,
        &found.id,
        (&spec.ingress, &spec.egress),
        rules(&found.spec),
    )
    .await?;
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
    want: &DefaultSecurityGroupSpec,
    have: &DefaultSecurityGroupSpec,
) -> Result<Observed, CloudError> {
    desired
        .spec
        .check_immutable("RevokeSecurityGroupIngress", &observed.spec)?;
    reconcile_rules(
        cloud,
        &observed.id,
        (&want.ingress, &want.egress),
        (&have.ingress, &have.egress),
    )
    .await?;
    ensure_ec2_tags(cloud, &observed.id, &desired.tags, &observed.tags).await?;
    Ok(Observed {
        spec: desired.spec.clone(),
        tags: merged_tags(desired, observed),
        ..observed.clone()
    })
}
