//! Read side: the batched Describe* behind `observe`, and the tag search behind `owned`.
//! Neither changes anything; both honour the consistency window.

use std::time::Instant;

use super::SimCloud;
use super::api::Result;
use super::world::{Record, World};
use crate::cloud::{DefaultSecurityGroupSpec, Kind, KmsKeySpec, Lookup, Observed, Owner, Spec};

/// The one AWS call observe makes for a kind.
pub(crate) fn describe_operation(kind: Kind) -> &'static str {
    match kind {
        Kind::KmsKey => "DescribeKey",
        Kind::LogGroup => "DescribeLogGroups",
        Kind::IamRole => "GetRole",
        Kind::Vpc => "DescribeVpcs",
        Kind::DefaultSecurityGroup | Kind::SecurityGroup => "DescribeSecurityGroups",
        Kind::Subnet => "DescribeSubnets",
        Kind::InternetGateway => "DescribeInternetGateways",
        Kind::ElasticIp => "DescribeAddresses",
        Kind::NatGateway => "DescribeNatGateways",
        Kind::RouteTable => "DescribeRouteTables",
        Kind::Instance => "DescribeInstances",
        Kind::FlowLog => "DescribeFlowLogs",
    }
}

pub(crate) async fn observe(
    sim: &SimCloud,
    kind: Kind,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>> {
    let owner = owner.to_string();
    sim.call(kind.service(), describe_operation(kind), |w, now| {
        Ok(lookups
            .iter()
            .map(|lookup| find(w, kind, &owner, lookup, now).map(Record::observed))
            .collect())
    })
    .await
}

/// By recorded id; else (default SG) by the desired VPC; else the oldest resource tagged
/// with the owner and the lookup's node.
fn find<'a>(
    w: &'a World,
    kind: Kind,
    owner: &str,
    lookup: &Lookup,
    now: Instant,
) -> Option<&'a Record> {
    let seen = |r: &&Record| w.visible(r, now);
    if let Some(found) = lookup
        .recorded_id
        .as_deref()
        .and_then(|id| w.get(kind, id))
        .filter(seen)
    {
        return Some(found);
    }
    if let (
        Kind::DefaultSecurityGroup,
        Some(Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec { vpc_id, .. })),
    ) = (kind, &lookup.desired)
    {
        return w
            .of_kind(kind)
            .filter(seen)
            .find(|r| r.vpc_id() == Some(vpc_id.as_str()));
    }
    w.of_kind(kind)
        .filter(seen)
        .filter(|r| r.is_node(owner, &lookup.node))
        .min_by_key(|r| r.seq)
}

/// Every resource tagged with the owner that still exists, oldest first. A KMS key
/// scheduled for deletion no longer counts. One Resource Groups Tagging API call.
pub(crate) async fn owned(sim: &SimCloud, owner: &Owner) -> Result<Vec<crate::cloud::Owned>> {
    let owner = owner.to_string();
    sim.call("tagging", "GetResources", |w, now| {
        let mut found: Vec<&Record> = w
            .all()
            .filter(|r| r.owned_by(&owner) && w.visible(r, now))
            .filter(|r| {
                !matches!(
                    r.spec,
                    Spec::KmsKey(KmsKeySpec {
                        pending_deletion: true,
                        ..
                    })
                )
            })
            .collect();
        found.sort_by_key(|r| r.seq);
        Ok(found
            .into_iter()
            .map(|r| crate::cloud::Owned {
                kind: r.kind,
                id: r.id.clone(),
                node: r
                    .tags
                    .get(crate::cloud::TAG_NODE)
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect())
    })
    .await
}
