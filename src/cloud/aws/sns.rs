//! SNS topics (standard). The id is the topic ARN. `CreateTopic` takes the name, the
//! display name and KMS key as attributes, and the tags; AWS returns the existing topic
//! for a name that is taken when the request matches it. The access policy is written
//! after it with `SetTopicAttributes`, from the topic's ARN (see [`account_only_policy`]);
//! with `account_only_policy` false the backend writes AWS's default topic policy
//! instead (any principal, `AWS:SourceOwner` the owner account). Every other change is
//! one `SetTopicAttributes` per attribute that differs.
//!
//! SNS has no tag filter and no describe-by-name: a recorded ARN is read with
//! `GetTopicAttributes` + `ListTagsForResource`; a desired name is looked up in a
//! paginated `ListTopics` (once per observe), ours only when tagged with the owner; lookups
//! with neither scan the topics named `hipaa-…` (the blueprint's prefix) with one
//! `ListTagsForResource` each (cost: 1 + N calls). `DeleteTopic` is idempotent on AWS
//! (a missing topic is no error) and removes the topic's subscriptions.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_sns::types::Tag;
use serde_json::{Value, json};

use super::{AwsCloud, match_lookups, missing_tags, paginate};
use crate::cloud::{
    CloudError, Desired, Kind, KindSpec, Lookup, Observed, Owned, Owner, SnsTopicSpec, State,
    TAG_NODE, TAG_OWNER,
};

/// Where the blueprint's names start (`blueprint::resource_name`): topics scanned for tags.
const NAME_PREFIX: &str = "hipaa-";

/// What the topic policies allow: the actions of AWS's default topic policy.
const TOPIC_ACTIONS: [&str; 8] = [
    "SNS:GetTopicAttributes",
    "SNS:SetTopicAttributes",
    "SNS:AddPermission",
    "SNS:RemovePermission",
    "SNS:DeleteTopic",
    "SNS:Subscribe",
    "SNS:ListSubscriptionsByTopic",
    "SNS:Publish",
];

/// The account that owns a resource, from its ARN (`arn:aws:sns:<region>:<account>:…`).
pub(crate) fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// The topic name, the ARN's last part.
fn name_of(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or_default()
}

/// The policy that admits only the owner account: its root as the principal and
/// `AWS:SourceOwner` the same account, on this topic, with the default policy's actions.
pub(crate) fn account_only_policy(arn: &str) -> String {
    let account = account_of(arn);
    json!({
        "Version": "2008-10-17",
        "Id": "hipaa-operator-account-only",
        "Statement": [{
            "Sid": "OwnerAccountOnly",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
            "Action": TOPIC_ACTIONS,
            "Resource": arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": account}},
        }]
    })
    .to_string()
}

/// AWS's default topic policy: any principal, as long as the source owner is the account.
fn default_policy(arn: &str) -> String {
    let account = account_of(arn);
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": TOPIC_ACTIONS,
            "Resource": arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": account}},
        }]
    })
    .to_string()
}

/// A string or a list of strings, as IAM grammar allows either.
pub(crate) fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => vec![],
    }
}

/// The statements of a policy document (one object or a list).
pub(crate) fn statements(doc: &Value) -> Vec<&Value> {
    match &doc["Statement"] {
        Value::Array(items) => items.iter().collect(),
        Value::Null => vec![],
        one => vec![one],
    }
}

/// Whether `document` is [`account_only_policy`] for the topic, compared as a policy (key
/// order, a one-item list for a string, the principal as the account id or its root ARN
/// and the actions' case do not count).
pub(crate) fn is_account_only(document: &str, arn: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(document) else {
        return false;
    };
    let account = account_of(arn);
    let [statement] = statements(&doc)[..] else {
        return false;
    };
    let principals = strings(&statement["Principal"]["AWS"]);
    let root = format!("arn:aws:iam::{account}:root");
    let mut actions: Vec<String> = strings(&statement["Action"])
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    actions.sort();
    let mut wanted: Vec<String> = TOPIC_ACTIONS
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    wanted.sort();
    let condition = &statement["Condition"];
    statement["Effect"] == "Allow"
        && statement.get("NotPrincipal").is_none()
        && statement["Principal"]
            .as_object()
            .is_some_and(|p| p.len() == 1)
        && !principals.is_empty()
        && principals.iter().all(|p| *p == root || p == account)
        && actions == wanted
        && strings(&statement["Resource"]) == [arn]
        && condition.as_object().is_some_and(|c| c.len() == 1)
        && condition["StringEquals"]
            .as_object()
            .is_some_and(|c| c.len() == 1)
        && strings(&condition["StringEquals"]["AWS:SourceOwner"]) == [account]
}

fn sns_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, CloudError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| CloudError::Terminal {
                    operation: "TagResource".into(),
                    code: "ConstructionFailure".into(),
                    message: e.to_string(),
                })
        })
        .collect()
}

async fn tags_of(cloud: &AwsCloud, arn: &str) -> Result<BTreeMap<String, String>, CloudError> {
    let result = cloud
        .sns
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await;
    let output = cloud.done("sns", "ListTagsForResource", result)?;
    Ok(output
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect())
}

