//! SQS queues (standard). The id is the queue URL; `Observed::arn` is the queue ARN and
//! the attribute `url` the URL. `CreateQueue` takes the KMS key, the retention, the
//! visibility timeout, the redrive policy and the tags; AWS returns the existing queue for
//! a name that is taken when those attributes match (`QueueAlreadyExists` otherwise). A
//! deleted queue's name cannot be taken again for 60 s: `QueueDeletedRecently` is
//! classified as a dependency to wait out (retried on a later pass).
//!
//! The queue policy is written from the queue's ARN ([`send_policy`]: only
//! `sqs:SendMessage`, only from the topic, `aws:SourceArn`) and observed as that topic
//! only when the policy is exactly that one; another policy is observed as a short
//! description of it. The subscription (protocol `sqs`, `RawMessageDelivery` on) is an
//! SNS `Subscribe`; it is observed with `ListSubscriptionsByTopic` on the desired topic
//! and on the topic the policy admits. Caveat: a subscription to any other topic is not
//! seen by observe (it is by delete), and the raw-delivery attribute is set at subscribe
//! time but not read back.
//!
//! Changes are one `SetQueueAttributes` with every attribute that differs. moto drops a
//! queue's policy on a `SetQueueAttributes` that does not carry one, so while a policy is
//! wanted it is sent along with any other change (AWS takes the unchanged policy as no
//! change). Delete reads the queue's ARN, unsubscribes every subscription delivering to
//! it (a paginated `ListSubscriptions`: the topic is not known from the URL alone; cost
//! proportional to the account's subscriptions), then `DeleteQueue`.
//!
//! SQS has no tag filter: a recorded URL is read with `GetQueueAttributes` +
//! `ListQueueTags`; a desired name is found with `GetQueueUrl`, ours only when tagged with
//! the owner; lookups with neither list the queues named `hipaa-…` (`ListQueues` by name
//! prefix) with one `ListQueueTags` each.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};

use super::sns::{statements, strings};
use super::{AwsCloud, match_lookups, missing_tags, paginate};
use crate::cloud::{
    CloudError, Desired, Kind, KindSpec, Lookup, Observed, Owned, Owner, SqsQueueSpec, State,
    TAG_NODE, TAG_OWNER,
};

/// Where the blueprint's names start (`blueprint::resource_name`): queues scanned for tags.
const NAME_PREFIX: &str = "hipaa-";

/// The queue policy that admits only `sqs:SendMessage` from `topic_arn`, by SNS.
pub(crate) fn send_policy(queue_arn: &str, topic_arn: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Id": "hipaa-operator-topic-send",
        "Statement": [{
            "Sid": "TopicSendOnly",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        }]
    })
    .to_string()
}

/// What a queue policy admits, as `send_allowed_from_topic_arn` reports it: "" for none,
/// the topic for [`send_policy`] (compared as a policy: key order, a one-item list for a
/// string, the action's case and `ArnEquals`/`ArnLike` with a literal ARN do not count),
/// else `foreign policy: …`.
pub(crate) fn sending_topic(document: &str, queue_arn: &str) -> String {
    if document.trim().is_empty() {
        return String::new();
    }
    let Ok(doc) = serde_json::from_str::<Value>(document) else {
        return "foreign policy: not JSON".into();
    };
    let all = statements(&doc);
    let foreign = || format!("foreign policy: {} statement(s)", all.len());
    let [statement] = all[..] else {
        return if all.is_empty() {
            String::new()
        } else {
            foreign()
        };
    };
    let actions = strings(&statement["Action"]);
    let condition = &statement["Condition"];
    let (operator, arns) = match condition.as_object() {
        Some(c) if c.len() == 1 => {
            let (operator, body) = c.iter().next().expect("one condition");
            let keys = body.as_object().map(|b| b.len()).unwrap_or_default();
            let arns = if keys == 1 {
                strings(&body["aws:SourceArn"])
            } else {
                vec![]
            };
            (operator.as_str(), arns)
        }
        _ => ("", vec![]),
    };
    let ours = statement["Effect"] == "Allow"
        && statement["Principal"]
            .as_object()
            .is_some_and(|p| p.len() == 1)
        && strings(&statement["Principal"]["Service"]) == ["sns.amazonaws.com"]
        && actions.len() == 1
        && actions[0].eq_ignore_ascii_case("sqs:SendMessage")
        && strings(&statement["Resource"]) == [queue_arn]
        && (operator == "ArnEquals" || operator == "ArnLike")
        && arns.len() == 1
        && !arns[0].contains(['*', '?']);
    if ours { arns[0].clone() } else { foreign() }
}

