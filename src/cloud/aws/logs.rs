//! CloudWatch Logs log groups: the id is the name. `CreateLogGroup` takes the tags and the
//! KMS key (ARN); retention is a separate `PutRetentionPolicy` (0 = never expire:
//! `DeleteRetentionPolicy`). Observe is one paginated `DescribeLogGroups` by name prefix —
//! the longest prefix common to the recorded/desired names, else the owner's
//! `/hipaa-operator/<namespace>/<name>/` — then one `ListTagsForResource` per group that is
//! not known by name (DescribeLogGroups returns no tags and has no tag filter). moto has no
//! `DisassociateKmsKey` (HTTP 500), so removing a group's key is untested there.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_cloudwatchlogs::types::LogGroup;

use super::paginate;
use super::{AwsCloud, match_lookups, missing_tags};
use crate::cloud::{
    CloudError, Desired, Kind, KindSpec, LogGroupSpec, Lookup, Observed, Owned, Owner, STREAMS_ARN,
    State, TAG_NODE, TAG_OWNER,
};

/// Where the blueprint puts the owner's log groups.
fn owner_prefix(owner: &Owner) -> String {
    format!("/hipaa-operator/{}/{}/", owner.namespace, owner.name)
}

async fn describe(cloud: &AwsCloud, prefix: &str) -> Result<Vec<LogGroup>, CloudError> {
    paginate(|token| {
        let call = cloud.logs.describe_log_groups().set_next_token(token);
        let call = if prefix.is_empty() {
            call
        } else {
            call.log_group_name_prefix(prefix)
        };
        async move {
            let page = cloud.done("logs", "DescribeLogGroups", call.send().await)?;
            Ok((
                page.log_groups().to_vec(),
                page.next_token().map(String::from),
            ))
        }
    })
    .await
}

fn arn_of(group: &LogGroup) -> String {
    group
        .log_group_arn()
        .or(group.arn())
        .map(|a| a.strip_suffix(":*").unwrap_or(a).to_string())
        .unwrap_or_default()
}

async fn tags_of(cloud: &AwsCloud, arn: &str) -> Result<BTreeMap<String, String>, CloudError> {
    let result = cloud
        .logs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await;
    let output = cloud.done("logs", "ListTagsForResource", result)?;
    Ok(output
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default())
}

fn to_observed(group: &LogGroup, tags: BTreeMap<String, String>) -> Observed {
    let name = group.log_group_name().unwrap_or_default().to_string();
    let arn = arn_of(group);
    Observed {
        id: name.clone(),
        attributes: BTreeMap::from([(STREAMS_ARN.to_string(), format!("{arn}:log-stream:*"))]),
        arn: Some(arn),
        state: State::Available,
        spec: LogGroupSpec {
            name,
            retention_days: group.retention_in_days().unwrap_or(0),
            kms_key_arn: group.kms_key_id().unwrap_or_default().to_string(),
        }
        .into(),
        tags,
    }
}

