//! Internet gateways: `CreateInternetGateway` (tags at creation), then
//! `AttachInternetGateway` to the desired VPC. The observed `vpc_id` is the attached VPC
//! ("" when detached). Delete detaches from every attached VPC first (a detach fails with
//! `DependencyViolation` while the VPC has mapped public addresses: retried later).

use aws_sdk_ec2::types::{AttachmentStatus, Filter, InternetGateway, ResourceType};

use super::paginate;
use super::vpc::{id_filter, merged_tags, unseen};
use super::{
    AwsCloud, ensure_ec2_tags, from_ec2_tags, match_lookups, owner_filter, tag_specification,
};
use crate::cloud::{
    CloudError, Desired, InternetGatewaySpec, Kind, Lookup, Observed, Owned, Owner, State, TAG_NODE,
};

async fn describe(cloud: &AwsCloud, filter: Filter) -> Result<Vec<InternetGateway>, CloudError> {
    paginate(|token| {
        let call = cloud
            .ec2
            .describe_internet_gateways()
            .filters(filter.clone())
            .set_next_token(token);
        async move {
            let page = cloud.done("ec2", "DescribeInternetGateways", call.send().await)?;
            Ok((
                page.internet_gateways().to_vec(),
                page.next_token().map(String::from),
            ))
        }
    })
    .await
}

/// The VPCs the gateway is attached to (or being attached to). AWS reports an attached
/// internet gateway's attachment as `available`.
fn attached(igw: &InternetGateway) -> Vec<String> {
    igw.attachments()
        .iter()
        .filter(|a| !matches!(a.state(), Some(AttachmentStatus::Detached)))
        .filter_map(|a| a.vpc_id().map(String::from))
        .collect()
}

fn observed(igw: &InternetGateway) -> Observed {
    Observed {
        id: igw.internet_gateway_id().unwrap_or_default().to_string(),
        arn: None,
        state: State::Available,
        spec: InternetGatewaySpec {
            vpc_id: attached(igw).into_iter().next().unwrap_or_default(),
        }
        .into(),
        tags: from_ec2_tags(igw.tags()),
        attributes: Default::default(),
    }
}

pub(crate) async fn observe(
    cloud: &AwsCloud,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>, CloudError> {
    let mut gateways = describe(cloud, owner_filter(owner)).await?;
    let missing = unseen(
        lookups,
        gateways.iter().filter_map(|g| g.internet_gateway_id()),
    );
    if !missing.is_empty() {
        gateways.extend(describe(cloud, id_filter("internet-gateway-id", &missing)).await?);
    }
    Ok(match_lookups(
        lookups,
        gateways.iter().map(observed).collect(),
    ))
}

async fn attach(cloud: &AwsCloud, id: &str, vpc: &str) -> Result<(), CloudError> {
    let result = cloud
        .ec2
        .attach_internet_gateway()
        .internet_gateway_id(id)
        .vpc_id(vpc)
        .send()
        .await;
    cloud
        .done("ec2", "AttachInternetGateway", result)
        .map(|_| ())
}

async fn detach(cloud: &AwsCloud, id: &str, vpc: &str) -> Result<(), CloudError> {
    let result = cloud
        .ec2
        .detach_internet_gateway()
        .internet_gateway_id(id)
        .vpc_id(vpc)
        .send()
        .await;
    cloud
        .done("ec2", "DetachInternetGateway", result)
        .map(|_| ())
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &InternetGatewaySpec,
) -> Result<Observed, CloudError> {
    let result = cloud
        .ec2
        .create_internet_gateway()
        .tag_specifications(tag_specification(
            ResourceType::InternetGateway,
            &desired.tags,
        ))
        .send()
        .await;
    let output = cloud.done("ec2", "CreateInternetGateway", result)?;
    let igw = output
        .internet_gateway()
        .ok_or_else(|| CloudError::Server {
            operation: "CreateInternetGateway".into(),
            message: "no internet gateway in the response".into(),
        })?;
    let mut created = observed(igw);
    if created.tags.is_empty() {
        created.tags = desired.tags.clone();
    }
    if !spec.vpc_id.is_empty()
        && let Err(error) = attach(cloud, &created.id, &spec.vpc_id).await
    {
        // The gateway exists (detached): a retried create would make a second one.
        return Ok(crate::cloud::settings_pending(created, &error));
    }
    created.spec = desired.spec.clone();
    Ok(created)
}

/// Moves the attachment when the VPC differs (detach, then attach).
pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &InternetGatewaySpec,
    have: &InternetGatewaySpec,
) -> Result<Observed, CloudError> {
    if want.vpc_id != have.vpc_id {
        if !have.vpc_id.is_empty() {
            detach(cloud, &observed.id, &have.vpc_id).await?;
        }
        if !want.vpc_id.is_empty() {
            attach(cloud, &observed.id, &want.vpc_id).await?;
        }
    }
    ensure_ec2_tags(cloud, &observed.id, &desired.tags, &observed.tags).await?;
    Ok(Observed {
        spec: desired.spec.clone(),
        tags: merged_tags(desired, observed),
        ..observed.clone()
    })
}

pub(crate) async fn delete(cloud: &AwsCloud, id: &str) -> Result<(), CloudError> {
    let gateways = describe(cloud, id_filter("internet-gateway-id", &[id.to_string()])).await?;
    let Some(igw) = gateways.first() else {
        return Ok(());
    };
    for vpc in attached(igw) {
        detach(cloud, id, &vpc).await?;
    }
    let result = cloud
        .ec2
        .delete_internet_gateway()
        .internet_gateway_id(id)
        .send()
        .await;
    cloud
        .done("ec2", "DeleteInternetGateway", result)
        .map(|_| ())
}

pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    Ok(describe(cloud, owner_filter(owner))
        .await?
        .iter()
        .map(|g| Owned {
            kind: Kind::InternetGateway,
            id: g.internet_gateway_id().unwrap_or_default().to_string(),
            node: from_ec2_tags(g.tags()).remove(TAG_NODE).unwrap_or_default(),
        })
        .collect())
}
