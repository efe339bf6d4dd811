//! EC2 instances: `RunInstances` (client token, tags on instance and root volume, IMDSv2,
//! encrypted gp3 root volume with the given KMS key, public IP through the primary network
//! interface). Observe is one paginated `DescribeInstances` by the owner tag (plus one by
//! `instance-id` for recorded ids the tag search missed) and one batched `DescribeVolumes`
//! for the root volumes: `DescribeInstances` shows only the root volume's id, not its size
//! or encryption. pending -> Pending, running/stopped -> Available, shutting-down/stopping
//! -> Deleting, terminated -> absent. moto differences: it ignores `ClientToken` (a retried
//! create launches a second instance; AWS returns the first) and lists the groups of a
//! `NetworkInterfaces` launch only on the interface. Only the security groups
//! (`ModifyInstanceAttribute`) and the metadata options (`ModifyInstanceMetadataOptions`)
//! change in place; delete is `TerminateInstances`. The root device is `/dev/xvda` (the
//! Amazon Linux 2023 AMIs'); an AMI with another root device name would get a second volume.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, HttpTokensState, Instance,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceNetworkInterfaceSpecification, InstanceStateName, InstanceType, ResourceType, Volume,
    VolumeType,
};

use super::paginate;
use super::{
    AwsCloud, ensure_ec2_tags, from_ec2_tags, match_lookups, owner_filter, tag_specification,
};
use crate::cloud::{
    CloudError, Desired, InstanceSpec, Kind, KindSpec, Lookup, Observed, Owned, Owner, Spec, State,
    TAG_NODE,
};

const ROOT_DEVICE: &str = "/dev/xvda";

/// Instances matching `filters` that are not terminated, all pages.
async fn describe(cloud: &AwsCloud, filters: Vec<Filter>) -> Result<Vec<Instance>, CloudError> {
    let live = Filter::builder()
        .name("instance-state-name")
        .set_values(Some(
            ["pending", "running", "shutting-down", "stopping", "stopped"]
                .map(String::from)
                .to_vec(),
        ))
        .build();
    let mut filters = filters;
    filters.push(live);
    paginate(|token| {
        let call = cloud
            .ec2
            .describe_instances()
            .set_filters(Some(filters.clone()))
            .set_next_token(token);
        async move {
            let page = cloud.done("ec2", "DescribeInstances", call.send().await)?;
            let instances = page
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .cloned()
                .collect();
            Ok((instances, page.next_token().map(String::from)))
        }
    })
    .await
}

fn id_filter(ids: &[String]) -> Filter {
    Filter::builder()
        .name("instance-id")
        .set_values(Some(ids.to_vec()))
        .build()
}

fn root_volume_id(instance: &Instance) -> Option<String> {
    // The mapping we launched with (`/dev/xvda`), else the AMI's root device. moto reports
    // the AMI's `RootDeviceName` (`/dev/sda1`) while attaching our volume at `/dev/xvda`.
    let mappings = instance.block_device_mappings();
    let by_name = |name: &str| mappings.iter().find(|m| m.device_name() == Some(name));
    by_name(ROOT_DEVICE)
        .or_else(|| instance.root_device_name().and_then(by_name))
        .and_then(|m| m.ebs())
        .and_then(|e| e.volume_id())
        .map(String::from)
}

/// The root volumes of `instances`, by volume id: one call.
async fn volumes(
    cloud: &AwsCloud,
    instances: &[Instance],
) -> Result<BTreeMap<String, Volume>, CloudError> {
    let ids: Vec<String> = instances.iter().filter_map(root_volume_id).collect();
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let filter = Filter::builder()
        .name("volume-id")
        .set_values(Some(ids))
        .build();
    let all = paginate(|token| {
        let call = cloud
            .ec2
            .describe_volumes()
            .filters(filter.clone())
            .set_next_token(token);
        async move {
            let page = cloud.done("ec2", "DescribeVolumes", call.send().await)?;
            Ok((page.volumes().to_vec(), page.next_token().map(String::from)))
        }
    })
    .await?;
    for v in all {
        if let Some(id) = v.volume_id() {
            out.insert(id.to_string(), v.clone());
        }
    }
    Ok(out)
}

/// Root volume (size, encrypted, key) from `DescribeVolumes`, else from what was asked.
type RootVolume = (i32, bool, String);

