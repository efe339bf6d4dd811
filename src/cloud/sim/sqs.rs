//! SQS queues: the id is the URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`),
//! the ARN `arn:aws:sqs:<region>:<account>:<name>`, the URL also the attribute `url`.
//! Names are unique per region: `CreateQueue` with a taken name returns that queue when
//! the attributes it carries match (`QueueAlreadyExists` otherwise), and a deleted queue's
//! name cannot be taken again for 60 s × `time_scale` (`QueueDeletedRecently`, retryable:
//! a dependency to wait out). `CreateQueue` carries the KMS key, retention, visibility
//! timeout and redrive policy (whose dead-letter queue must exist); the queue policy is a
//! `SetQueueAttributes` after it and the subscription an SNS `Subscribe` (the topic must
//! exist). Later changes are one `SetQueueAttributes` with every attribute that differs,
//! plus `Subscribe`/`Unsubscribe`. Delete unsubscribes first. The simulator keeps the
//! policy and the subscription as the spec's fields, not as documents.

use super::SimCloud;
use super::api::{Result, dependency, not_found, ok_if_missing, sync_tags, terminal};
use super::world::{ACCOUNT, World};
use crate::cloud::{Desired, Kind, KindSpec, Observed, SnsTopicSpec, SqsQueueSpec};

/// How long AWS keeps a deleted queue's name, in (unscaled) seconds.
const NAME_REUSE_SECONDS: f64 = 60.0;

fn valid_name(name: &str) -> bool {
    (1..=80).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The attributes AWS bounds, checked as `CreateQueue` and `SetQueueAttributes` do.
fn check_attributes(w: &World, op: &str, spec: &SqsQueueSpec) -> Result<()> {
    let invalid = |name: &str| {
        terminal(
            op,
            "InvalidAttributeValue",
            format!("Invalid value for the parameter {name}."),
        )
    };
    if !(60..=1_209_600).contains(&spec.message_retention_seconds) {
        return Err(invalid("MessageRetentionPeriod"));
    }
    if !(0..=43_200).contains(&spec.visibility_timeout_seconds) {
        return Err(invalid("VisibilityTimeout"));
    }
    if !spec.dead_letter_target_arn.is_empty() {
        if !(1..=1000).contains(&spec.max_receive_count) {
            return Err(invalid("RedrivePolicy"));
        }
        let exists = w
            .of_kind(Kind::SqsQueue)
            .any(|r| r.arn.as_deref() == Some(spec.dead_letter_target_arn.as_str()));
        if !exists {
            return Err(terminal(
                op,
                "InvalidParameterValue",
                format!(
                    "Value {{\"deadLetterTargetArn\":\"{}\",\"maxReceiveCount\":\"{}\"}} for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist.",
                    spec.dead_letter_target_arn, spec.max_receive_count
                ),
            ));
        }
    }
    Ok(())
}

/// The attributes `CreateQueue` carries (what a second create is compared on).
fn same_attributes(a: &SqsQueueSpec, b: &SqsQueueSpec) -> bool {
    a.kms_master_key_id == b.kms_master_key_id
        && a.message_retention_seconds == b.message_retention_seconds
        && a.visibility_timeout_seconds == b.visibility_timeout_seconds
        && a.dead_letter_target_arn == b.dead_letter_target_arn
        && (a.dead_letter_target_arn.is_empty() || a.max_receive_count == b.max_receive_count)
}

pub(crate) async fn create(sim: &SimCloud, d: &Desired, spec: &SqsQueueSpec) -> Result<Observed> {
    let created = SqsQueueSpec {
        max_receive_count: if spec.dead_letter_target_arn.is_empty() {
            0
        } else {
            spec.max_receive_count
        },
        send_allowed_from_topic_arn: String::new(),
        subscribed_topic_arn: String::new(),
        ..spec.clone()
    };
    let url = sim
        .call("sqs", "CreateQueue", |w, now| {
            let op = "CreateQueue";
            let name = &spec.name;
            if !valid_name(name) {
                return Err(terminal(
                    op,
                    "InvalidParameterValue",
                    "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
                ));
            }
            let url = format!("https://sqs.{}.amazonaws.com/{ACCOUNT}/{name}", w.region);
            if let Some(existing) = w.spec::<SqsQueueSpec>(&url) {
                if !same_attributes(existing, &created) {
                    return Err(terminal(
                        op,
                        "QueueAlreadyExists",
                        "A queue already exists with the same name and a different value for an attribute",
                    ));
                }
                return Ok(url);
            }
            if w.tombstones.contains_key(&(Kind::SqsQueue, name.clone())) {
                return Err(dependency(
                    op,
                    "AWS.SimpleQueueService.QueueDeletedRecently: You must wait 60 seconds after deleting a queue before you can create another with the same name.",
                ));
            }
            check_attributes(w, op, &created)?;
            w.insert(Kind::SqsQueue, &url, created.clone().into(), d.tags.clone(), now);
            let arn = format!("arn:aws:sqs:{}:{ACCOUNT}:{name}", w.region);
            if let Some(r) = w.get_mut(Kind::SqsQueue, &url) {
                r.arn = Some(arn);
                r.attributes.insert("url".into(), url.clone());
            }
            Ok(url)
        })
        .await?;
    let have = sim.snapshot(Kind::SqsQueue, &url)?;
    let have = SqsQueueSpec::of(&have.spec).cloned().unwrap_or_default();
    reconcile(sim, &url, spec, &have).await?;
    sim.snapshot(Kind::SqsQueue, &url)
}

pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &SqsQueueSpec,
    have: &SqsQueueSpec,
) -> Result<Observed> {
    d.spec.check_immutable("CreateQueue", &o.spec)?;
    reconcile(sim, &o.id, want, have).await?;
    sync_tags(sim, Kind::SqsQueue, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::SqsQueue, &o.id)
}