/// The redrive policy as `(dead-letter ARN, maxReceiveCount)`; ("", 0) for none.
fn redrive_of(document: &str) -> (String, i32) {
    let Ok(doc) = serde_json::from_str::<Value>(document) else {
        return (String::new(), 0);
    };
    let target = doc["deadLetterTargetArn"].as_str().unwrap_or_default();
    let count = match &doc["maxReceiveCount"] {
        Value::Number(n) => n.as_i64().unwrap_or_default(),
        Value::String(s) => s.parse().unwrap_or_default(),
        _ => 0,
    };
    if target.is_empty() {
        (String::new(), 0)
    } else {
        (target.to_string(), i32::try_from(count).unwrap_or_default())
    }
}

fn redrive_policy(spec: &SqsQueueSpec) -> String {
    if spec.dead_letter_target_arn.is_empty() {
        String::new()
    } else {
        json!({
            "deadLetterTargetArn": spec.dead_letter_target_arn,
            "maxReceiveCount": spec.max_receive_count,
        })
        .to_string()
    }
}

/// `QueueDeletedRecently`: the name is free again a minute after the deletion.
fn wait_out_deleted_name(error: CloudError) -> CloudError {
    match error {
        CloudError::Terminal {
            operation,
            code,
            message,
        } if code.ends_with("QueueDeletedRecently") => CloudError::DependencyViolation {
            operation,
            message: format!(
                "{code}: {message} (a queue's name can be taken again 60 s after its deletion)"
            ),
        },
        other => other,
    }
}

async fn tags_of(cloud: &AwsCloud, url: &str) -> Result<BTreeMap<String, String>, CloudError> {
    let result = cloud.sqs.list_queue_tags().queue_url(url).send().await;
    let output = cloud.done("sqs", "ListQueueTags", result)?;
    Ok(output
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default())
}

async fn attributes_of(
    cloud: &AwsCloud,
    url: &str,
) -> Result<HashMap<QueueAttributeName, String>, CloudError> {
    let result = cloud
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await;
    let output = cloud.done("sqs", "GetQueueAttributes", result)?;
    Ok(output.attributes().cloned().unwrap_or_default())
}

