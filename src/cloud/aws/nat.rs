//! NAT gateways: `CreateNatGateway` (subnet, EIP allocation, client token, tags at
//! creation) -> `pending`, then `available` after a minute or two; `DeleteNatGateway` ->
//! `deleting`, then `deleted`. AWS keeps `deleted` and `failed` gateways visible for about
//! an hour: both count as absent. Subnet and allocation cannot change in place.
//!
//! A `failed` gateway is absent, but a create retried with the same client token returns
//! it again: the engine's token must change for a new attempt to start a new gateway.

use aws_sdk_ec2::types::{Filter, NatGateway, NatGatewayState, ResourceType};

use super::paginate;
use super::vpc::{id_filter, merged_tags, unseen};
use super::{
    AwsCloud, ensure_ec2_tags, from_ec2_tags, match_lookups, owner_filter, tag_specification,
};
use crate::cloud::{
    CloudError, Desired, Kind, KindSpec, Lookup, NatGatewaySpec, Observed, Owned, Owner, Spec,
    State, TAG_NODE, TAG_OWNER,
};

/// The existing gateways matching `filter`; with `owner`, only those tagged with it
/// (moto ignores `tag:` filters on `DescribeNatGateways`; AWS honours them).
async fn describe(
    cloud: &AwsCloud,
    filter: Filter,
    owner: Option<&Owner>,
) -> Result<Vec<NatGateway>, CloudError> {
    let owner = owner.map(Owner::to_string);
    let all = paginate(|token| {
        let call = cloud
            .ec2
            .describe_nat_gateways()
            .filter(filter.clone())
            .set_next_token(token);
        async move {
            let page = cloud.done("ec2", "DescribeNatGateways", call.send().await)?;
            Ok((
                page.nat_gateways().to_vec(),
                page.next_token().map(String::from),
            ))
        }
    })
    .await?;
    Ok(all
        .into_iter()
        .filter(|n| exists(n) && owned_by(n, owner.as_deref()))
        .collect())
}

fn owned_by(nat: &NatGateway, owner: Option<&str>) -> bool {
    owner.is_none_or(|owner| {
        nat.tags()
            .iter()
            .any(|t| t.key() == Some(TAG_OWNER) && t.value() == Some(owner))
    })
}

/// `deleted` and `failed` gateways are gone for every purpose.
fn exists(nat: &NatGateway) -> bool {
    !matches!(
        nat.state(),
        Some(NatGatewayState::Deleted | NatGatewayState::Failed)
    )
}

fn observed(nat: &NatGateway) -> Observed {
    let address = nat.nat_gateway_addresses().first();
    let mut attributes = std::collections::BTreeMap::new();
    if let Some(ip) = address.and_then(|a| a.public_ip()) {
        attributes.insert("publicIp".to_string(), ip.to_string());
    }
    if let Some(vpc) = nat.vpc_id() {
        attributes.insert("vpcId".to_string(), vpc.to_string());
    }
    Observed {
        id: nat.nat_gateway_id().unwrap_or_default().to_string(),
        arn: None,
        state: match nat.state() {
            Some(NatGatewayState::Pending) => State::Pending,
            Some(NatGatewayState::Deleting) => State::Deleting,
            _ => State::Available,
        },
        spec: Spec::NatGateway(NatGatewaySpec {
            subnet_id: nat.subnet_id().unwrap_or_default().to_string(),
            allocation_id: address
                .and_then(|a| a.allocation_id())
                .unwrap_or_default()
                .to_string(),
        }),
        tags: from_ec2_tags(nat.tags()),
        attributes,
    }
}

pub(crate) async fn observe(
    cloud: &AwsCloud,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>, CloudError> {
    let mut gateways = describe(cloud, owner_filter(owner), Some(owner)).await?;
    let missing = unseen(lookups, gateways.iter().filter_map(|n| n.nat_gateway_id()));
    if !missing.is_empty() {
        gateways.extend(describe(cloud, id_filter("nat-gateway-id", &missing), None).await?);
    }
    Ok(match_lookups(
        lookups,
        gateways.iter().map(observed).collect(),
    ))
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &NatGatewaySpec,
) -> Result<Observed, CloudError> {
    let result = cloud
        .ec2
        .create_nat_gateway()
        .subnet_id(&spec.subnet_id)
        .allocation_id(&spec.allocation_id)
        .client_token(&desired.client_token)
        .tag_specifications(tag_specification(ResourceType::Natgateway, &desired.tags))
        .send()
        .await;
    let output = cloud.done("ec2", "CreateNatGateway", result)?;
    let nat = output.nat_gateway().ok_or_else(|| CloudError::Server {
        operation: "CreateNatGateway".into(),
        message: "no NAT gateway in the response".into(),
    })?;
    let mut created = observed(nat);
    if created.tags.is_empty() {
        created.tags = desired.tags.clone();
    }
    // The response may omit the address while the gateway is pending.
    if let Some(seen) = NatGatewaySpec::of_mut(&mut created.spec)
        && seen.allocation_id.is_empty()
    {
        seen.allocation_id.clone_from(&spec.allocation_id);
    }
    Ok(created)
}

/// Nothing of a NAT gateway changes in place but its tags.
pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
) -> Result<Observed, CloudError> {
    desired
        .spec
        .check_immutable("CreateNatGateway", &observed.spec)?;
    ensure_ec2_tags(cloud, &observed.id, &desired.tags, &observed.tags).await?;
    Ok(Observed {
        tags: merged_tags(desired, observed),
        ..observed.clone()
    })
}

pub(crate) async fn delete(cloud: &AwsCloud, id: &str) -> Result<(), CloudError> {
    let result = cloud
        .ec2
        .delete_nat_gateway()
        .nat_gateway_id(id)
        .send()
        .await;
    cloud.done("ec2", "DeleteNatGateway", result).map(|_| ())
}

pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    Ok(describe(cloud, owner_filter(owner), Some(owner))
        .await?
        .iter()
        .map(|n| Owned {
            kind: Kind::NatGateway,
            id: n.nat_gateway_id().unwrap_or_default().to_string(),
            node: from_ec2_tags(n.tags()).remove(TAG_NODE).unwrap_or_default(),
        })
        .collect())
}
