//! Subnets: `CreateSubnet` (tags at creation), then `ModifySubnetAttribute
//! MapPublicIpOnLaunch` when it should differ from AWS's default (off). VPC, CIDR block and
//! zone cannot change in place.

use aws_sdk_ec2::types::{Filter, ResourceType, Subnet, SubnetState};

use super::paginate;
use super::vpc::{bool_value, id_filter, merged_tags, unseen};
use super::{
    AwsCloud, ensure_ec2_tags, from_ec2_tags, match_lookups, owner_filter, tag_specification,
};
use crate::cloud::{
    CloudError, Desired, Kind, KindSpec, Lookup, Observed, Owned, Owner, Spec, State, SubnetSpec,
    TAG_NODE,
};

async fn describe(cloud: &AwsCloud, filter: Filter) -> Result<Vec<Subnet>, CloudError> {
    paginate(|token| {
        let call = cloud
            .ec2
            .describe_subnets()
            .filters(filter.clone())
            .set_next_token(token);
        async move {
            let page = cloud.done("ec2", "DescribeSubnets", call.send().await)?;
            Ok((page.subnets().to_vec(), page.next_token().map(String::from)))
        }
    })
    .await
}

fn observed(subnet: &Subnet) -> Observed {
    Observed {
        id: subnet.subnet_id().unwrap_or_default().to_string(),
        arn: subnet.subnet_arn().map(String::from),
        state: match subnet.state() {
            Some(SubnetState::Pending) => State::Pending,
            _ => State::Available,
        },
        spec: Spec::Subnet(SubnetSpec {
            vpc_id: subnet.vpc_id().unwrap_or_default().to_string(),
            cidr_block: subnet.cidr_block().unwrap_or_default().to_string(),
            availability_zone: subnet.availability_zone().unwrap_or_default().to_string(),
            map_public_ip_on_launch: subnet.map_public_ip_on_launch().unwrap_or(false),
        }),
        tags: from_ec2_tags(subnet.tags()),
        attributes: Default::default(),
    }
}

pub(crate) async fn observe(
    cloud: &AwsCloud,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>, CloudError> {
    let mut subnets = describe(cloud, owner_filter(owner)).await?;
    let missing = unseen(lookups, subnets.iter().filter_map(|s| s.subnet_id()));
    if !missing.is_empty() {
        subnets.extend(describe(cloud, id_filter("subnet-id", &missing)).await?);
    }
    Ok(match_lookups(
        lookups,
        subnets.iter().map(observed).collect(),
    ))
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &SubnetSpec,
) -> Result<Observed, CloudError> {
    let result = cloud
        .ec2
        .create_subnet()
        .vpc_id(&spec.vpc_id)
        .cidr_block(&spec.cidr_block)
        .availability_zone(&spec.availability_zone)
        .tag_specifications(tag_specification(ResourceType::Subnet, &desired.tags))
        .send()
        .await;
    let output = cloud.done("ec2", "CreateSubnet", result)?;
    let subnet = output.subnet().ok_or_else(|| CloudError::Server {
        operation: "CreateSubnet".into(),
        message: "no subnet in the response".into(),
    })?;
    let mut created = observed(subnet);
    if created.tags.is_empty() {
        created.tags = desired.tags.clone();
    }
    let have = SubnetSpec::of(&created.spec).is_some_and(|s| s.map_public_ip_on_launch);
    modify(cloud, &created.id, spec.map_public_ip_on_launch, have).await?;
    created.spec = desired.spec.clone();
    Ok(created)
}

pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &SubnetSpec,
    have: &SubnetSpec,
) -> Result<Observed, CloudError> {
    desired
        .spec
        .check_immutable("ModifySubnetAttribute", &observed.spec)?;
    modify(
        cloud,
        &observed.id,
        want.map_public_ip_on_launch,
        have.map_public_ip_on_launch,
    )
    .await?;
    ensure_ec2_tags(cloud, &observed.id, &desired.tags, &observed.tags).await?;
    Ok(Observed {
        spec: desired.spec.clone(),
        tags: merged_tags(desired, observed),
        ..observed.clone()
    })
}

/// `ModifySubnetAttribute MapPublicIpOnLaunch` when it differs.
async fn modify(cloud: &AwsCloud, id: &str, want: bool, have: bool) -> Result<(), CloudError> {
    if want == have {
        return Ok(());
    }
    let result = cloud
        .ec2
        .modify_subnet_attribute()
        .subnet_id(id)
        .map_public_ip_on_launch(bool_value(want))
        .send()
        .await;
    cloud
        .done("ec2", "ModifySubnetAttribute", result)
        .map(|_| ())
}

pub(crate) async fn delete(cloud: &AwsCloud, id: &str) -> Result<(), CloudError> {
    let result = cloud.ec2.delete_subnet().subnet_id(id).send().await;
    cloud.done("ec2", "DeleteSubnet", result).map(|_| ())
}

pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    Ok(describe(cloud, owner_filter(owner))
        .await?
        .iter()
        .map(|s| Owned {
            kind: Kind::Subnet,
            id: s.subnet_id().unwrap_or_default().to_string(),
            node: from_ec2_tags(s.tags()).remove(TAG_NODE).unwrap_or_default(),
        })
        .collect())
}