fn common_prefix(names: &[String]) -> String {
    let Some(first) = names.first() else {
        return String::new();
    };
    let mut len = first.len();
    for name in &names[1..] {
        len = len.min(
            first
                .bytes()
                .zip(name.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    first[..len].to_string()
}

pub(crate) async fn observe(
    cloud: &AwsCloud,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>, CloudError> {
    let mut known: Vec<String> = lookups
        .iter()
        .flat_map(|l| {
            let desired = l
                .desired
                .as_ref()
                .and_then(LogGroupSpec::of)
                .map(|group| group.name.clone());
            l.recorded_id.clone().into_iter().chain(desired)
        })
        .collect();
    known.push(owner_prefix(owner));
    let groups = describe(cloud, &common_prefix(&known)).await?;
    let owner_tag = owner.to_string();
    let mut found = Vec::new();
    for group in &groups {
        let name = group.log_group_name().unwrap_or_default();
        let recorded = lookups
            .iter()
            .any(|l| l.recorded_id.as_deref() == Some(name));
        if !recorded && !known.iter().any(|k| k == name) && !name.starts_with(&owner_prefix(owner))
        {
            continue;
        }
        let tags = tags_of(cloud, &arn_of(group)).await?;
        // By recorded id regardless of tags; else only when tagged with the owner.
        if recorded || tags.get(TAG_OWNER) == Some(&owner_tag) {
            found.push(to_observed(group, tags));
        }
    }
    Ok(match_lookups(lookups, found))
}

async fn read(cloud: &AwsCloud, name: &str) -> Result<Observed, CloudError> {
    let group = describe(cloud, name)
        .await?
        .into_iter()
        .find(|g| g.log_group_name() == Some(name))
        .ok_or_else(|| CloudError::NotFound {
            operation: "DescribeLogGroups".into(),
            message: format!("ResourceNotFoundException: log group {name} does not exist"),
        })?;
    let tags = tags_of(cloud, &arn_of(&group)).await?;
    Ok(to_observed(&group, tags))
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &LogGroupSpec,
) -> Result<Observed, CloudError> {
    let tags: HashMap<String, String> = desired.tags.clone().into_iter().collect();
    let call = cloud
        .logs
        .create_log_group()
        .log_group_name(&spec.name)
        .set_tags(Some(tags));
    let call = if spec.kms_key_arn.is_empty() {
        call
    } else {
        call.kms_key_id(&spec.kms_key_arn)
    };
    cloud.done("logs", "CreateLogGroup", call.send().await)?;
    let created = LogGroupSpec {
        retention_days: 0,
        ..spec.clone()
    };
    reconcile(cloud, &spec.name, spec, &created).await?;
    read(cloud, &spec.name).await
}

pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &LogGroupSpec,
    have: &LogGroupSpec,
) -> Result<Observed, CloudError> {
    desired
        .spec
        .check_immutable("CreateLogGroup", &observed.spec)?;
    reconcile(cloud, &observed.id, want, have).await?;
    let missing = missing_tags(&desired.tags, &observed.tags);
    if !missing.is_empty() {
        let arn = observed.arn.clone().unwrap_or_default();
        let result = cloud
            .logs
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(missing.into_iter().collect()))
            .send()
            .await;
        cloud.done("logs", "TagResource", result)?;
    }
    read(cloud, &observed.id).await
}

async fn reconcile(
    cloud: &AwsCloud,
    name: &str,
    want: &LogGroupSpec,
    have: &LogGroupSpec,
) -> Result<(), CloudError> {
    if want.retention_days != have.retention_days {
        if want.retention_days == 0 {
            let result = cloud
                .logs
                .delete_retention_policy()
                .log_group_name(name)
                .send()
                .await;
            cloud.done("logs", "DeleteRetentionPolicy", result)?;
        } else {
            let result = cloud
                .logs
                .put_retention_policy()
                .log_group_name(name)
                .retention_in_days(want.retention_days)
                .send()
                .await;
            cloud.done("logs", "PutRetentionPolicy", result)?;
        }
    }
    if want.kms_key_arn != have.kms_key_arn {
        if want.kms_key_arn.is_empty() {
            let result = cloud
                .logs
                .disassociate_kms_key()
                .log_group_name(name)
                .send()
                .await;
            cloud.done("logs", "DisassociateKmsKey", result)?;
        } else {
            let result = cloud
                .logs
                .associate_kms_key()
                .log_group_name(name)
                .kms_key_id(&want.kms_key_arn)
                .send()
                .await;
            cloud.done("logs", "AssociateKmsKey", result)?;
        }
    }
    Ok(())
}

pub(crate) async fn delete(cloud: &AwsCloud, name: &str) -> Result<(), CloudError> {
    let result = cloud
        .logs
        .delete_log_group()
        .log_group_name(name)
        .send()
        .await;
    cloud.done("logs", "DeleteLogGroup", result).map(|_| ())
}

/// The owner's log groups under `/hipaa-operator/<namespace>/<name>/` (where the blueprint
/// names them) that carry the owner tag: one `DescribeLogGroups` + one
/// `ListTagsForResource` per group.
pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    let owner_tag = owner.to_string();
    let mut out = Vec::new();
    for group in describe(cloud, &owner_prefix(owner)).await? {
        let tags = tags_of(cloud, &arn_of(&group)).await?;
        if tags.get(TAG_OWNER) == Some(&owner_tag) {
            out.push(Owned {
                kind: Kind::LogGroup,
                id: group.log_group_name().unwrap_or_default().to_string(),
                node: tags.get(TAG_NODE).cloned().unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::route_table::tests::{by_id, by_tag, cloud, desired, owner};
    use crate::cloud::{Kind, LogGroupSpec, Lookup, Provider, Spec};

    #[tokio::test]
    async fn log_group_against_moto() {
        let cloud = cloud().await;
        let owner = owner("logs");
        let key = cloud.kms.create_key().send().await.unwrap();
        let key_arn = key.key_metadata().unwrap().arn().unwrap().to_string();
        let name = format!("{}vpc-flow-logs", super::owner_prefix(&owner));
        let spec = Spec::LogGroup(LogGroupSpec {
            name: name.clone(),
            retention_days: 365,
            kms_key_arn: key_arn.clone(),
        });
        let d = desired(&owner, "logs", spec.clone());
        let created = cloud.create(&d).await.unwrap();
        assert_eq!(created.id, name);
        assert_eq!(created.spec, spec);
        assert_eq!(created.tags, d.tags);
        assert_eq!(
            created.arn.as_deref(),
            Some(format!("arn:aws:logs:us-east-1:123456789012:log-group:{name}").as_str())
        );
        assert_eq!(
            by_id(&cloud, &owner, Kind::LogGroup, &name)
                .await
                .unwrap()
                .spec,
            spec
        );
        let seen = by_tag(&cloud, &owner, Kind::LogGroup, "logs")
            .await
            .unwrap();
        assert_eq!(seen.id, name);
        let with_desired = Lookup {
            node: "logs".into(),
            recorded_id: None,
            desired: Some(spec.clone()),
        };
        assert!(
            cloud
                .observe(Kind::LogGroup, &owner, &[with_desired])
                .await
                .unwrap()[0]
                .is_some()
        );
        assert!(
            cloud
                .owned(&owner)
                .await
                .unwrap()
                .iter()
                .any(|o| o.kind == Kind::LogGroup && o.id == name)
        );

        let want = Spec::LogGroup(LogGroupSpec {
            name: name.clone(),
            retention_days: 30,
            kms_key_arn: String::new(),
        });
        let updated = cloud
            .update(&desired(&owner, "logs", want.clone()), &seen)
            .await;
        // moto has no DisassociateKmsKey: change the retention only there.
        let want = match updated {
            Ok(updated) => {
                assert_eq!(updated.spec, want);
                want
            }
            Err(e) => {
                eprintln!("moto: {e}");
                let want = Spec::LogGroup(LogGroupSpec {
                    name: name.clone(),
                    retention_days: 30,
                    kms_key_arn: key_arn.clone(),
                });
                assert_eq!(
                    cloud
                        .update(&desired(&owner, "logs", want.clone()), &seen)
                        .await
                        .unwrap()
                        .spec,
                    want
                );
                want
            }
        };
        assert_eq!(
            by_id(&cloud, &owner, Kind::LogGroup, &name)
                .await
                .unwrap()
                .spec,
            want
        );
        cloud.delete(Kind::LogGroup, &name).await.unwrap();
        cloud
            .delete(Kind::LogGroup, &name)
            .await
            .expect("missing: success");
        assert!(by_id(&cloud, &owner, Kind::LogGroup, &name).await.is_none());
    }
}