fn asked(spec: Option<&InstanceSpec>) -> RootVolume {
    match spec {
        Some(spec) => (
            spec.root_volume_gib,
            spec.root_volume_encrypted,
            spec.root_volume_kms_key_arn.clone(),
        ),
        None => (0, false, String::new()),
    }
}

fn to_observed(instance: &Instance, root: RootVolume, asked_public_ip: Option<bool>) -> Observed {
    let state = match instance.state().and_then(|s| s.name()) {
        Some(InstanceStateName::Pending) => State::Pending,
        Some(
            InstanceStateName::ShuttingDown
            | InstanceStateName::Stopping
            | InstanceStateName::Terminated,
        ) => State::Deleting,
        _ => State::Available,
    };
    let public_ip = instance.public_ip_address().map(String::from);
    let has_public = public_ip.is_some()
        || instance
            .network_interfaces()
            .iter()
            .any(|n| n.association().and_then(|a| a.public_ip()).is_some());
    // A pending instance may not have its public IP yet: trust what was asked.
    let associate_public_ip = match (state, asked_public_ip) {
        (State::Pending, Some(asked)) if !has_public => asked,
        _ => has_public,
    };
    // The groups, from the primary network interface when the instance does not list them
    // (moto's RunInstances response with a `NetworkInterfaces` launch lists none).
    let mut security_group_ids: Vec<String> = instance
        .security_groups()
        .iter()
        .chain(
            instance
                .network_interfaces()
                .iter()
                .flat_map(|n| n.groups()),
        )
        .filter_map(|g| g.group_id().map(String::from))
        .collect();
    security_group_ids.sort();
    security_group_ids.dedup();
    let imds_v2_required = instance.metadata_options().and_then(|m| m.http_tokens())
        == Some(&HttpTokensState::Required);
    let mut attributes = BTreeMap::new();
    if let Some(ip) = public_ip {
        attributes.insert("publicIp".to_string(), ip);
    }
    if let Some(ip) = instance.private_ip_address() {
        attributes.insert("privateIp".to_string(), ip.to_string());
    }
    Observed {
        id: instance.instance_id().unwrap_or_default().to_string(),
        arn: None,
        state,
        spec: Spec::Instance(InstanceSpec {
            subnet_id: instance.subnet_id().unwrap_or_default().to_string(),
            security_group_ids,
            instance_type: instance
                .instance_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            image_id: instance.image_id().unwrap_or_default().to_string(),
            imds_v2_required,
            root_volume_gib: root.0,
            root_volume_encrypted: root.1,
            root_volume_kms_key_arn: root.2,
            associate_public_ip,
            key_name: instance.key_name().unwrap_or_default().to_string(),
        }),
        tags: from_ec2_tags(instance.tags()),
        attributes,
    }
}

fn root_of(volume: Option<&Volume>, fallback: RootVolume) -> RootVolume {
    match volume {
        // AWS (and moto) report the key as an ARN; an unencrypted volume has none.
        Some(v) => (
            v.size().unwrap_or(fallback.0),
            v.encrypted().unwrap_or(false),
            v.kms_key_id().unwrap_or_default().to_string(),
        ),
        // Not attached yet (pending) or not described: what RunInstances was asked.
        None => fallback,
    }
}

