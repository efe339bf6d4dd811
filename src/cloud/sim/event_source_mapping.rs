//! Event source mappings (a Lambda function polling an SQS queue). The id is a UUID, the
//! ARN `arn:aws:lambda:<region>:<account>:event-source-mapping:<uuid>`.
//! `CreateEventSourceMapping` (tags) -> `Creating` for 5 s ± 1 s (observed `Pending`),
//! then `Enabled` or `Disabled`; `UpdateEventSourceMapping` -> `Updating` for 3.5 s ±
//! 1.5 s; `DeleteEventSourceMapping` -> `Deleting` for 5 s ± 1 s, then gone (a delete of
//! a deleting mapping succeeds). While `Creating` or `Updating` Lambda refuses updates
//! and deletes (`ResourceInUseException`, retryable): update then leaves its change for
//! the next pass.
//!
//! Checked as Lambda checks them: the function exists; one mapping per function and
//! queue (a second is `ResourceConflictException`, reported as
//! `EventSourceMappingAlreadyExists`); the batch size (1–10000, 10 for a FIFO queue) and
//! window (0–300 s, above 0 for batches over 10). The simulator has no SQS kind: any
//! queue ARN of this account and region is accepted. Durations × `time_scale`.

use super::SimCloud;
use super::api::{Result, dependency, not_found, ok_if_missing, sync_tags, terminal};
use super::world::{ACCOUNT, Phase, World};
use crate::cloud::{CloudError, Desired, EventSourceMappingSpec, Kind, Observed};

fn missing(op: &str, id: &str) -> CloudError {
    not_found(
        op,
        "ResourceNotFoundException",
        format!("The resource you requested does not exist. (Service: Lambda, mapping {id})"),
    )
}

fn in_use(op: &str, id: &str) -> CloudError {
    dependency(
        op,
        format!(
            "ResourceInUseException: Cannot update the event source mapping {id} because it is in use."
        ),
    )
}

fn invalid(op: &str, message: impl Into<String>) -> CloudError {
    terminal(op, "InvalidParameterValueException", message)
}

/// The batch settings Lambda accepts for an SQS queue.
fn check_batching(op: &str, queue_arn: &str, spec: &EventSourceMappingSpec) -> Result<()> {
    let max = if queue_arn.ends_with(".fifo") {
        10
    } else {
        10000
    };
    if !(1..=max).contains(&spec.batch_size) {
        return Err(invalid(
            op,
            format!(
                "BatchSize {} is outside 1-{max} for this queue",
                spec.batch_size
            ),
        ));
    }
    if !(0..=300).contains(&spec.maximum_batching_window_seconds) {
        return Err(invalid(
            op,
            format!(
                "MaximumBatchingWindowInSeconds {} is outside 0-300",
                spec.maximum_batching_window_seconds
            ),
        ));
    }
    if spec.batch_size > 10 && spec.maximum_batching_window_seconds == 0 {
        return Err(invalid(
            op,
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
        ));
    }
    Ok(())
}

/// `arn:aws:sqs:<this region>:<this account>:<name>`.
fn check_queue(w: &World, op: &str, queue_arn: &str) -> Result<()> {
    let prefix = format!("arn:aws:sqs:{}:{ACCOUNT}:", w.region);
    match queue_arn.strip_prefix(&prefix) {
        Some(name) if !name.is_empty() && !name.contains(':') => Ok(()),
        _ => Err(invalid(
            op,
            format!(
                "Unsupported event source {queue_arn}: an SQS queue of this account and region"
            ),
        )),
    }
}

