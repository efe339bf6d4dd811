//! SNS topics: the id is the ARN (`arn:aws:sns:<region>:<account>:<name>`). Names are
//! unique per region: `CreateTopic` with a taken name returns that topic when the request
//! carries the same attributes and tags, and is refused (`InvalidParameter`) otherwise,
//! as AWS does. The display name and the KMS key go in with `CreateTopic`; the access
//! policy is a `SetTopicAttributes` after it (the backend writes it from the topic's ARN),
//! and every later change is one `SetTopicAttributes` per attribute. The simulator keeps
//! the policy as the spec's `account_only_policy` flag, not as a document. `DeleteTopic`
//! of a missing topic succeeds; a topic's deletion ends its subscriptions.

use super::SimCloud;
use super::api::{Result, not_found, sync_tags, terminal};
use super::world::{ACCOUNT, World};
use crate::cloud::{Desired, Kind, KindSpec, Observed, SnsTopicSpec, SqsQueueSpec};

/// AWS's rule for standard topic names.
fn valid_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(crate) async fn create(sim: &SimCloud, d: &Desired, spec: &SnsTopicSpec) -> Result<Observed> {
    let created = SnsTopicSpec {
        account_only_policy: false,
        ..spec.clone()
    };
    let arn = sim
        .call("sns", "CreateTopic", |w, now| {
            let op = "CreateTopic";
            if !valid_name(&spec.name) {
                return Err(terminal(
                    op,
                    "InvalidParameter",
                    "Invalid parameter: Topic Name",
                ));
            }
            let arn = format!("arn:aws:sns:{}:{ACCOUNT}:{}", w.region, spec.name);
            if let Some(existing) = w.get(Kind::SnsTopic, &arn) {
                let same = SnsTopicSpec::of(&existing.spec).is_some_and(|have| {
                    have.display_name == spec.display_name
                        && have.kms_master_key_id == spec.kms_master_key_id
                });
                if !same {
                    return Err(terminal(
                        op,
                        "InvalidParameter",
                        "Invalid parameter: Attributes Reason: Topic already exists with different attributes",
                    ));
                }
                if existing.tags != d.tags {
                    return Err(terminal(
                        op,
                        "InvalidParameter",
                        "Invalid parameter: Tags Reason: Topic already exists with different tags",
                    ));
                }
                return Ok(arn);
            }
            w.insert(Kind::SnsTopic, &arn, created.clone().into(), d.tags.clone(), now);
            if let Some(r) = w.get_mut(Kind::SnsTopic, &arn) {
                r.arn = Some(arn.clone());
            }
            Ok(arn)
        })
        .await?;
    let have = sim.snapshot(Kind::SnsTopic, &arn)?;
    let have = SnsTopicSpec::of(&have.spec).cloned().unwrap_or_default();
    reconcile(sim, &arn, spec, &have).await?;
    sim.snapshot(Kind::SnsTopic, &arn)
}

pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &SnsTopicSpec,
    have: &SnsTopicSpec,
) -> Result<Observed> {
    d.spec.check_immutable("CreateTopic", &o.spec)?;
    reconcile(sim, &o.id, want, have).await?;
    sync_tags(sim, Kind::SnsTopic, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::SnsTopic, &o.id)
}

/// One `SetTopicAttributes` per attribute that differs.
async fn reconcile(
    sim: &SimCloud,
    arn: &str,
    want: &SnsTopicSpec,
    have: &SnsTopicSpec,
) -> Result<()> {
    if want.display_name != have.display_name {
        set(sim, arn, |t| t.display_name.clone_from(&want.display_name)).await?;
    }
    if want.kms_master_key_id != have.kms_master_key_id {
        set(sim, arn, |t| {
            t.kms_master_key_id.clone_from(&want.kms_master_key_id)
        })
        .await?;
    }
    if want.account_only_policy != have.account_only_policy {
        set(sim, arn, |t| {
            t.account_only_policy = want.account_only_policy
        })
        .await?;
    }
    Ok(())
}

