//! Elastic IPs (VPC domain): `AllocateAddress` (tags at creation); the id is the
//! allocation id, the address is the `publicIp` attribute. `ReleaseAddress` of an address
//! a NAT gateway still holds fails with `InvalidIPAddress.InUse` (classified as a
//! retryable dependency violation). `DescribeAddresses` is not paginated.

use aws_sdk_ec2::types::{Address, DomainType, Filter, ResourceType};

use super::vpc::{id_filter, merged_tags, unseen};
use super::{
    AwsCloud, ensure_ec2_tags, from_ec2_tags, match_lookups, owner_filter, tag_specification,
};
use crate::cloud::{
    CloudError, Desired, ElasticIpSpec, Kind, Lookup, Observed, Owned, Owner, State, TAG_NODE,
};

async fn describe(cloud: &AwsCloud, filter: Filter) -> Result<Vec<Address>, CloudError> {
    let result = cloud.ec2.describe_addresses().filters(filter).send().await;
    Ok(cloud
        .done("ec2", "DescribeAddresses", result)?
        .addresses()
        .to_vec())
}

fn observed(address: &Address) -> Observed {
    let mut attributes = std::collections::BTreeMap::new();
    if let Some(ip) = address.public_ip() {
        attributes.insert("publicIp".to_string(), ip.to_string());
    }
    if let Some(association) = address.association_id() {
        attributes.insert("associationId".to_string(), association.to_string());
    }
    Observed {
        id: address.allocation_id().unwrap_or_default().to_string(),
        arn: None,
        state: State::Available,
        spec: ElasticIpSpec {}.into(),
        tags: from_ec2_tags(address.tags()),
        attributes,
    }
}

pub(crate) async fn observe(
    cloud: &AwsCloud,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>, CloudError> {
    let mut addresses = describe(cloud, owner_filter(owner)).await?;
    let missing = unseen(lookups, addresses.iter().filter_map(|a| a.allocation_id()));
    if !missing.is_empty() {
        addresses.extend(describe(cloud, id_filter("allocation-id", &missing)).await?);
    }
    Ok(match_lookups(
        lookups,
        addresses.iter().map(observed).collect(),
    ))
}

pub(crate) async fn create(cloud: &AwsCloud, desired: &Desired) -> Result<Observed, CloudError> {
    // AllocateAddress takes no client token.
    let result = cloud
        .ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(tag_specification(ResourceType::ElasticIp, &desired.tags))
        .send()
        .await;
    let output = cloud.done("ec2", "AllocateAddress", result)?;
    let id = output.allocation_id().ok_or_else(|| CloudError::Server {
        operation: "AllocateAddress".into(),
        message: "no allocation id in the response".into(),
    })?;
    let mut attributes = std::collections::BTreeMap::new();
    if let Some(ip) = output.public_ip() {
        attributes.insert("publicIp".to_string(), ip.to_string());
    }
    Ok(Observed {
        id: id.to_string(),
        arn: None,
        state: State::Available,
        spec: ElasticIpSpec {}.into(),
        tags: desired.tags.clone(),
        attributes,
    })
}

pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
) -> Result<Observed, CloudError> {
    ensure_ec2_tags(cloud, &observed.id, &desired.tags, &observed.tags).await?;
    Ok(Observed {
        tags: merged_tags(desired, observed),
        ..observed.clone()
    })
}

pub(crate) async fn delete(cloud: &AwsCloud, id: &str) -> Result<(), CloudError> {
    let result = cloud.ec2.release_address().allocation_id(id).send().await;
    cloud.done("ec2", "ReleaseAddress", result).map(|_| ())
}

pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    Ok(describe(cloud, owner_filter(owner))
        .await?
        .iter()
        .map(|a| Owned {
            kind: Kind::ElasticIp,
            id: a.allocation_id().unwrap_or_default().to_string(),
            node: from_ec2_tags(a.tags()).remove(TAG_NODE).unwrap_or_default(),
        })
        .collect())
}
