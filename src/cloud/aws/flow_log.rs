//! VPC flow logs to CloudWatch Logs: `CreateFlowLogs` (client token, tags). AWS cannot
//! modify a flow log, so every spec change is refused; delete is `DeleteFlowLogs`. Observe
//! is one paginated `DescribeFlowLogs` by the owner tag (plus one by `flow-log-id` for
//! recorded ids the tag search missed).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    Filter, FlowLog, FlowLogsResourceType, LogDestinationType, ResourceType, TrafficType,
};

use super::paginate;
use super::{
    AwsCloud, ensure_ec2_tags, from_ec2_tags, match_lookups, owner_filter, tag_specification,
};
use crate::cloud::{
    CloudError, Desired, FlowLogSpec, Kind, Lookup, Observed, Owned, Owner, Spec, State, TAG_NODE,
};

async fn describe(cloud: &AwsCloud, filter: Filter) -> Result<Vec<FlowLog>, CloudError> {
    paginate(|token| {
        let call = cloud
            .ec2
            .describe_flow_logs()
            .filter(filter.clone())
            .set_next_token(token);
        async move {
            let page = cloud.done("ec2", "DescribeFlowLogs", call.send().await)?;
            Ok((
                page.flow_logs().to_vec(),
                page.next_token().map(String::from),
            ))
        }
    })
    .await
}

fn id_filter(ids: &[String]) -> Filter {
    Filter::builder()
        .name("flow-log-id")
        .set_values(Some(ids.to_vec()))
        .build()
}

fn to_observed(log: &FlowLog) -> Observed {
    Observed {
        id: log.flow_log_id().unwrap_or_default().to_string(),
        arn: None,
        state: State::Available,
        spec: Spec::FlowLog(FlowLogSpec {
            vpc_id: log.resource_id().unwrap_or_default().to_string(),
            log_group_name: log.log_group_name().unwrap_or_default().to_string(),
            role_arn: log
                .deliver_logs_permission_arn()
                .unwrap_or_default()
                .to_string(),
            traffic_type: log
                .traffic_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
        }),
        tags: from_ec2_tags(log.tags()),
        attributes: BTreeMap::new(),
    }
}

pub(crate) async fn observe(
    cloud: &AwsCloud,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>, CloudError> {
    let mut logs = describe(cloud, owner_filter(owner)).await?;
    let missing: Vec<String> = lookups
        .iter()
        .filter_map(|l| l.recorded_id.clone())
        .filter(|id| !logs.iter().any(|f| f.flow_log_id() == Some(id.as_str())))
        .collect();
    if !missing.is_empty() {
        logs.extend(describe(cloud, id_filter(&missing)).await?);
    }
    Ok(match_lookups(
        lookups,
        logs.iter().map(to_observed).collect(),
    ))
}

async fn read(cloud: &AwsCloud, id: &str) -> Result<Observed, CloudError> {
    describe(cloud, id_filter(&[id.to_string()]))
        .await?
        .first()
        .map(to_observed)
        .ok_or_else(|| CloudError::NotFound {
            operation: "DescribeFlowLogs".into(),
            message: format!("InvalidFlowLogId.NotFound: flow log {id} does not exist"),
        })
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &FlowLogSpec,
) -> Result<Observed, CloudError> {
    let FlowLogSpec {
        vpc_id,
        log_group_name,
        role_arn,
        traffic_type,
    } = spec;
    let result = cloud
        .ec2
        .create_flow_logs()
        .resource_ids(vpc_id)
        .resource_type(FlowLogsResourceType::Vpc)
        .traffic_type(TrafficType::from(traffic_type.as_str()))
        .log_destination_type(LogDestinationType::CloudWatchLogs)
        .log_group_name(log_group_name)
        .deliver_logs_permission_arn(role_arn)
        .client_token(&desired.client_token)
        .tag_specifications(tag_specification(ResourceType::VpcFlowLog, &desired.tags))
        .send()
        .await;
    let output = cloud.done("ec2", "CreateFlowLogs", result)?;
    // Per-resource failures come back as `Unsuccessful`, not as an error.
    if let Some(failed) = output.unsuccessful().first() {
        let error = failed.error();
        let code = error
            .and_then(|e| e.code())
            .unwrap_or("Unknown")
            .to_string();
        let message = error
            .and_then(|e| e.message())
            .unwrap_or_default()
            .to_string();
        return Err(if code.ends_with("NotFound") {
            CloudError::NotFound {
                operation: "CreateFlowLogs".into(),
                message: format!("{code}: {message}"),
            }
        } else {
            CloudError::Terminal {
                operation: "CreateFlowLogs".into(),
                code,
                message,
            }
        });
    }
    let id = output
        .flow_log_ids()
        .first()
        .cloned()
        .ok_or_else(|| CloudError::Server {
            operation: "CreateFlowLogs".into(),
            message: "no flow log id in the response".into(),
        })?;
    read(cloud, &id).await
}

/// Every field is immutable (`KindInfo::immutable`): only tags change.
pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
) -> Result<Observed, CloudError> {
    desired
        .spec
        .check_immutable("CreateFlowLogs", &observed.spec)?;
    ensure_ec2_tags(cloud, &observed.id, &desired.tags, &observed.tags).await?;
    read(cloud, &observed.id).await
}