/// Every topic ARN in the region: a paginated `ListTopics`.
async fn list(cloud: &AwsCloud) -> Result<Vec<String>, CloudError> {
    paginate(|token| {
        let call = cloud.sns.list_topics().set_next_token(token);
        async move {
            let page = cloud.done("sns", "ListTopics", call.send().await)?;
            Ok((
                page.topics()
                    .iter()
                    .filter_map(|t| t.topic_arn().map(String::from))
                    .collect(),
                page.next_token().map(String::from),
            ))
        }
    })
    .await
}

/// A topic as the engine sees it: `GetTopicAttributes` (+ its tags when not given).
async fn read(
    cloud: &AwsCloud,
    arn: &str,
    tags: Option<BTreeMap<String, String>>,
) -> Result<Observed, CloudError> {
    let result = cloud.sns.get_topic_attributes().topic_arn(arn).send().await;
    let output = cloud.done("sns", "GetTopicAttributes", result)?;
    let empty = HashMap::new();
    let attributes = output.attributes().unwrap_or(&empty);
    let attribute = |name: &str| attributes.get(name).cloned().unwrap_or_default();
    let tags = match tags {
        Some(tags) => tags,
        None => tags_of(cloud, arn).await?,
    };
    Ok(Observed {
        id: arn.to_string(),
        arn: Some(arn.to_string()),
        state: State::Available,
        spec: SnsTopicSpec {
            name: name_of(arn).to_string(),
            display_name: attribute("DisplayName"),
            kms_master_key_id: attribute("KmsMasterKeyId"),
            account_only_policy: is_account_only(&attribute("Policy"), arn),
        }
        .into(),
        tags,
        attributes: BTreeMap::new(),
    })
}