pub(crate) async fn create(
    sim: &SimCloud,
    d: &Desired,
    spec: &EventSourceMappingSpec,
) -> Result<Observed> {
    let op = "CreateEventSourceMapping";
    let id = sim
        .call("lambda", op, |w, now| {
            let function = &spec.function_name;
            if w.get(Kind::LambdaFunction, function).is_none() {
                return Err(not_found(
                    op,
                    "ResourceNotFoundException",
                    format!("Function not found: arn:aws:lambda:{}:{ACCOUNT}:function:{function}", w.region),
                ));
            }
            check_queue(w, op, &spec.event_source_arn)?;
            check_batching(op, &spec.event_source_arn, spec)?;
            let existing = w.specs::<EventSourceMappingSpec>().find(|(_, m)| {
                m.function_name == *function && m.event_source_arn == spec.event_source_arn
            });
            if let Some((record, _)) = existing {
                return Err(terminal(
                    op,
                    "EventSourceMappingAlreadyExists",
                    format!(
                        "ResourceConflictException: An event source mapping with SQS arn (\" {} \") and function (\" {function} \") already exists. Please update or delete the existing mapping with UUID {}",
                        spec.event_source_arn, record.id
                    ),
                ));
            }
            let id = loop {
                let id = w.rng.uuid();
                if w.get(Kind::EventSourceMapping, &id).is_none() {
                    break id;
                }
            };
            let arn = format!(
                "arn:aws:lambda:{}:{ACCOUNT}:event-source-mapping:{id}",
                w.region
            );
            let ready = now + w.jittered(5.0, 1.0);
            w.insert(
                Kind::EventSourceMapping,
                &id,
                spec.clone().into(),
                d.tags.clone(),
                now,
            );
            if let Some(r) = w.get_mut(Kind::EventSourceMapping, &id) {
                r.arn = Some(arn);
                r.phase = Phase::Pending(ready);
            }
            Ok(id)
        })
        .await?;
    sim.snapshot(Kind::EventSourceMapping, &id)
}

