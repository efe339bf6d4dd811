//! DynamoDB tables. The id is the table name; `Observed::arn` the table ARN. `CreateTable`
//! takes the keys, the billing mode and throughput, the KMS key (SSE with a customer
//! key), deletion protection and the tags; the table is `CREATING` (pending) and then
//! `ACTIVE`. AWS changes nothing of a table that is not `ACTIVE`, and point-in-time
//! recovery and TTL are separate calls: create returns the table `CREATING` without
//! them, the engine leaves a pending resource alone, and the first update once the table
//! is `ACTIVE` turns them on (the operator's status counts that as completing the
//! create, not as drift). No call waits for AWS.
//!
//! Observe reads a table with `DescribeTable` + `DescribeContinuousBackups` +
//! `DescribeTimeToLive` + `ListTagsOfResource` (backups and TTL are not asked of a table
//! being created or deleted: they read as off). A recorded or desired name is read
//! directly (found by its desired name: ours only when tagged with the owner); lookups
//! with neither list the tables named `hipaa-…` (`ListTables`) and read the tags of each
//! (`DescribeTable` for its ARN + `ListTagsOfResource`). On-demand tables report 0
//! capacity units whatever AWS describes.
//!
//! Updates change only what differs: `UpdateTable` for deletion protection, the KMS key
//! and the capacity (one call each: AWS takes one kind of change per call, and a capacity
//! change leaves the table `UPDATING` for a while), `UpdateContinuousBackups`, and
//! `UpdateTimeToLive` (off before another attribute goes on). What AWS refuses for now
//! is a dependency to wait out, retried on a later pass: a table not `ACTIVE`
//! (`ResourceInUseException` from any call but `CreateTable`, where it means the name is
//! taken), backups not yet available, a second TimeToLive change within the hour
//! (`ValidationException` "modified multiple times") and AWS's limit on billing-mode
//! switches (`LimitExceededException`). Delete turns deletion protection off first, then
//! `DeleteTable`: the table is `DELETING` until gone (`DeleteMode::Async`).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    PointInTimeRecoveryStatus, ProvisionedThroughput, ScalarAttributeType, SseSpecification,
    SseStatus, SseType, TableDescription, TableStatus, Tag, TimeToLiveSpecification,
    TimeToLiveStatus,
};

use super::{AwsCloud, match_lookups, missing_tags};
use crate::cloud::{
    CloudError, Desired, DynamoDbTableSpec, Kind, KindSpec, Lookup, Observed, Owned, Owner, State,
    TAG_NODE, TAG_OWNER,
};

/// Where the blueprint's names start (`blueprint::resource_name`): tables scanned for tags.
const NAME_PREFIX: &str = "hipaa-";

fn construction(operation: &str, error: impl std::fmt::Display) -> CloudError {
    CloudError::Terminal {
        operation: operation.into(),
        code: "ConstructionFailure".into(),
        message: error.to_string(),
    }
}

/// What AWS refuses only for now, as a dependency to wait out (see the module's notes).
fn retry_later(error: CloudError) -> CloudError {
    let CloudError::Terminal {
        operation,
        code,
        message,
    } = error
    else {
        return error;
    };
    let why = match code.as_str() {
        "ResourceInUseException" => "the table is being created, updated or deleted",
        "ContinuousBackupsUnavailableException" => "backups are not available yet",
        "ValidationException" if message.contains("modified multiple times") => {
            "AWS allows one TimeToLive change per table per hour"
        }
        "LimitExceededException" => {
            "AWS limits billing-mode switches per day and table operations at once"
        }
        _ => {
            return CloudError::Terminal {
                operation,
                code,
                message,
            };
        }
    };
    CloudError::DependencyViolation {
        operation,
        message: format!("{code}: {message} ({why}; retried on a later pass)"),
    }
}

/// `name:S|N|B` as an attribute definition and its key schema element.
fn key(
    spec: &str,
    key_type: KeyType,
) -> Result<(AttributeDefinition, KeySchemaElement), CloudError> {
    let (name, kind) = spec.split_once(':').unwrap_or((spec, ""));
    let kind = match kind {
        "S" => ScalarAttributeType::S,
        "N" => ScalarAttributeType::N,
        "B" => ScalarAttributeType::B,
        other => {
            return Err(CloudError::Terminal {
                operation: "CreateTable".into(),
                code: "ValidationException".into(),
                message: format!("key {spec}: the type {other:?} is not one of S, N, B"),
            });
        }
    };
    let definition = AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(|e| construction("CreateTable", e))?;
    let element = KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| construction("CreateTable", e))?;
    Ok((definition, element))
}

