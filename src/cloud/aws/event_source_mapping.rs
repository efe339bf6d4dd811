//! Event source mappings (a Lambda function polling an SQS queue). The id is the mapping's
//! UUID; `Observed::arn` its ARN (`…:event-source-mapping:<uuid>`).
//!
//! `CreateEventSourceMapping` takes the function's name, the queue, the batching, whether
//! it is enabled, `ReportBatchItemFailures` and the ownership tags (mappings carry tags
//! since November 2024). One mapping per function and queue: Lambda refuses a second
//! (`ResourceConflictException`, reported as `EventSourceMappingAlreadyExists`). State:
//! `Creating`, `Enabling`, `Disabling` and `Updating` are `Pending`; `Enabled` and
//! `Disabled` available; `Deleting` is `Deleting` (delete is asynchronous). Lambda
//! reports the state, not the `Enabled` flag: while the mapping is changing state,
//! `enabled` is what was asked (the lookup's desired spec, else `true`).
//!
//! Observe: `GetEventSourceMapping` + `ListTags` per recorded id; else
//! `ListEventSourceMappings` for the desired function and queue (or every mapping of a
//! `hipaa-…` function, as `owned` does) and `ListTags` of each, matched by the ownership
//! tags. Update is one `UpdateEventSourceMapping` with the fields that differ; Lambda
//! refuses it while the mapping is `Creating` or `Updating` (`ResourceInUseException`):
//! the change then waits for the next pass. A delete refused because the mapping is
//! already `Deleting` succeeds.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_lambda::types::{EventSourceMappingConfiguration, FunctionResponseType};

use super::lambda_function::{done_unless_busy, retry_later};
use super::{AwsCloud, match_lookups, missing_tags};
use crate::cloud::{
    CloudError, Desired, EventSourceMappingSpec, Kind, KindSpec, Lookup, Observed, Owned, Owner,
    Spec, State, TAG_NODE, TAG_OWNER,
};

/// The mappings of functions the operator names (`hipaa-…`).
const FUNCTION_PREFIX: &str = "hipaa-";

/// The function's name in a function ARN (`arn:aws:lambda:…:function:<name>[:qualifier]`).
fn function_name(arn: &str) -> String {
    arn.split_once(":function:")
        .map(|(_, rest)| rest.split(':').next().unwrap_or(rest))
        .unwrap_or(arn)
        .to_string()
}

fn to_observed(
    mapping: &EventSourceMappingConfiguration,
    tags: BTreeMap<String, String>,
    asked: Option<&EventSourceMappingSpec>,
) -> Observed {
    let lambda_state = mapping.state().unwrap_or("Enabled");
    let state = match lambda_state {
        "Enabled" | "Disabled" => State::Available,
        "Deleting" => State::Deleting,
        _ => State::Pending,
    };
    let enabled = match lambda_state {
        "Enabled" | "Enabling" => true,
        "Disabled" | "Disabling" => false,
        _ => asked.is_none_or(|a| a.enabled),
    };
    let mut attributes = BTreeMap::from([("state".to_string(), lambda_state.to_string())]);
    if let Some(reason) = mapping.state_transition_reason() {
        attributes.insert("stateTransitionReason".into(), reason.to_string());
    }
    Observed {
        id: mapping.uuid().unwrap_or_default().to_string(),
        arn: mapping.event_source_mapping_arn().map(String::from),
        state,
        spec: Spec::EventSourceMapping(EventSourceMappingSpec {
            function_name: function_name(mapping.function_arn().unwrap_or_default()),
            event_source_arn: mapping.event_source_arn().unwrap_or_default().to_string(),
            batch_size: mapping.batch_size().unwrap_or_default(),
            maximum_batching_window_seconds: mapping
                .maximum_batching_window_in_seconds()
                .unwrap_or_default(),
            enabled,
            report_batch_item_failures: mapping
                .function_response_types()
                .contains(&FunctionResponseType::ReportBatchItemFailures),
        }),
        tags,
        attributes,
    }
}