/// The topics named `hipaa-…` tagged with `owner`, with their tags.
async fn tagged(
    cloud: &AwsCloud,
    owner: &Owner,
    topics: &[String],
) -> Result<Vec<(String, BTreeMap<String, String>)>, CloudError> {
    let owner = owner.to_string();
    let mut out = Vec::new();
    for arn in topics
        .iter()
        .filter(|arn| name_of(arn).starts_with(NAME_PREFIX))
    {
        match tags_of(cloud, arn).await {
            Ok(tags) if tags.get(TAG_OWNER) == Some(&owner) => out.push((arn.clone(), tags)),
            Ok(_) | Err(CloudError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

pub(crate) async fn observe(
    cloud: &AwsCloud,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>, CloudError> {
    let owner_tag = owner.to_string();
    let mut found: Vec<Observed> = Vec::new();
    let mut topics: Option<Vec<String>> = None;
    let mut unnamed = false;
    for lookup in lookups {
        if let Some(arn) = lookup.recorded_id.as_deref() {
            if found.iter().any(|o| o.id == arn) {
                continue;
            }
            match read(cloud, arn, None).await {
                Ok(topic) => {
                    found.push(topic);
                    continue;
                }
                Err(CloudError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let Some(name) = lookup
            .desired
            .as_ref()
            .and_then(SnsTopicSpec::of)
            .map(|t| t.name.clone())
        else {
            unnamed = true;
            continue;
        };
        if topics.is_none() {
            topics = Some(list(cloud).await?);
        }
        let arn = topics
            .iter()
            .flatten()
            .find(|arn| name_of(arn) == name)
            .cloned();
        if let Some(arn) = arn.filter(|arn| !found.iter().any(|o| &o.id == arn)) {
            match read(cloud, &arn, None).await {
                // Found by name: ours only if tagged with the owner.
                Ok(topic) if topic.tags.get(TAG_OWNER) == Some(&owner_tag) => found.push(topic),
                Ok(_) | Err(CloudError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if unnamed {
        let topics = match topics {
            Some(topics) => topics,
            None => list(cloud).await?,
        };
        for (arn, tags) in tagged(cloud, owner, &topics).await? {
            if !found.iter().any(|o| o.id == arn) {
                found.push(read(cloud, &arn, Some(tags)).await?);
            }
        }
    }
    Ok(match_lookups(lookups, found))
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &SnsTopicSpec,
) -> Result<Observed, CloudError> {
    let mut attributes = HashMap::new();
    if !spec.display_name.is_empty() {
        attributes.insert("DisplayName".to_string(), spec.display_name.clone());
    }
    if !spec.kms_master_key_id.is_empty() {
        attributes.insert("KmsMasterKeyId".to_string(), spec.kms_master_key_id.clone());
    }
    let result = cloud
        .sns
        .create_topic()
        .name(&spec.name)
        .set_attributes((!attributes.is_empty()).then_some(attributes))
        .set_tags(Some(sns_tags(&desired.tags)?))
        .send()
        .await;
    let output = cloud.done("sns", "CreateTopic", result)?;
    let arn = output
        .topic_arn()
        .ok_or_else(|| CloudError::Server {
            operation: "CreateTopic".into(),
            message: "no topic ARN in the response".into(),
        })?
        .to_string();
    // A new topic has AWS's default policy; a topic returned again has whatever it has.
    let have = read(cloud, &arn, Some(desired.tags.clone())).await?;
    let have = SnsTopicSpec::of(&have.spec).cloned().unwrap_or_default();
    reconcile(cloud, &arn, spec, &have).await?;
    read(cloud, &arn, Some(desired.tags.clone())).await
}

pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &SnsTopicSpec,
    have: &SnsTopicSpec,
) -> Result<Observed, CloudError> {
    desired
        .spec
        .check_immutable("CreateTopic", &observed.spec)?;
    reconcile(cloud, &observed.id, want, have).await?;
    let missing = missing_tags(&desired.tags, &observed.tags);
    let mut tags = observed.tags.clone();
    if !missing.is_empty() {
        let result = cloud
            .sns
            .tag_resource()
            .resource_arn(&observed.id)
            .set_tags(Some(sns_tags(&missing)?))
            .send()
            .await;
        cloud.done("sns", "TagResource", result)?;
        tags.extend(missing);
    }
    read(cloud, &observed.id, Some(tags)).await
}

/// One `SetTopicAttributes` per attribute that differs.
async fn reconcile(
    cloud: &AwsCloud,
    arn: &str,
    want: &SnsTopicSpec,
    have: &SnsTopicSpec,
) -> Result<(), CloudError> {
    let mut changes: Vec<(&str, String)> = Vec::new();
    if want.display_name != have.display_name {
        changes.push(("DisplayName", want.display_name.clone()));
    }
    if want.kms_master_key_id != have.kms_master_key_id {
        changes.push(("KmsMasterKeyId", want.kms_master_key_id.clone()));
    }
    if want.account_only_policy != have.account_only_policy {
        let policy = if want.account_only_policy {
            account_only_policy(arn)
        } else {
            default_policy(arn)
        };
        changes.push(("Policy", policy));
    }
    for (name, value) in changes {
        let result = cloud
            .sns
            .set_topic_attributes()
            .topic_arn(arn)
            .attribute_name(name)
            .attribute_value(value)
            .send()
            .await;
        cloud.done("sns", "SetTopicAttributes", result)?;
    }
    Ok(())
}

pub(crate) async fn delete(cloud: &AwsCloud, arn: &str) -> Result<(), CloudError> {
    let result = cloud.sns.delete_topic().topic_arn(arn).send().await;
    cloud.done("sns", "DeleteTopic", result).map(|_| ())
}

/// The owner's topics named `hipaa-…`: `ListTopics` + one `ListTagsForResource` each.
pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    let topics = list(cloud).await?;
    Ok(tagged(cloud, owner, &topics)
        .await?
        .into_iter()
        .map(|(arn, tags)| Owned {
            kind: Kind::SnsTopic,
            id: arn,
            node: tags.get(TAG_NODE).cloned().unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:sns:us-east-1:123456789012:hipaa-payments";

    #[test]
    fn the_account_only_policy_is_recognised_as_a_policy_not_as_text() {
        assert!(is_account_only(&account_only_policy(ARN), ARN));
        // (document, admitted): each row one way a policy is or is not the one.
        let statement = |principal: Value, owner: Value, extra: Option<(&str, Value)>| {
            let mut s = json!({
                "Effect": "Allow",
                "Principal": {"AWS": principal},
                "Action": TOPIC_ACTIONS.iter().rev().map(|a| a.to_lowercase()).collect::<Vec<_>>(),
                "Resource": [ARN],
                "Condition": {"StringEquals": {"AWS:SourceOwner": owner}},
            });
            if let Some((key, value)) = extra {
                s[key] = value;
            }
            json!({"Statement": [s]}).to_string()
        };
        let rows = [
            (
                statement(json!("123456789012"), json!("123456789012"), None),
                true,
            ),
            (
                statement(
                    json!(["arn:aws:iam::123456789012:root"]),
                    json!(["123456789012"]),
                    None,
                ),
                true,
            ),
            (statement(json!("*"), json!("123456789012"), None), false),
            (
                statement(json!("123456789012"), json!("999999999999"), None),
                false,
            ),
            (
                statement(
                    json!("123456789012"),
                    json!("123456789012"),
                    Some(("Resource", json!("*"))),
                ),
                false,
            ),
            (default_policy(ARN), false),
            (String::new(), false),
            ("{\"Statement\": []}".to_string(), false),
        ];
        for (document, admitted) in rows {
            assert_eq!(is_account_only(&document, ARN), admitted, "{document}");
        }
        let two = json!({"Statement": [
            serde_json::from_str::<Value>(&account_only_policy(ARN)).unwrap()["Statement"][0],
            {"Effect": "Allow", "Principal": "*", "Action": "SNS:Publish", "Resource": ARN},
        ]});
        assert!(
            !is_account_only(&two.to_string(), ARN),
            "a second statement"
        );
    }

    #[test]
    fn names_and_accounts_come_from_the_arn() {
        assert_eq!(account_of(ARN), "123456789012");
        assert_eq!(name_of(ARN), "hipaa-payments");
    }
}