pub(crate) async fn observe(
    cloud: &AwsCloud,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>, CloudError> {
    let mut instances = describe(cloud, vec![owner_filter(owner)]).await?;
    let missing: Vec<String> = lookups
        .iter()
        .filter_map(|l| l.recorded_id.clone())
        .filter(|id| {
            !instances
                .iter()
                .any(|i| i.instance_id() == Some(id.as_str()))
        })
        .collect();
    if !missing.is_empty() {
        instances.extend(describe(cloud, vec![id_filter(&missing)]).await?);
    }
    let vols = volumes(cloud, &instances).await?;
    // What a lookup asked for, used where AWS does not (yet) report a value.
    let lookup_for = |i: &Instance| {
        let node = from_ec2_tags(i.tags()).remove(TAG_NODE);
        lookups
            .iter()
            .find(|l| l.recorded_id.as_deref() == i.instance_id())
            .or_else(|| {
                lookups
                    .iter()
                    .find(|l| node.as_deref() == Some(l.node.as_str()))
            })
            .and_then(|l| l.desired.as_ref())
            .and_then(InstanceSpec::of)
    };
    let found = instances
        .iter()
        .map(|i| {
            let desired = lookup_for(i);
            let root = root_of(root_volume_id(i).and_then(|v| vols.get(&v)), asked(desired));
            to_observed(i, root, desired.map(|d| d.associate_public_ip))
        })
        .collect();
    Ok(match_lookups(lookups, found))
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &InstanceSpec,
) -> Result<Observed, CloudError> {
    let InstanceSpec {
        subnet_id,
        security_group_ids,
        instance_type,
        image_id,
        imds_v2_required,
        root_volume_gib,
        root_volume_encrypted,
        root_volume_kms_key_arn,
        associate_public_ip,
        key_name,
    } = spec;
    let tokens = if *imds_v2_required {
        HttpTokensState::Required
    } else {
        HttpTokensState::Optional
    };
    let mut ebs = EbsBlockDevice::builder()
        .volume_size(*root_volume_gib)
        .volume_type(VolumeType::Gp3)
        .encrypted(*root_volume_encrypted)
        .delete_on_termination(true);
    if *root_volume_encrypted && !root_volume_kms_key_arn.is_empty() {
        ebs = ebs.kms_key_id(root_volume_kms_key_arn);
    }
    let mut call = cloud
        .ec2
        .run_instances()
        // May be `resolve:ssm:<parameter>`: EC2 resolves it at launch.
        .image_id(image_id)
        .instance_type(InstanceType::from(instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .client_token(&desired.client_token)
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(tokens)
                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                .build(),
        )
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(ROOT_DEVICE)
                .ebs(ebs.build())
                .build(),
        )
        .tag_specifications(tag_specification(ResourceType::Instance, &desired.tags))
        .tag_specifications(tag_specification(ResourceType::Volume, &desired.tags));
    if *associate_public_ip {
        // A public IP can only be asked for on the network interface, which then carries
        // the subnet and the groups.
        call = call.network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .subnet_id(subnet_id)
                .associate_public_ip_address(true)
                .delete_on_termination(true)
                .set_groups((!security_group_ids.is_empty()).then(|| security_group_ids.clone()))
                .build(),
        );
    } else {
        call = call.subnet_id(subnet_id).set_security_group_ids(
            (!security_group_ids.is_empty()).then(|| security_group_ids.clone()),
        );
    }
    if !key_name.is_empty() {
        call = call.key_name(key_name);
    }
    let output = cloud.done("ec2", "RunInstances", call.send().await)?;
    let instance = output
        .instances()
        .first()
        .ok_or_else(|| CloudError::Server {
            operation: "RunInstances".into(),
            message: "no instance in the response".into(),
        })?;
    // The root volume is being created: report what was asked.
    Ok(to_observed(
        instance,
        asked(Some(spec)),
        Some(*associate_public_ip),
    ))
}

/// Only the security groups and the metadata options change in place.
pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &InstanceSpec,
    have: &InstanceSpec,
) -> Result<Observed, CloudError> {
    desired
        .spec
        .check_immutable("ModifyInstanceAttribute", &observed.spec)?;
    let mut next = have.clone();
    let (mut a, mut b) = (
        want.security_group_ids.clone(),
        have.security_group_ids.clone(),
    );
    a.sort();
    b.sort();
    if a != b {
        let result = cloud
            .ec2
            .modify_instance_attribute()
            .instance_id(&observed.id)
            .set_groups(Some(want.security_group_ids.clone()))
            .send()
            .await;
        cloud.done("ec2", "ModifyInstanceAttribute", result)?;
        next.security_group_ids = a;
    }
    if want.imds_v2_required != have.imds_v2_required {
        let tokens = if want.imds_v2_required {
            HttpTokensState::Required
        } else {
            HttpTokensState::Optional
        };
        let result = cloud
            .ec2
            .modify_instance_metadata_options()
            .instance_id(&observed.id)
            .http_tokens(tokens)
            .send()
            .await;
        cloud.done("ec2", "ModifyInstanceMetadataOptions", result)?;
        next.imds_v2_required = want.imds_v2_required;
    }
    ensure_ec2_tags(cloud, &observed.id, &desired.tags, &observed.tags).await?;
    let mut tags = observed.tags.clone();
    tags.extend(desired.tags.clone());
    Ok(Observed {
        spec: next.into(),
        tags,
        ..observed.clone()
    })
}

pub(crate) async fn delete(cloud: &AwsCloud, id: &str) -> Result<(), CloudError> {
    let result = cloud
        .ec2
        .terminate_instances()
        .instance_ids(id)
        .send()
        .await;
    cloud.done("ec2", "TerminateInstances", result).map(|_| ())
}

pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    Ok(describe(cloud, vec![owner_filter(owner)])
        .await?
        .iter()
        .map(|i| Owned {
            kind: Kind::Instance,
            id: i.instance_id().unwrap_or_default().to_string(),
            node: from_ec2_tags(i.tags()).remove(TAG_NODE).unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::route_table::tests::{by_id, by_tag, cloud, desired, network, owner};
    use crate::cloud::{InstanceSpec, Kind, Provider, Spec, State};

    #[tokio::test]
    async fn instance_against_moto() {
        let cloud = cloud().await;
        let owner = owner("vm");
        let (vpc, subnet, ..) = network(&cloud).await;
        let mut groups = Vec::new();
        for name in ["a", "b"] {
            let g = cloud
                .ec2
                .create_security_group()
                .group_name(name)
                .description(name)
                .vpc_id(&vpc)
                .send()
                .await
                .unwrap();
            groups.push(g.group_id().unwrap().to_string());
        }
        let key = cloud.kms.create_key().send().await.unwrap();
        let key_arn = key.key_metadata().unwrap().arn().unwrap().to_string();
        let images = cloud.ec2.describe_images().send().await.unwrap();
        let image = images.images()[0].image_id().unwrap().to_string();
        let spec = Spec::Instance(InstanceSpec {
            subnet_id: subnet.clone(),
            security_group_ids: vec![groups[0].clone()],
            instance_type: "t3.micro".into(),
            image_id: image.clone(),
            imds_v2_required: true,
            root_volume_gib: 20,
            root_volume_encrypted: true,
            root_volume_kms_key_arn: key_arn.clone(),
            associate_public_ip: true,
            key_name: String::new(),
        });
        let d = desired(&owner, "vm", spec.clone());
        let created = cloud.create(&d).await.unwrap();
        assert_eq!(created.spec, spec);
        assert!(
            created.attributes.contains_key("publicIp"),
            "{:?}",
            created.attributes
        );
        let again = cloud.create(&d).await.unwrap();
        if again.id != created.id {
            // moto ignores RunInstances' ClientToken (AWS returns the first instance).
            eprintln!("moto: ClientToken ignored by RunInstances");
            cloud.delete(Kind::Instance, &again.id).await.unwrap();
        }
        let seen = by_id(&cloud, &owner, Kind::Instance, &created.id)
            .await
            .unwrap();
        assert_eq!(seen.spec, spec);
        assert_eq!(seen.tags, d.tags);
        assert!(matches!(seen.state, State::Pending | State::Available));
        assert_eq!(
            by_tag(&cloud, &owner, Kind::Instance, "vm")
                .await
                .unwrap()
                .id,
            created.id
        );
        assert!(
            cloud
                .owned(&owner)
                .await
                .unwrap()
                .iter()
                .any(|o| o.kind == Kind::Instance && o.id == created.id)
        );

        let mut want = spec.clone();
        if let Spec::Instance(InstanceSpec {
            security_group_ids,
            imds_v2_required,
            image_id,
            ..
        }) = &mut want
        {
            *security_group_ids = groups.clone();
            *imds_v2_required = false;
            *image_id =
                "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
                    .into();
        }
        cloud
            .update(&desired(&owner, "vm", want), &seen)
            .await
            .unwrap();
        let now = by_id(&cloud, &owner, Kind::Instance, &created.id)
            .await
            .unwrap();
        let Spec::Instance(InstanceSpec {
            security_group_ids,
            imds_v2_required,
            ..
        }) = &now.spec
        else {
            panic!()
        };
        // Group order is AWS's, not ours: compare as sets (as the engine's drift does).
        let (mut have, mut want) = (security_group_ids.clone(), groups.clone());
        have.sort();
        want.sort();
        assert_eq!((have, *imds_v2_required), (want, false));
        let mut bigger = spec.clone();
        if let Spec::Instance(InstanceSpec {
            root_volume_gib, ..
        }) = &mut bigger
        {
            *root_volume_gib = 30;
        }
        let err = cloud
            .update(&desired(&owner, "vm", bigger), &now)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("rootVolumeGib"), "{err}");

        cloud.delete(Kind::Instance, &created.id).await.unwrap();
        match by_id(&cloud, &owner, Kind::Instance, &created.id).await {
            None => {}
            Some(o) => assert_eq!(o.state, State::Deleting),
        }
    }
}