/// One `SetQueueAttributes` for the attributes that differ, then the subscription.
async fn reconcile(
    sim: &SimCloud,
    url: &str,
    want: &SqsQueueSpec,
    have: &SqsQueueSpec,
) -> Result<()> {
    let redrive = |s: &SqsQueueSpec| {
        (
            s.dead_letter_target_arn.clone(),
            if s.dead_letter_target_arn.is_empty() {
                0
            } else {
                s.max_receive_count
            },
        )
    };
    let attributes_differ = want.kms_master_key_id != have.kms_master_key_id
        || want.message_retention_seconds != have.message_retention_seconds
        || want.visibility_timeout_seconds != have.visibility_timeout_seconds
        || redrive(want) != redrive(have)
        || want.send_allowed_from_topic_arn != have.send_allowed_from_topic_arn;
    if attributes_differ {
        let op = "SetQueueAttributes";
        sim.call("sqs", op, |w, _| {
            let mut next = queue(w, op, url)?.clone();
            next.kms_master_key_id.clone_from(&want.kms_master_key_id);
            next.message_retention_seconds = want.message_retention_seconds;
            next.visibility_timeout_seconds = want.visibility_timeout_seconds;
            (next.dead_letter_target_arn, next.max_receive_count) = redrive(want);
            next.send_allowed_from_topic_arn
                .clone_from(&want.send_allowed_from_topic_arn);
            check_attributes(w, op, &next)?;
            *queue(w, op, url)? = next;
            Ok(())
        })
        .await?;
    }
    if want.subscribed_topic_arn != have.subscribed_topic_arn {
        if !have.subscribed_topic_arn.is_empty() {
            let op = "Unsubscribe";
            sim.call("sns", op, |w, _| {
                let subscribed = &mut queue(w, op, url)?.subscribed_topic_arn;
                if *subscribed == have.subscribed_topic_arn {
                    subscribed.clear();
                }
                Ok(())
            })
            .await?;
        }
        if !want.subscribed_topic_arn.is_empty() {
            let op = "Subscribe";
            let topic = &want.subscribed_topic_arn;
            sim.call("sns", op, |w, _| {
                if w.spec::<SnsTopicSpec>(topic).is_none() {
                    return Err(not_found(op, "NotFound", "Topic does not exist"));
                }
                queue(w, op, url)?.subscribed_topic_arn.clone_from(topic);
                Ok(())
            })
            .await?;
        }
    }
    Ok(())
}

fn queue<'a>(w: &'a mut World, op: &str, url: &str) -> Result<&'a mut SqsQueueSpec> {
    w.spec_mut::<SqsQueueSpec>(url).ok_or_else(|| {
        not_found(
            op,
            "AWS.SimpleQueueService.NonExistentQueue",
            "The specified queue does not exist.",
        )
    })
}