/// The key of `key_type` as `name:S|N|B` ("" when the table has none).
fn key_of(table: &TableDescription, key_type: KeyType) -> String {
    let Some(name) = table
        .key_schema()
        .iter()
        .find(|k| *k.key_type() == key_type)
        .map(|k| k.attribute_name())
    else {
        return String::new();
    };
    let kind = table
        .attribute_definitions()
        .iter()
        .find(|a| a.attribute_name() == name)
        .map(|a| a.attribute_type().as_str())
        .unwrap_or_default();
    format!("{name}:{kind}")
}

fn throughput(spec: &DynamoDbTableSpec) -> Result<ProvisionedThroughput, CloudError> {
    ProvisionedThroughput::builder()
        .read_capacity_units(spec.read_capacity_units)
        .write_capacity_units(spec.write_capacity_units)
        .build()
        .map_err(|e| construction("UpdateTable", e))
}

fn sse(kms_key_arn: &str) -> SseSpecification {
    if kms_key_arn.is_empty() {
        SseSpecification::builder().enabled(false).build()
    } else {
        SseSpecification::builder()
            .enabled(true)
            .sse_type(SseType::Kms)
            .kms_master_key_id(kms_key_arn)
            .build()
    }
}

fn dynamodb_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, CloudError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| construction("TagResource", e))
        })
        .collect()
}

async fn describe(cloud: &AwsCloud, name: &str) -> Result<TableDescription, CloudError> {
    let result = cloud
        .dynamodb
        .describe_table()
        .table_name(name)
        .send()
        .await;
    let output = cloud.done("dynamodb", "DescribeTable", result)?;
    output.table().cloned().ok_or_else(|| CloudError::NotFound {
        operation: "DescribeTable".into(),
        message: format!("ResourceNotFoundException: Table: {name} not found"),
    })
}

async fn tags_of(cloud: &AwsCloud, arn: &str) -> Result<BTreeMap<String, String>, CloudError> {
    let mut out = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let result = cloud
            .dynamodb
            .list_tags_of_resource()
            .resource_arn(arn)
            .set_next_token(token.clone())
            .send()
            .await;
        let page = cloud.done("dynamodb", "ListTagsOfResource", result)?;
        out.extend(
            page.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string())),
        );
        token = page
            .next_token()
            .filter(|t| !t.is_empty())
            .map(String::from);
        if token.is_none() {
            return Ok(out);
        }
    }
}

fn state_of(table: &TableDescription) -> State {
    match table.table_status() {
        Some(TableStatus::Creating) => State::Pending,
        Some(TableStatus::Deleting) => State::Deleting,
        _ => State::Available,
    }
}