async fn set(sim: &SimCloud, arn: &str, change: impl FnOnce(&mut SnsTopicSpec)) -> Result<()> {
    let op = "SetTopicAttributes";
    sim.call("sns", op, |w, _| topic(w, op, arn).map(change))
        .await
}

fn topic<'a>(w: &'a mut World, op: &str, arn: &str) -> Result<&'a mut SnsTopicSpec> {
    w.spec_mut::<SnsTopicSpec>(arn)
        .ok_or_else(|| not_found(op, "NotFound", "Topic does not exist"))
}

/// Deleting a missing topic succeeds (AWS's `DeleteTopic` is idempotent); the topic's
/// subscriptions go with it.
pub(crate) async fn delete(sim: &SimCloud, arn: &str) -> Result<()> {
    sim.call("sns", "DeleteTopic", |w, _| {
        if w.get(Kind::SnsTopic, arn).is_none() {
            return Ok(());
        }
        w.remove(arn);
        let subscribed: Vec<String> = w
            .specs::<SqsQueueSpec>()
            .filter(|(_, queue)| queue.subscribed_topic_arn == arn)
            .map(|(r, _)| r.id.clone())
            .collect();
        for queue in subscribed {
            if let Some(queue) = w.spec_mut::<SqsQueueSpec>(&queue) {
                queue.subscribed_topic_arn.clear();
            }
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::cloud::{Kind, Provider, SnsTopicSpec, Spec};

    fn topic(name: &str, display: &str) -> Spec {
        Spec::SnsTopic(SnsTopicSpec {
            name: name.into(),
            display_name: display.into(),
            kms_master_key_id: "alias/aws/sns".into(),
            account_only_policy: true,
        })
    }

    #[tokio::test]
    async fn id_is_the_arn_and_a_second_create_returns_the_topic_only_for_the_same_request() {
        let sim = sim();
        let first = make(&sim, "topic", topic("hipaa-payments", "Payments")).await;
        assert_eq!(
            first.id,
            "arn:aws:sns:us-east-1:123456789012:hipaa-payments"
        );
        assert_eq!(first.arn.as_deref(), Some(first.id.as_str()));
        assert_eq!(first.spec, topic("hipaa-payments", "Payments"));
        let again = make(&sim, "topic", topic("hipaa-payments", "Payments")).await;
        assert_eq!(again.id, first.id, "same request: the same topic");
        let other = sim
            .create(&desired("topic", topic("hipaa-payments", "Other")))
            .await
            .unwrap_err();
        assert_eq!(code(&other), "InvalidParameter", "other attributes");
        let retagged = sim
            .create(&desired("elsewhere", topic("hipaa-payments", "Payments")))
            .await
            .unwrap_err();
        assert_eq!(code(&retagged), "InvalidParameter", "other tags");
        let err = sim
            .create(&desired("bad", topic("no spaces", "")))
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidParameter");
    }

    #[tokio::test]
    async fn each_changed_attribute_is_one_call_and_delete_is_idempotent() {
        let sim = sim();
        let made = make(&sim, "topic", topic("hipaa-t", "T")).await;
        let mut want = topic("hipaa-t", "T2");
        if let Spec::SnsTopic(t) = &mut want {
            t.account_only_policy = false;
        }
        sim.reset_calls();
        let updated = sim
            .update(&desired("topic", want.clone()), &made)
            .await
            .unwrap();
        assert_eq!(updated.spec, want);
        assert_eq!(ops(&sim), vec!["SetTopicAttributes", "SetTopicAttributes"]);
        sim.delete(Kind::SnsTopic, &made.id).await.unwrap();
        sim.delete(Kind::SnsTopic, &made.id)
            .await
            .expect("a missing topic deletes fine");
        assert!(observe_id(&sim, Kind::SnsTopic, &made.id).await.is_none());
    }
}