/// One `UpdateEventSourceMapping` with the fields that differ. Refused while the mapping
/// is `Creating` or `Updating`: the change then waits for the next pass.
pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &EventSourceMappingSpec,
    have: &EventSourceMappingSpec,
) -> Result<Observed> {
    d.spec
        .check_immutable("UpdateEventSourceMapping", &o.spec)?;
    let id = o.id.as_str();
    if want != have {
        let op = "UpdateEventSourceMapping";
        let result = sim
            .call("lambda", op, |w, now| {
                let record = w
                    .get(Kind::EventSourceMapping, id)
                    .ok_or_else(|| missing(op, id))?;
                if !matches!(record.phase, Phase::Available) {
                    return Err(in_use(op, id));
                }
                let next = EventSourceMappingSpec {
                    batch_size: want.batch_size,
                    maximum_batching_window_seconds: want.maximum_batching_window_seconds,
                    enabled: want.enabled,
                    report_batch_item_failures: want.report_batch_item_failures,
                    ..have.clone()
                };
                check_batching(op, &next.event_source_arn, &next)?;
                let until = now + w.jittered(3.5, 1.5);
                if let Some(r) = w.get_mut(Kind::EventSourceMapping, id) {
                    r.spec = next.into();
                    r.phase = Phase::Pending(until);
                }
                Ok(())
            })
            .await;
        match result {
            Ok(()) | Err(CloudError::DependencyViolation { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    sync_tags(sim, Kind::EventSourceMapping, id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::EventSourceMapping, id)
}

pub(crate) async fn delete(sim: &SimCloud, id: &str) -> Result<()> {
    let result = sim
        .call("lambda", "DeleteEventSourceMapping", |w, now| {
            let op = "DeleteEventSourceMapping";
            let gone_at = now + w.jittered(5.0, 1.0);
            let record = w
                .get_mut(Kind::EventSourceMapping, id)
                .ok_or_else(|| missing(op, id))?;
            match record.phase {
                Phase::Deleting(_) => Ok(()),
                Phase::Pending(_) => Err(in_use(op, id)),
                Phase::Available => {
                    record.phase = Phase::Deleting(gone_at);
                    Ok(())
                }
            }
        })
        .await;
    ok_if_missing(result)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::lambda_function::tests::{function_spec, lambda_role};
    use super::super::testkit::*;
    use crate::cloud::{CloudError, EventSourceMappingSpec, Kind, Provider, Spec, State};

    const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:hipaa-clinic-prod-payments";

    fn mapping(function: &str, batch_size: i32, window: i32) -> EventSourceMappingSpec {
        EventSourceMappingSpec {
            function_name: function.into(),
            event_source_arn: QUEUE.into(),
            batch_size,
            maximum_batching_window_seconds: window,
            enabled: true,
            report_batch_item_failures: true,
        }
    }

    #[tokio::test]
    async fn creating_then_enabled_updating_deferred_deleting_then_gone() {
        // Creating 5 s ± 1 s at time_scale 0.05: 200–300 ms; Updating 100–250 ms.
        let sim = sim_at(0.05);
        let role = lambda_role(&sim, "hipaa-exec").await;
        let function = make(&sim, "fn", function_spec(&role, "", "").into()).await;
        let spec = mapping(&function.id, 10, 0);
        let created = make(&sim, "esm", spec.clone().into()).await;
        assert_eq!(created.id.len(), 36, "a UUID: {}", created.id);
        assert_eq!(
            created.arn,
            Some(format!(
                "arn:aws:lambda:us-east-1:123456789012:event-source-mapping:{}",
                created.id
            ))
        );
        assert_eq!(created.state, State::Pending, "Creating");
        let disabled = EventSourceMappingSpec {
            enabled: false,
            ..spec.clone()
        };
        // Creating: the update is refused (ResourceInUseException) and waits.
        let deferred = sim
            .update(&desired("esm", disabled.clone().into()), &created)
            .await
            .unwrap();
        assert_eq!(deferred.spec, spec.clone().into());
        let busy = sim
            .delete(Kind::EventSourceMapping, &created.id)
            .await
            .unwrap_err();
        assert!(
            matches!(busy, CloudError::DependencyViolation { .. }),
            "{busy}"
        );
        tokio::time::sleep(Duration::from_millis(350)).await;
        let enabled = observe_id(&sim, Kind::EventSourceMapping, &created.id)
            .await
            .unwrap();
        assert_eq!(enabled.state, State::Available);
        let updating = sim
            .update(&desired("esm", disabled.clone().into()), &enabled)
            .await
            .unwrap();
        assert_eq!(
            (updating.state, updating.spec),
            (State::Pending, disabled.into())
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        sim.delete(Kind::EventSourceMapping, &created.id)
            .await
            .unwrap();
        let deleting = observe_id(&sim, Kind::EventSourceMapping, &created.id)
            .await
            .unwrap();
        assert_eq!(deleting.state, State::Deleting);
        sim.delete(Kind::EventSourceMapping, &created.id)
            .await
            .expect("deleting a deleting mapping is fine");
        wait_gone(&sim, &created.id).await;
    }

    #[tokio::test]
    async fn one_mapping_per_function_and_queue_and_lambdas_batching_rules() {
        let sim = sim();
        let role = lambda_role(&sim, "hipaa-exec").await;
        let function = make(&sim, "fn", function_spec(&role, "", "").into()).await;
        make(&sim, "esm", mapping(&function.id, 10, 0).into()).await;
        // (spec, error code): each row one rule.
        let rows: Vec<(EventSourceMappingSpec, &str)> = vec![
            (
                mapping(&function.id, 10, 0),
                "EventSourceMappingAlreadyExists",
            ),
            (
                mapping(&function.id, 100, 0),
                "InvalidParameterValueException",
            ),
            (
                mapping(&function.id, 0, 0),
                "InvalidParameterValueException",
            ),
            (
                mapping(&function.id, 10, 301),
                "InvalidParameterValueException",
            ),
            (
                EventSourceMappingSpec {
                    event_source_arn: "arn:aws:sns:us-east-1:123456789012:topic".into(),
                    ..mapping(&function.id, 10, 0)
                },
                "InvalidParameterValueException",
            ),
            (mapping("hipaa-missing", 10, 0), "not_found"),
        ];
        for (spec, want) in rows {
            let err = sim
                .create(&desired("esm2", Spec::EventSourceMapping(spec.clone())))
                .await
                .unwrap_err();
            assert_eq!(code(&err), want, "{spec:?}: {err}");
        }
        // A batch over 10 with a window is fine.
        make(
            &sim,
            "esm3",
            EventSourceMappingSpec {
                event_source_arn: format!("{QUEUE}-2"),
                ..mapping(&function.id, 100, 5)
            }
            .into(),
        )
        .await;
    }
}