/// A table as the engine sees it, from its description (+ backups, TTL and tags).
async fn with_description(
    cloud: &AwsCloud,
    table: TableDescription,
    tags: Option<BTreeMap<String, String>>,
) -> Result<Observed, CloudError> {
    let name = table.table_name().unwrap_or_default().to_string();
    let arn = table.table_arn().unwrap_or_default().to_string();
    let state = state_of(&table);
    let (point_in_time_recovery, ttl_attribute) = if state == State::Available {
        let result = cloud
            .dynamodb
            .describe_continuous_backups()
            .table_name(&name)
            .send()
            .await;
        let backups = cloud.done("dynamodb", "DescribeContinuousBackups", result)?;
        let pitr = backups
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|d| d.point_in_time_recovery_status())
            == Some(&PointInTimeRecoveryStatus::Enabled);
        let result = cloud
            .dynamodb
            .describe_time_to_live()
            .table_name(&name)
            .send()
            .await;
        let ttl = cloud.done("dynamodb", "DescribeTimeToLive", result)?;
        let ttl = ttl
            .time_to_live_description()
            .filter(|d| {
                matches!(
                    d.time_to_live_status(),
                    Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                )
            })
            .and_then(|d| d.attribute_name())
            .unwrap_or_default()
            .to_string();
        (pitr, ttl)
    } else {
        (false, String::new())
    };
    let billing_mode = table
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .map(|b| b.as_str().to_string())
        // Tables created provisioned have no summary.
        .unwrap_or_else(|| BillingMode::Provisioned.as_str().to_string());
    let on_demand = billing_mode == BillingMode::PayPerRequest.as_str();
    let capacity = table.provisioned_throughput();
    let units = |read: bool| {
        if on_demand {
            return 0;
        }
        capacity
            .and_then(|c| {
                if read {
                    c.read_capacity_units()
                } else {
                    c.write_capacity_units()
                }
            })
            .unwrap_or_default()
    };
    let kms_key_arn = table
        .sse_description()
        .filter(|s| {
            matches!(s.status(), Some(SseStatus::Enabled | SseStatus::Enabling))
                && s.sse_type() == Some(&SseType::Kms)
        })
        .and_then(|s| s.kms_master_key_arn())
        .unwrap_or_default()
        .to_string();
    let tags = match tags {
        Some(tags) => tags,
        None => tags_of(cloud, &arn).await?,
    };
    Ok(Observed {
        id: name.clone(),
        arn: Some(arn),
        state,
        spec: DynamoDbTableSpec {
            name,
            partition_key: key_of(&table, KeyType::Hash),
            sort_key: key_of(&table, KeyType::Range),
            billing_mode,
            read_capacity_units: units(true),
            write_capacity_units: units(false),
            kms_key_arn,
            point_in_time_recovery,
            deletion_protection: table.deletion_protection_enabled().unwrap_or(false),
            ttl_attribute,
        }
        .into(),
        tags,
        attributes: BTreeMap::new(),
    })
}

async fn read(
    cloud: &AwsCloud,
    name: &str,
    tags: Option<BTreeMap<String, String>>,
) -> Result<Observed, CloudError> {
    let table = describe(cloud, name).await?;
    with_description(cloud, table, tags).await
}