pub(crate) async fn delete(cloud: &AwsCloud, id: &str) -> Result<(), CloudError> {
    let result = cloud.ec2.delete_flow_logs().flow_log_ids(id).send().await;
    let output = cloud.done("ec2", "DeleteFlowLogs", result)?;
    // Per-id failures (e.g. `InvalidFlowLogId.NotFound`) come back as `Unsuccessful`.
    match output.unsuccessful().first().and_then(|u| u.error()) {
        None => Ok(()),
        Some(e) if e.code().is_some_and(|c| c.ends_with("NotFound")) => Ok(()),
        Some(e) => Err(CloudError::Terminal {
            operation: "DeleteFlowLogs".into(),
            code: e.code().unwrap_or("Unknown").to_string(),
            message: e.message().unwrap_or_default().to_string(),
        }),
    }
}

pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    Ok(describe(cloud, owner_filter(owner))
        .await?
        .iter()
        .map(|f| Owned {
            kind: Kind::FlowLog,
            id: f.flow_log_id().unwrap_or_default().to_string(),
            node: from_ec2_tags(f.tags()).remove(TAG_NODE).unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::route_table::tests::{by_id, by_tag, cloud, desired, network, owner};
    use crate::cloud::{FlowLogSpec, Kind, Provider, Spec};

    #[tokio::test]
    async fn flow_log_against_moto() {
        let cloud = cloud().await;
        let owner = owner("fl");
        let (vpc, ..) = network(&cloud).await;
        let group = format!("/hipaa-operator/{owner}/vpc-flow-logs");
        cloud
            .logs
            .create_log_group()
            .log_group_name(&group)
            .send()
            .await
            .unwrap();
        let spec = Spec::FlowLog(FlowLogSpec {
            vpc_id: vpc.clone(),
            log_group_name: group.clone(),
            role_arn: "arn:aws:iam::123456789012:role/flow-logs".into(),
            traffic_type: "ALL".into(),
        });
        let d = desired(&owner, "fl", spec.clone());
        let created = cloud.create(&d).await.unwrap();
        assert_eq!(created.spec, spec);
        assert_eq!(created.tags, d.tags);
        assert_eq!(
            by_id(&cloud, &owner, Kind::FlowLog, &created.id)
                .await
                .unwrap()
                .spec,
            spec
        );
        let seen = by_tag(&cloud, &owner, Kind::FlowLog, "fl").await.unwrap();
        assert_eq!(seen.id, created.id);
        assert!(
            cloud
                .owned(&owner)
                .await
                .unwrap()
                .iter()
                .any(|o| o.id == created.id)
        );
        let mut other = spec.clone();
        if let Spec::FlowLog(FlowLogSpec { traffic_type, .. }) = &mut other {
            *traffic_type = "REJECT".into();
        }
        let err = cloud
            .update(&desired(&owner, "fl", other), &seen)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("trafficType"), "{err}");
        cloud.update(&d, &seen).await.expect("no change: fine");
        cloud.delete(Kind::FlowLog, &created.id).await.unwrap();
        cloud
            .delete(Kind::FlowLog, &created.id)
            .await
            .expect("missing: success");
        assert!(
            by_id(&cloud, &owner, Kind::FlowLog, &created.id)
                .await
                .is_none()
        );
    }
}