async fn tags_of(
    cloud: &AwsCloud,
    mapping: &EventSourceMappingConfiguration,
) -> Result<BTreeMap<String, String>, CloudError> {
    let Some(arn) = mapping.event_source_mapping_arn() else {
        return Ok(BTreeMap::new());
    };
    let result = cloud.lambda.list_tags().resource(arn).send().await;
    let output = cloud.done("lambda", "ListTags", result)?;
    Ok(output
        .tags()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

/// `GetEventSourceMapping` + `ListTags`.
async fn read(
    cloud: &AwsCloud,
    id: &str,
    asked: Option<&EventSourceMappingSpec>,
) -> Result<Observed, CloudError> {
    let result = cloud
        .lambda
        .get_event_source_mapping()
        .uuid(id)
        .send()
        .await;
    let output = cloud.done("lambda", "GetEventSourceMapping", result)?;
    let mapping = EventSourceMappingConfiguration::builder()
        .set_uuid(output.uuid().map(String::from))
        .set_state(output.state().map(String::from))
        .set_state_transition_reason(output.state_transition_reason().map(String::from))
        .set_event_source_mapping_arn(output.event_source_mapping_arn().map(String::from))
        .set_function_arn(output.function_arn().map(String::from))
        .set_event_source_arn(output.event_source_arn().map(String::from))
        .set_batch_size(output.batch_size())
        .set_maximum_batching_window_in_seconds(output.maximum_batching_window_in_seconds())
        .set_function_response_types(Some(output.function_response_types().to_vec()))
        .build();
    let tags = match tags_of(cloud, &mapping).await {
        Ok(tags) => tags,
        // Deleted between the two calls.
        Err(CloudError::NotFound { .. }) => BTreeMap::new(),
        Err(e) => return Err(e),
    };
    Ok(to_observed(&mapping, tags, asked))
}

/// Mappings (of `function` and `queue` when given, else of every `hipaa-…` function)
/// tagged with `owner`, with their tags.
async fn tagged(
    cloud: &AwsCloud,
    owner: &Owner,
    function: Option<&str>,
    queue: Option<&str>,
) -> Result<Vec<(EventSourceMappingConfiguration, BTreeMap<String, String>)>, CloudError> {
    let owner = owner.to_string();
    let mappings = super::paginate(|marker| {
        let call = cloud
            .lambda
            .list_event_source_mappings()
            .set_function_name(function.map(String::from))
            .set_event_source_arn(queue.map(String::from))
            .set_marker(marker);
        async move {
            let page = cloud.done("lambda", "ListEventSourceMappings", call.send().await)?;
            let ours = page
                .event_source_mappings()
                .iter()
                .filter(|m| {
                    function_name(m.function_arn().unwrap_or_default()).starts_with(FUNCTION_PREFIX)
                })
                .cloned()
                .collect();
            Ok((ours, page.next_marker().map(String::from)))
        }
    })
    .await?;
    let mut out = Vec::new();
    for mapping in mappings {
        let tags = match tags_of(cloud, &mapping).await {
            Ok(tags) => tags,
            Err(CloudError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        if tags.get(TAG_OWNER) == Some(&owner) {
            out.push((mapping, tags));
        }
    }
    Ok(out)
}

pub(crate) async fn observe(
    cloud: &AwsCloud,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>, CloudError> {
    let mut found: Vec<Observed> = Vec::new();
    for lookup in lookups {
        let asked = lookup.desired.as_ref().and_then(EventSourceMappingSpec::of);
        if let Some(id) = lookup.recorded_id.as_deref() {
            match read(cloud, id, asked).await {
                Ok(mapping) => {
                    if !found.iter().any(|o| o.id == mapping.id) {
                        found.push(mapping);
                    }
                    continue;
                }
                Err(CloudError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let (function, queue) = match asked {
            Some(a) if !a.function_name.is_empty() => (
                Some(a.function_name.as_str()),
                Some(a.event_source_arn.as_str()).filter(|q| !q.is_empty()),
            ),
            _ => (None, None),
        };
        for (mapping, tags) in tagged(cloud, owner, function, queue).await? {
            let id = mapping.uuid().unwrap_or_default();
            if tags.get(TAG_NODE) == Some(&lookup.node) && !found.iter().any(|o| o.id == id) {
                found.push(to_observed(&mapping, tags, asked));
            }
        }
    }
    Ok(match_lookups(lookups, found))
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &EventSourceMappingSpec,
) -> Result<Observed, CloudError> {
    let tags: HashMap<String, String> = desired
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let response_types = if spec.report_batch_item_failures {
        vec![FunctionResponseType::ReportBatchItemFailures]
    } else {
        vec![]
    };
    let result = cloud
        .lambda
        .create_event_source_mapping()
        .function_name(&spec.function_name)
        .event_source_arn(&spec.event_source_arn)
        .batch_size(spec.batch_size)
        .maximum_batching_window_in_seconds(spec.maximum_batching_window_seconds)
        .enabled(spec.enabled)
        .set_function_response_types(Some(response_types))
        .set_tags(Some(tags))
        .send()
        .await;
    let output = match cloud.done("lambda", "CreateEventSourceMapping", result) {
        Ok(output) => output,
        // One mapping per function and queue: refused, never retried as "in progress".
        Err(CloudError::Terminal {
            operation,
            code,
            message,
        }) if code == "ResourceConflictException" => {
            return Err(CloudError::Terminal {
                operation,
                code: "EventSourceMappingAlreadyExists".into(),
                message: format!("{code}: {message}"),
            });
        }
        Err(e) => return Err(retry_later(e)),
    };
    let id = output.uuid().unwrap_or_default().to_string();
    read(cloud, &id, Some(spec)).await
}

/// One `UpdateEventSourceMapping` with the fields that differ; refused as busy, the
/// change waits for the next pass.
pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &EventSourceMappingSpec,
    have: &EventSourceMappingSpec,
) -> Result<Observed, CloudError> {
    desired
        .spec
        .check_immutable("UpdateEventSourceMapping", &observed.spec)?;
    let id = observed.id.as_str();
    let mut call = cloud.lambda.update_event_source_mapping().uuid(id);
    let mut changed = false;
    if want.batch_size != have.batch_size {
        call = call.batch_size(want.batch_size);
        changed = true;
    }
    if want.maximum_batching_window_seconds != have.maximum_batching_window_seconds {
        call = call.maximum_batching_window_in_seconds(want.maximum_batching_window_seconds);
        changed = true;
    }
    if want.enabled != have.enabled {
        call = call.enabled(want.enabled);
        changed = true;
    }
    if want.report_batch_item_failures != have.report_batch_item_failures {
        let types = if want.report_batch_item_failures {
            vec![FunctionResponseType::ReportBatchItemFailures]
        } else {
            vec![]
        };
        call = call.set_function_response_types(Some(types));
        changed = true;
    }
    if changed {
        done_unless_busy(cloud.done("lambda", "UpdateEventSourceMapping", call.send().await))?;
    }
    let missing = missing_tags(&desired.tags, &observed.tags);
    if !missing.is_empty()
        && let Some(arn) = observed.arn.as_deref()
    {
        let result = cloud
            .lambda
            .tag_resource()
            .resource(arn)
            .set_tags(Some(missing.into_iter().collect()))
            .send()
            .await;
        cloud.done("lambda", "TagResource", result)?;
    }
    read(cloud, id, Some(want)).await
}

/// `DeleteEventSourceMapping`; refused because the mapping is already `Deleting`, it
/// succeeds (a mapping still `Creating` or `Updating` waits: retryable).
pub(crate) async fn delete(cloud: &AwsCloud, id: &str) -> Result<(), CloudError> {
    let result = cloud
        .lambda
        .delete_event_source_mapping()
        .uuid(id)
        .send()
        .await;
    match cloud
        .done("lambda", "DeleteEventSourceMapping", result)
        .map_err(retry_later)
    {
        Ok(_) => Ok(()),
        Err(busy @ CloudError::DependencyViolation { .. }) => match read(cloud, id, None).await {
            Ok(mapping) if mapping.state == State::Deleting => Ok(()),
            Err(CloudError::NotFound { .. }) => Ok(()),
            _ => Err(busy),
        },
        Err(e) => Err(e),
    }
}

pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    Ok(tagged(cloud, owner, None, None)
        .await?
        .into_iter()
        .map(|(mapping, tags)| Owned {
            kind: Kind::EventSourceMapping,
            id: mapping.uuid().unwrap_or_default().to_string(),
            node: tags.get(TAG_NODE).cloned().unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_name_comes_from_its_arn_without_a_qualifier() {
        // (function ARN, name): each row one shape.
        let rows = [
            (
                "arn:aws:lambda:us-east-1:123456789012:function:hipaa-a-b-poller",
                "hipaa-a-b-poller",
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:hipaa-x:live",
                "hipaa-x",
            ),
            ("hipaa-bare", "hipaa-bare"),
        ];
        for (arn, name) in rows {
            assert_eq!(function_name(arn), name, "{arn}");
        }
    }

    #[test]
    fn lambda_states_map_to_the_engines_and_enabled_follows_the_state() {
        let mapping = |state: &str| {
            EventSourceMappingConfiguration::builder()
                .uuid("u")
                .state(state)
                .build()
        };
        let asked_disabled = EventSourceMappingSpec {
            enabled: false,
            ..EventSourceMappingSpec::default()
        };
        // (Lambda's state, the engine's, enabled when disabled was asked): each row one state.
        let rows = [
            ("Creating", State::Pending, false),
            ("Enabling", State::Pending, true),
            ("Enabled", State::Available, true),
            ("Disabling", State::Pending, false),
            ("Disabled", State::Available, false),
            ("Updating", State::Pending, false),
            ("Deleting", State::Deleting, false),
        ];
        for (lambda, engine, enabled) in rows {
            let seen = to_observed(&mapping(lambda), BTreeMap::new(), Some(&asked_disabled));
            assert_eq!(seen.state, engine, "{lambda}");
            let Spec::EventSourceMapping(spec) = &seen.spec else {
                panic!("{lambda}")
            };
            assert_eq!(spec.enabled, enabled, "{lambda}");
        }
    }
}