/// The tables named `hipaa-…` tagged with `owner`: `ListTables` + `DescribeTable` and
/// `ListTagsOfResource` each.
async fn tagged(
    cloud: &AwsCloud,
    owner: &Owner,
) -> Result<Vec<(TableDescription, BTreeMap<String, String>)>, CloudError> {
    let mut names = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let result = cloud
            .dynamodb
            .list_tables()
            .set_exclusive_start_table_name(start.clone())
            .send()
            .await;
        let page = cloud.done("dynamodb", "ListTables", result)?;
        names.extend(
            page.table_names()
                .iter()
                .filter(|n| n.starts_with(NAME_PREFIX))
                .cloned(),
        );
        start = page
            .last_evaluated_table_name()
            .filter(|n| !n.is_empty())
            .map(String::from);
        if start.is_none() {
            break;
        }
    }
    let owner = owner.to_string();
    let mut out = Vec::new();
    for name in names {
        let table = match describe(cloud, &name).await {
            Ok(table) => table,
            Err(CloudError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        match tags_of(cloud, table.table_arn().unwrap_or_default()).await {
            Ok(tags) if tags.get(TAG_OWNER) == Some(&owner) => out.push((table, tags)),
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
        if let Some(name) = lookup.recorded_id.as_deref() {
            if found.iter().any(|o| o.id == name) {
                continue;
            }
            match read(cloud, name, None).await {
                Ok(table) => {
                    found.push(table);
                    continue;
                }
                Err(CloudError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let Some(name) = lookup
            .desired
            .as_ref()
            .and_then(DynamoDbTableSpec::of)
            .map(|t| t.name.clone())
        else {
            unnamed = true;
            continue;
        };
        if found.iter().any(|o| o.id == name) {
            continue;
        }
        match read(cloud, &name, None).await {
            // Found by name: ours only if tagged with the owner.
            Ok(table) if table.tags.get(TAG_OWNER) == Some(&owner_tag) => found.push(table),
            Ok(_) | Err(CloudError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    if unnamed {
        for (table, tags) in tagged(cloud, owner).await? {
            if !found
                .iter()
                .any(|o| Some(o.id.as_str()) == table.table_name())
            {
                found.push(with_description(cloud, table, Some(tags)).await?);
            }
        }
    }
    Ok(match_lookups(lookups, found))
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &DynamoDbTableSpec,
) -> Result<Observed, CloudError> {
    let (partition, hash) = key(&spec.partition_key, KeyType::Hash)?;
    let mut definitions = vec![partition];
    let mut schema = vec![hash];
    if !spec.sort_key.is_empty() {
        let (sort, range) = key(&spec.sort_key, KeyType::Range)?;
        definitions.push(sort);
        schema.push(range);
    }
    let on_demand = spec.billing_mode == BillingMode::PayPerRequest.as_str();
    let mut call = cloud
        .dynamodb
        .create_table()
        .table_name(&spec.name)
        .set_attribute_definitions(Some(definitions))
        .set_key_schema(Some(schema))
        .billing_mode(BillingMode::from(spec.billing_mode.as_str()))
        .deletion_protection_enabled(spec.deletion_protection)
        .set_tags(Some(dynamodb_tags(&desired.tags)?));
    if !on_demand {
        call = call.provisioned_throughput(throughput(spec)?);
    }
    if !spec.kms_key_arn.is_empty() {
        call = call.sse_specification(sse(&spec.kms_key_arn));
    }
    let output = cloud.done("dynamodb", "CreateTable", call.send().await)?;
    let table = output
        .table_description()
        .cloned()
        .ok_or_else(|| CloudError::Server {
            operation: "CreateTable".into(),
            message: "no table description in the response".into(),
        })?;
    let created = with_description(cloud, table, Some(desired.tags.clone())).await?;
    if created.state == State::Pending {
        // CREATING: point-in-time recovery and TTL go on with the first update once
        // ACTIVE (the engine leaves a pending resource alone until then).
        return Ok(created);
    }
    // ACTIVE at once (as moto makes it): complete it now.
    let have = DynamoDbTableSpec {
        point_in_time_recovery: false,
        ttl_attribute: String::new(),
        ..spec.clone()
    };
    reconcile(cloud, &spec.name, spec, &have).await?;
    read(cloud, &spec.name, Some(desired.tags.clone())).await
}

pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &DynamoDbTableSpec,
    have: &DynamoDbTableSpec,
) -> Result<Observed, CloudError> {
    desired
        .spec
        .check_immutable("CreateTable", &observed.spec)?;
    reconcile(cloud, &observed.id, want, have).await?;
    let missing = missing_tags(&desired.tags, &observed.tags);
    let mut tags = observed.tags.clone();
    if !missing.is_empty() {
        let result = cloud
            .dynamodb
            .tag_resource()
            .resource_arn(observed.arn.clone().unwrap_or_default())
            .set_tags(Some(dynamodb_tags(&missing)?))
            .send()
            .await;
        cloud
            .done("dynamodb", "TagResource", result)
            .map_err(retry_later)?;
        tags.extend(missing);
    }
    read(cloud, &observed.id, Some(tags)).await
}

async fn reconcile(
    cloud: &AwsCloud,
    name: &str,
    want: &DynamoDbTableSpec,
    have: &DynamoDbTableSpec,
) -> Result<(), CloudError> {
    if want.deletion_protection != have.deletion_protection {
        let result = cloud
            .dynamodb
            .update_table()
            .table_name(name)
            .deletion_protection_enabled(want.deletion_protection)
            .send()
            .await;
        cloud
            .done("dynamodb", "UpdateTable", result)
            .map_err(retry_later)?;
    }
    if want.kms_key_arn != have.kms_key_arn {
        let result = cloud
            .dynamodb
            .update_table()
            .table_name(name)
            .sse_specification(sse(&want.kms_key_arn))
            .send()
            .await;
        cloud
            .done("dynamodb", "UpdateTable", result)
            .map_err(retry_later)?;
    }
    let capacity = |t: &DynamoDbTableSpec| {
        (
            t.billing_mode.clone(),
            t.read_capacity_units,
            t.write_capacity_units,
        )
    };
    if capacity(want) != capacity(have) {
        let mut call = cloud.dynamodb.update_table().table_name(name);
        if want.billing_mode != have.billing_mode {
            call = call.billing_mode(BillingMode::from(want.billing_mode.as_str()));
        }
        if want.billing_mode != BillingMode::PayPerRequest.as_str() {
            call = call.provisioned_throughput(throughput(want)?);
        }
        cloud
            .done("dynamodb", "UpdateTable", call.send().await)
            .map_err(retry_later)?;
    }
    if want.point_in_time_recovery != have.point_in_time_recovery {
        let specification = PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(want.point_in_time_recovery)
            .build()
            .map_err(|e| construction("UpdateContinuousBackups", e))?;
        let result = cloud
            .dynamodb
            .update_continuous_backups()
            .table_name(name)
            .point_in_time_recovery_specification(specification)
            .send()
            .await;
        cloud
            .done("dynamodb", "UpdateContinuousBackups", result)
            .map_err(retry_later)?;
    }
    if want.ttl_attribute != have.ttl_attribute {
        if !have.ttl_attribute.is_empty() {
            set_ttl(cloud, name, &have.ttl_attribute, false).await?;
        }
        if !want.ttl_attribute.is_empty() {
            set_ttl(cloud, name, &want.ttl_attribute, true).await?;
        }
    }
    Ok(())
}

async fn set_ttl(
    cloud: &AwsCloud,
    name: &str,
    attribute: &str,
    enabled: bool,
) -> Result<(), CloudError> {
    let specification = TimeToLiveSpecification::builder()
        .enabled(enabled)
        .attribute_name(attribute)
        .build()
        .map_err(|e| construction("UpdateTimeToLive", e))?;
    let result = cloud
        .dynamodb
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(specification)
        .send()
        .await;
    cloud
        .done("dynamodb", "UpdateTimeToLive", result)
        .map(|_| ())
        .map_err(retry_later)
}

/// Turns deletion protection off when it is on, then deletes. A table already deleting
/// is success (a missing one too, by the dispatcher).
pub(crate) async fn delete(cloud: &AwsCloud, name: &str) -> Result<(), CloudError> {
    let table = describe(cloud, name).await?;
    if state_of(&table) == State::Deleting {
        return Ok(());
    }
    if table.deletion_protection_enabled() == Some(true) {
        let result = cloud
            .dynamodb
            .update_table()
            .table_name(name)
            .deletion_protection_enabled(false)
            .send()
            .await;
        cloud
            .done("dynamodb", "UpdateTable", result)
            .map_err(retry_later)?;
    }
    let result = cloud.dynamodb.delete_table().table_name(name).send().await;
    cloud
        .done("dynamodb", "DeleteTable", result)
        .map(|_| ())
        .map_err(retry_later)
}

/// The owner's tables named `hipaa-…` (deleting ones included: they still hold what
/// they use).
pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    Ok(tagged(cloud, owner)
        .await?
        .into_iter()
        .map(|(table, tags)| Owned {
            kind: Kind::DynamoDbTable,
            id: table.table_name().unwrap_or_default().to_string(),
            node: tags.get(TAG_NODE).cloned().unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_aws_refuses_for_now_is_retried_later_and_the_rest_stays_terminal() {
        let terminal = |code: &str, message: &str| CloudError::Terminal {
            operation: "Op".into(),
            code: code.into(),
            message: message.into(),
        };
        // (code, message, retried later): each row one refusal.
        let rows = [
            ("ResourceInUseException", "Table is being created", true),
            ("ContinuousBackupsUnavailableException", "later", true),
            (
                "ValidationException",
                "Time to live has been modified multiple times within a fixed interval",
                true,
            ),
            ("LimitExceededException", "once in 1 day(s)", true),
            (
                "ValidationException",
                "TimeToLive is already enabled",
                false,
            ),
            ("AccessDeniedException", "no", false),
        ];
        for (code, message, later) in rows {
            let error = retry_later(terminal(code, message));
            assert_eq!(error.retryable(), later, "{code}: {message}");
            assert!(error.to_string().contains(message), "{error}");
        }
    }

    #[test]
    fn keys_are_name_and_scalar_type() {
        let (definition, element) = key("paymentId:S", KeyType::Hash).unwrap();
        assert_eq!(definition.attribute_name(), "paymentId");
        assert_eq!(definition.attribute_type(), &ScalarAttributeType::S);
        assert_eq!(element.key_type(), &KeyType::Hash);
        assert!(key("paymentId", KeyType::Hash).is_err());
        assert!(key("paymentId:X", KeyType::Range).is_err());
    }
}