/// Unsubscribes, then deletes; the name stays taken for 60 s × `time_scale`.
pub(crate) async fn delete(sim: &SimCloud, url: &str) -> Result<()> {
    let subscribed = sim
        .world()
        .spec::<SqsQueueSpec>(url)
        .map(|q| !q.subscribed_topic_arn.is_empty())
        .unwrap_or(false);
    if subscribed {
        let op = "Unsubscribe";
        let result = sim
            .call("sns", op, |w, _| {
                queue(w, op, url)?.subscribed_topic_arn.clear();
                Ok(())
            })
            .await;
        ok_if_missing(result)?;
    }
    let result = sim
        .call("sqs", "DeleteQueue", |w, now| {
            let name = queue(w, "DeleteQueue", url)?.name.clone();
            w.remove(url);
            let free_at = now + w.scaled(NAME_REUSE_SECONDS);
            w.tombstones.insert((Kind::SqsQueue, name), free_at);
            Ok(())
        })
        .await;
    ok_if_missing(result)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testkit::*;
    use crate::cloud::{Kind, Provider, SnsTopicSpec, Spec, SqsQueueSpec};

    fn queue(name: &str, dlq: &str, topic: &str) -> Spec {
        Spec::SqsQueue(SqsQueueSpec {
            name: name.into(),
            kms_master_key_id: "alias/aws/sqs".into(),
            message_retention_seconds: 345_600,
            visibility_timeout_seconds: 60,
            dead_letter_target_arn: dlq.into(),
            max_receive_count: if dlq.is_empty() { 0 } else { 5 },
            send_allowed_from_topic_arn: topic.into(),
            subscribed_topic_arn: topic.into(),
        })
    }

    async fn topic(sim: &crate::cloud::sim::SimCloud) -> String {
        let topic = Spec::SnsTopic(SnsTopicSpec {
            name: "hipaa-payments".into(),
            ..SnsTopicSpec::default()
        });
        make(sim, "topic", topic).await.id
    }

    #[tokio::test]
    async fn id_is_the_url_with_the_arn_and_the_subscription_to_an_existing_topic() {
        let sim = sim();
        let topic = topic(&sim).await;
        let dlq = make(&sim, "dlq", queue("hipaa-dlq", "", "")).await;
        let dlq_arn = dlq.arn.clone().unwrap();
        assert_eq!(dlq_arn, "arn:aws:sqs:us-east-1:123456789012:hipaa-dlq");
        let main = make(&sim, "queue", queue("hipaa-q", &dlq_arn, &topic)).await;
        assert_eq!(
            main.id,
            "https://sqs.us-east-1.amazonaws.com/123456789012/hipaa-q"
        );
        assert_eq!(main.attributes.get("url"), Some(&main.id));
        assert_eq!(main.spec, queue("hipaa-q", &dlq_arn, &topic));
        let again = make(&sim, "queue", queue("hipaa-q", &dlq_arn, &topic)).await;
        assert_eq!(again.id, main.id, "the same request: the same queue");
        let mut other = queue("hipaa-q", &dlq_arn, &topic);
        if let Spec::SqsQueue(q) = &mut other {
            q.visibility_timeout_seconds = 90;
        }
        let err = sim.create(&desired("queue", other)).await.unwrap_err();
        assert_eq!(code(&err), "QueueAlreadyExists");
        let nowhere = "arn:aws:sqs:us-east-1:123456789012:nope";
        let err = sim
            .create(&desired("q2", queue("hipaa-q2", nowhere, "")))
            .await
            .unwrap_err();
        assert_eq!(
            code(&err),
            "InvalidParameterValue",
            "no such dead-letter queue"
        );
        let err = sim
            .create(&desired(
                "q3",
                queue("hipaa-q3", "", "arn:aws:sns:us-east-1:123456789012:nope"),
            ))
            .await
            .unwrap_err();
        assert_eq!(code(&err), "not_found", "no such topic");
    }

    #[tokio::test]
    async fn delete_unsubscribes_and_the_name_is_taken_for_a_minute() {
        // 60 s at 0.005: 300 ms.
        let sim = sim_at(0.005);
        let topic = topic(&sim).await;
        let made = make(&sim, "queue", queue("hipaa-q", "", &topic)).await;
        sim.reset_calls();
        sim.delete(Kind::SqsQueue, &made.id).await.unwrap();
        assert_eq!(ops(&sim), vec!["Unsubscribe", "DeleteQueue"]);
        sim.delete(Kind::SqsQueue, &made.id)
            .await
            .expect("a missing queue deletes fine");
        let err = sim
            .create(&desired("queue", queue("hipaa-q", "", "")))
            .await
            .unwrap_err();
        assert!(
            err.retryable() && err.to_string().contains("QueueDeletedRecently"),
            "{err}"
        );
        tokio::time::sleep(Duration::from_millis(350)).await;
        make(&sim, "queue", queue("hipaa-q", "", "")).await;
    }

    #[tokio::test]
    async fn deleting_the_topic_ends_the_subscription() {
        let sim = sim();
        let topic = topic(&sim).await;
        let made = make(&sim, "queue", queue("hipaa-q", "", &topic)).await;
        sim.delete(Kind::SnsTopic, &topic).await.unwrap();
        let seen = observe_id(&sim, Kind::SqsQueue, &made.id).await.unwrap();
        assert!(
            matches!(&seen.spec, Spec::SqsQueue(q) if q.subscribed_topic_arn.is_empty()),
            "{seen:?}"
        );
    }
}