/// The subscriptions of `topic` delivering to `queue_arn` over SQS, by ARN. A missing
/// topic has none.
async fn subscriptions(
    cloud: &AwsCloud,
    topic: &str,
    queue_arn: &str,
) -> Result<Vec<String>, CloudError> {
    let all = paginate(|token| {
        let call = cloud
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(topic)
            .set_next_token(token);
        async move {
            let page = cloud.done("sns", "ListSubscriptionsByTopic", call.send().await)?;
            Ok((
                page.subscriptions().to_vec(),
                page.next_token().map(String::from),
            ))
        }
    })
    .await;
    let all = match all {
        Ok(all) => all,
        Err(CloudError::NotFound { .. }) => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    Ok(all
        .iter()
        .filter(|s| s.protocol() == Some("sqs") && s.endpoint() == Some(queue_arn))
        .filter_map(|s| s.subscription_arn().map(String::from))
        .collect())
}

/// A queue as the engine sees it. `topic`: the desired subscription's topic, looked at
/// besides the one the policy admits.
async fn read(
    cloud: &AwsCloud,
    url: &str,
    topic: &str,
    tags: Option<BTreeMap<String, String>>,
) -> Result<Observed, CloudError> {
    let attributes = attributes_of(cloud, url).await?;
    let attribute = |name: QueueAttributeName| attributes.get(&name).cloned().unwrap_or_default();
    let number = |name: QueueAttributeName| attribute(name).parse::<i32>().unwrap_or_default();
    let arn = attribute(QueueAttributeName::QueueArn);
    let (dead_letter_target_arn, max_receive_count) =
        redrive_of(&attribute(QueueAttributeName::RedrivePolicy));
    let send_allowed_from_topic_arn = sending_topic(&attribute(QueueAttributeName::Policy), &arn);
    let mut candidates = vec![topic.to_string()];
    if send_allowed_from_topic_arn.starts_with("arn:") {
        candidates.push(send_allowed_from_topic_arn.clone());
    }
    candidates.retain(|t| !t.is_empty());
    candidates.dedup();
    let mut subscribed_topic_arn = String::new();
    for candidate in candidates {
        if !subscriptions(cloud, &candidate, &arn).await?.is_empty() {
            subscribed_topic_arn = candidate;
            break;
        }
    }
    let tags = match tags {
        Some(tags) => tags,
        None => tags_of(cloud, url).await?,
    };
    Ok(Observed {
        id: url.to_string(),
        arn: Some(arn.clone()),
        state: State::Available,
        spec: SqsQueueSpec {
            name: arn.rsplit(':').next().unwrap_or_default().to_string(),
            kms_master_key_id: attribute(QueueAttributeName::KmsMasterKeyId),
            message_retention_seconds: number(QueueAttributeName::MessageRetentionPeriod),
            visibility_timeout_seconds: number(QueueAttributeName::VisibilityTimeout),
            dead_letter_target_arn,
            max_receive_count,
            send_allowed_from_topic_arn,
            subscribed_topic_arn,
        }
        .into(),
        tags,
        attributes: BTreeMap::from([("url".to_string(), url.to_string())]),
    })
}

/// The URL of the queue named `name`, if there is one.
async fn url_of(cloud: &AwsCloud, name: &str) -> Result<Option<String>, CloudError> {
    let result = cloud.sqs.get_queue_url().queue_name(name).send().await;
    match cloud.done("sqs", "GetQueueUrl", result) {
        Ok(output) => Ok(output.queue_url().map(String::from)),
        Err(CloudError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The queues named `hipaa-…` tagged with `owner`, with their tags.
async fn tagged(
    cloud: &AwsCloud,
    owner: &Owner,
) -> Result<Vec<(String, BTreeMap<String, String>)>, CloudError> {
    let urls = paginate(|token| {
        let call = cloud
            .sqs
            .list_queues()
            .queue_name_prefix(NAME_PREFIX)
            .max_results(1000)
            .set_next_token(token);
        async move {
            let page = cloud.done("sqs", "ListQueues", call.send().await)?;
            Ok((
                page.queue_urls().to_vec(),
                page.next_token().map(String::from),
            ))
        }
    })
    .await?;
    let owner = owner.to_string();
    let mut out = Vec::new();
    for url in urls {
        match tags_of(cloud, &url).await {
            Ok(tags) if tags.get(TAG_OWNER) == Some(&owner) => out.push((url, tags)),
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
    let mut unnamed = false;
    for lookup in lookups {
        let desired = lookup.desired.as_ref().and_then(SqsQueueSpec::of);
        let topic = desired
            .map(|q| q.subscribed_topic_arn.as_str())
            .unwrap_or_default();
        if let Some(url) = lookup.recorded_id.as_deref() {
            if found.iter().any(|o| o.id == url) {
                continue;
            }
            match read(cloud, url, topic, None).await {
                Ok(queue) => {
                    found.push(queue);
                    continue;
                }
                Err(CloudError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let Some(name) = desired.map(|q| q.name.as_str()) else {
            unnamed = true;
            continue;
        };
        let Some(url) = url_of(cloud, name).await? else {
            continue;
        };
        if found.iter().any(|o| o.id == url) {
            continue;
        }
        match read(cloud, &url, topic, None).await {
            // Found by name: ours only if tagged with the owner.
            Ok(queue) if queue.tags.get(TAG_OWNER) == Some(&owner_tag) => found.push(queue),
            Ok(_) | Err(CloudError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    if unnamed {
        for (url, tags) in tagged(cloud, owner).await? {
            if !found.iter().any(|o| o.id == url) {
                found.push(read(cloud, &url, "", Some(tags)).await?);
            }
        }
    }
    Ok(match_lookups(lookups, found))
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &SqsQueueSpec,
) -> Result<Observed, CloudError> {
    let mut attributes = HashMap::from([
        (
            QueueAttributeName::MessageRetentionPeriod,
            spec.message_retention_seconds.to_string(),
        ),
        (
            QueueAttributeName::VisibilityTimeout,
            spec.visibility_timeout_seconds.to_string(),
        ),
    ]);
    if !spec.kms_master_key_id.is_empty() {
        attributes.insert(
            QueueAttributeName::KmsMasterKeyId,
            spec.kms_master_key_id.clone(),
        );
    }
    if !spec.dead_letter_target_arn.is_empty() {
        attributes.insert(QueueAttributeName::RedrivePolicy, redrive_policy(spec));
    }
    let result = cloud
        .sqs
        .create_queue()
        .queue_name(&spec.name)
        .set_attributes(Some(attributes))
        .set_tags(Some(desired.tags.clone().into_iter().collect()))
        .send()
        .await;
    let output = cloud
        .done("sqs", "CreateQueue", result)
        .map_err(wait_out_deleted_name)?;
    let url = output
        .queue_url()
        .ok_or_else(|| CloudError::Server {
            operation: "CreateQueue".into(),
            message: "no queue URL in the response".into(),
        })?
        .to_string();
    // The policy and the subscription follow: from a new queue's state, or from what a
    // queue returned again has.
    let created = read(
        cloud,
        &url,
        &spec.subscribed_topic_arn,
        Some(desired.tags.clone()),
    )
    .await?;
    let have = SqsQueueSpec::of(&created.spec).cloned().unwrap_or_default();
    let queue_arn = created.arn.unwrap_or_default();
    reconcile(cloud, &url, &queue_arn, spec, &have).await?;
    read(
        cloud,
        &url,
        &spec.subscribed_topic_arn,
        Some(desired.tags.clone()),
    )
    .await
}

pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &SqsQueueSpec,
    have: &SqsQueueSpec,
) -> Result<Observed, CloudError> {
    desired
        .spec
        .check_immutable("CreateQueue", &observed.spec)?;
    let queue_arn = observed.arn.clone().unwrap_or_default();
    reconcile(cloud, &observed.id, &queue_arn, want, have).await?;
    let missing = missing_tags(&desired.tags, &observed.tags);
    let mut tags = observed.tags.clone();
    if !missing.is_empty() {
        let result = cloud
            .sqs
            .tag_queue()
            .queue_url(&observed.id)
            .set_tags(Some(missing.clone().into_iter().collect()))
            .send()
            .await;
        cloud.done("sqs", "TagQueue", result)?;
        tags.extend(missing);
    }
    read(cloud, &observed.id, &want.subscribed_topic_arn, Some(tags)).await
}

/// One `SetQueueAttributes` with what differs, then the subscription.
async fn reconcile(
    cloud: &AwsCloud,
    url: &str,
    queue_arn: &str,
    want: &SqsQueueSpec,
    have: &SqsQueueSpec,
) -> Result<(), CloudError> {
    let mut changes = HashMap::new();
    if want.kms_master_key_id != have.kms_master_key_id {
        changes.insert(
            QueueAttributeName::KmsMasterKeyId,
            want.kms_master_key_id.clone(),
        );
    }
    if want.message_retention_seconds != have.message_retention_seconds {
        changes.insert(
            QueueAttributeName::MessageRetentionPeriod,
            want.message_retention_seconds.to_string(),
        );
    }
    if want.visibility_timeout_seconds != have.visibility_timeout_seconds {
        changes.insert(
            QueueAttributeName::VisibilityTimeout,
            want.visibility_timeout_seconds.to_string(),
        );
    }
    let redrive = |s: &SqsQueueSpec| {
        let count = if s.dead_letter_target_arn.is_empty() {
            0
        } else {
            s.max_receive_count
        };
        (s.dead_letter_target_arn.clone(), count)
    };
    if redrive(want) != redrive(have) {
        changes.insert(QueueAttributeName::RedrivePolicy, redrive_policy(want));
    }
    let policy = if want.send_allowed_from_topic_arn.is_empty() {
        String::new()
    } else {
        send_policy(queue_arn, &want.send_allowed_from_topic_arn)
    };
    if want.send_allowed_from_topic_arn != have.send_allowed_from_topic_arn
        || (!changes.is_empty() && !policy.is_empty())
    {
        changes.insert(QueueAttributeName::Policy, policy);
    }
    if !changes.is_empty() {
        let result = cloud
            .sqs
            .set_queue_attributes()
            .queue_url(url)
            .set_attributes(Some(changes))
            .send()
            .await;
        cloud.done("sqs", "SetQueueAttributes", result)?;
    }
    if want.subscribed_topic_arn != have.subscribed_topic_arn {
        if !have.subscribed_topic_arn.is_empty() {
            for subscription in subscriptions(cloud, &have.subscribed_topic_arn, queue_arn).await? {
                unsubscribe(cloud, &subscription).await?;
            }
        }
        if !want.subscribed_topic_arn.is_empty() {
            let result = cloud
                .sns
                .subscribe()
                .topic_arn(&want.subscribed_topic_arn)
                .protocol("sqs")
                .endpoint(queue_arn)
                .attributes("RawMessageDelivery", "true")
                .return_subscription_arn(true)
                .send()
                .await;
            cloud.done("sns", "Subscribe", result)?;
        }
    }
    Ok(())
}

async fn unsubscribe(cloud: &AwsCloud, subscription: &str) -> Result<(), CloudError> {
    let result = cloud
        .sns
        .unsubscribe()
        .subscription_arn(subscription)
        .send()
        .await;
    match cloud.done("sns", "Unsubscribe", result) {
        Ok(_) | Err(CloudError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Every SQS subscription in the account delivering to `queue_arn`.
async fn subscriptions_to(cloud: &AwsCloud, queue_arn: &str) -> Result<Vec<String>, CloudError> {
    let all = paginate(|token| {
        let call = cloud.sns.list_subscriptions().set_next_token(token);
        async move {
            let page = cloud.done("sns", "ListSubscriptions", call.send().await)?;
            Ok((
                page.subscriptions().to_vec(),
                page.next_token().map(String::from),
            ))
        }
    })
    .await?;
    Ok(all
        .iter()
        .filter(|s| s.protocol() == Some("sqs") && s.endpoint() == Some(queue_arn))
        .filter_map(|s| s.subscription_arn().map(String::from))
        .collect())
}

/// Unsubscribes every subscription delivering to the queue, then deletes it.
pub(crate) async fn delete(cloud: &AwsCloud, url: &str) -> Result<(), CloudError> {
    let result = cloud
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await;
    let output = cloud.done("sqs", "GetQueueAttributes", result)?;
    let queue_arn = output
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .unwrap_or_default();
    if !queue_arn.is_empty() {
        for subscription in subscriptions_to(cloud, &queue_arn).await? {
            unsubscribe(cloud, &subscription).await?;
        }
    }
    let result = cloud.sqs.delete_queue().queue_url(url).send().await;
    cloud.done("sqs", "DeleteQueue", result).map(|_| ())
}

/// The owner's queues named `hipaa-…`: `ListQueues` + one `ListQueueTags` each.
pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    Ok(tagged(cloud, owner)
        .await?
        .into_iter()
        .map(|(url, tags)| Owned {
            kind: Kind::SqsQueue,
            id: url,
            node: tags.get(TAG_NODE).cloned().unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:hipaa-q";
    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:hipaa-t";

    #[test]
    fn the_send_policy_is_observed_as_its_topic_and_others_as_foreign() {
        assert_eq!(sending_topic(&send_policy(QUEUE, TOPIC), QUEUE), TOPIC);
        let statement = |condition: Value, principal: Value| {
            json!({"Statement": {
                "Effect": "Allow",
                "Principal": {"Service": principal},
                "Action": ["SQS:SendMessage"],
                "Resource": [QUEUE],
                "Condition": condition,
            }})
            .to_string()
        };
        // (document, observed): each row one way a policy is or is not the one.
        let rows = [
            (String::new(), String::new()),
            (
                statement(
                    json!({"ArnLike": {"aws:SourceArn": [TOPIC]}}),
                    json!("sns.amazonaws.com"),
                ),
                TOPIC.to_string(),
            ),
            (
                statement(
                    json!({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*"}}),
                    json!("sns.amazonaws.com"),
                ),
                "foreign policy: 1 statement(s)".into(),
            ),
            (
                statement(json!({}), json!("sns.amazonaws.com")),
                "foreign policy: 1 statement(s)".into(),
            ),
            (
                statement(
                    json!({"ArnEquals": {"aws:SourceArn": TOPIC}}),
                    json!("events.amazonaws.com"),
                ),
                "foreign policy: 1 statement(s)".into(),
            ),
            ("{\"Statement\": []}".into(), String::new()),
            ("nonsense".into(), "foreign policy: not JSON".into()),
        ];
        for (document, observed) in rows {
            assert_eq!(sending_topic(&document, QUEUE), observed, "{document}");
        }
    }

    #[test]
    fn the_redrive_policy_reads_counts_as_numbers_or_strings() {
        let rows = [
            ("", (String::new(), 0)),
            (
                "{\"deadLetterTargetArn\": \"arn:dlq\", \"maxReceiveCount\": 5}",
                ("arn:dlq".to_string(), 5),
            ),
            (
                "{\"deadLetterTargetArn\": \"arn:dlq\", \"maxReceiveCount\": \"7\"}",
                ("arn:dlq".to_string(), 7),
            ),
        ];
        for (document, want) in rows {
            assert_eq!(redrive_of(document), want, "{document}");
        }
        let spec = SqsQueueSpec {
            dead_letter_target_arn: "arn:dlq".into(),
            max_receive_count: 3,
            ..SqsQueueSpec::default()
        };
        assert_eq!(redrive_of(&redrive_policy(&spec)), ("arn:dlq".into(), 3));
    }

    #[test]
    fn a_recently_deleted_name_is_a_dependency_to_wait_out() {
        let error = wait_out_deleted_name(CloudError::Terminal {
            operation: "CreateQueue".into(),
            code: "AWS.SimpleQueueService.QueueDeletedRecently".into(),
            message: "wait".into(),
        });
        assert!(error.retryable() && error.category() == "dependency_violation");
    }
}
