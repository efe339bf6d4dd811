//! DynamoDB tables: the id is the name (unique per region: `ResourceInUseException`), the
//! ARN `arn:aws:dynamodb:<region>:<account>:table/<name>`. `CreateTable` (keys, billing
//! mode and throughput, KMS key, deletion protection, tags) -> `CREATING` (pending) for
//! 15 s ± 5 s, then `ACTIVE`; `DeleteTable` -> `DELETING` for 8 s ± 3 s, then gone. All
//! durations × `time_scale`.
//!
//! As on AWS, nothing changes on a table that is not `ACTIVE` (`ResourceInUseException`,
//! and `ContinuousBackupsUnavailableException` for point-in-time recovery: both
//! dependencies to wait out). Create returns the table `CREATING` without point-in-time
//! recovery or TTL; the engine does not change a pending resource, and once the table is
//! `ACTIVE` its update turns them on (the operator's status counts that as completing
//! the create, not as drift). TimeToLive changes once an hour per
//! table (one hour × `time_scale`; AWS's `ValidationException`, a dependency to wait out)
//! and is turned off before another attribute is turned on. A table with deletion
//! protection is refused by `DeleteTable`: delete turns the protection off first. Not
//! modelled: `UPDATING` after a throughput change, and AWS's limit on billing-mode
//! switches (four a day).

use super::SimCloud;
use super::api::{Result, dependency, not_found, sync_tags, terminal};
use super::world::{ACCOUNT, Phase, World};
use crate::cloud::{
    CloudError, Desired, DynamoDbTableSpec, Kind, KindSpec, KmsKeySpec, Observed, State,
};

/// How long AWS waits between two TimeToLive changes of a table, in (unscaled) seconds.
const TTL_INTERVAL_SECONDS: f64 = 3600.0;

fn valid_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// `name:S|N|B` (or "" where allowed) is a key AWS takes.
fn valid_key(key: &str, optional: bool) -> bool {
    if key.is_empty() {
        return optional;
    }
    key.split_once(':').is_some_and(|(name, kind)| {
        !name.is_empty() && name.len() <= 255 && ["S", "N", "B"].contains(&kind)
    })
}

fn validation(op: &str, message: impl Into<String>) -> CloudError {
    terminal(op, "ValidationException", message)
}

/// Keys, billing mode and throughput, and the KMS key, checked as `CreateTable` and
/// `UpdateTable` do.
fn check(w: &World, op: &str, spec: &DynamoDbTableSpec) -> Result<()> {
    if !valid_key(&spec.partition_key, false) || !valid_key(&spec.sort_key, true) {
        return Err(validation(
            op,
            "1 validation error detected: Value at 'attributeDefinitions' failed to satisfy constraint",
        ));
    }
    match spec.billing_mode.as_str() {
        "PAY_PER_REQUEST" => {
            if spec.read_capacity_units != 0 || spec.write_capacity_units != 0 {
                return Err(validation(
                    op,
                    "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ));
            }
        }
        "PROVISIONED" => {
            if spec.read_capacity_units < 1 || spec.write_capacity_units < 1 {
                return Err(validation(
                    op,
                    "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
                ));
            }
        }
        other => {
            return Err(validation(
                op,
                format!(
                    "1 validation error detected: Value '{other}' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]"
                ),
            ));
        }
    }
    let key = &spec.kms_key_arn;
    let usable = key.is_empty()
        || w.specs::<KmsKeySpec>()
            .any(|(r, k)| r.arn.as_deref() == Some(key.as_str()) && !k.pending_deletion);
    if !usable {
        return Err(validation(
            op,
            format!("KMSMasterKeyId {key} is not valid or is not accessible"),
        ));
    }
    Ok(())
}

/// The table, when it can be changed (`ACTIVE`): else `ResourceInUseException`, retryable.
fn active<'a>(w: &'a mut World, op: &str, name: &str) -> Result<&'a mut DynamoDbTableSpec> {
    let record = w
        .get_mut(Kind::DynamoDbTable, name)
        .ok_or_else(|| missing(op, name))?;
    match record.phase {
        Phase::Available => {}
        Phase::Pending(_) => {
            return Err(dependency(
                op,
                format!(
                    "ResourceInUseException: Attempt to change a resource which is still in use: Table is being created: {name}"
                ),
            ));
        }
        Phase::Deleting(_) => {
            return Err(dependency(
                op,
                format!(
                    "ResourceInUseException: Attempt to change a resource which is still in use: Table is being deleted: {name}"
                ),
            ));
        }
    }
    DynamoDbTableSpec::of_mut(&mut record.spec).ok_or_else(|| missing(op, name))
}

fn missing(op: &str, name: &str) -> CloudError {
    not_found(
        op,
        "ResourceNotFoundException",
        format!("Requested resource not found: Table: {name} not found"),
    )
}

pub(crate) async fn create(
    sim: &SimCloud,
    d: &Desired,
    spec: &DynamoDbTableSpec,
) -> Result<Observed> {
    let created = DynamoDbTableSpec {
        point_in_time_recovery: false,
        ttl_attribute: String::new(),
        ..spec.clone()
    };
    sim.call("dynamodb", "CreateTable", |w, now| {
        let op = "CreateTable";
        let name = &spec.name;
        if !valid_name(name) {
            return Err(validation(
                op,
                format!("1 validation error detected: Value '{name}' at 'tableName' failed to satisfy constraint"),
            ));
        }
        if w.get(Kind::DynamoDbTable, name).is_some() {
            return Err(terminal(
                op,
                "ResourceInUseException",
                format!("Table already exists: {name}"),
            ));
        }
        check(w, op, &created)?;
        let ready = now + w.jittered(15.0, 5.0);
        w.insert(
            Kind::DynamoDbTable,
            name,
            created.clone().into(),
            d.tags.clone(),
            now,
        );
        let arn = format!("arn:aws:dynamodb:{}:{ACCOUNT}:table/{name}", w.region);
        if let Some(r) = w.get_mut(Kind::DynamoDbTable, name) {
            r.arn = Some(arn);
            r.phase = Phase::Pending(ready);
        }
        Ok(())
    })
    .await?;
    sim.snapshot(Kind::DynamoDbTable, &spec.name)
}

pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &DynamoDbTableSpec,
    have: &DynamoDbTableSpec,
) -> Result<Observed> {
    d.spec.check_immutable("CreateTable", &o.spec)?;
    reconcile(sim, &o.id, want, have).await?;
    sync_tags(sim, Kind::DynamoDbTable, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::DynamoDbTable, &o.id)
}

/// `UpdateTable` for deletion protection, the key and the capacity (each its own call),
/// then `UpdateContinuousBackups` and `UpdateTimeToLive`.
async fn reconcile(
    sim: &SimCloud,
    name: &str,
    want: &DynamoDbTableSpec,
    have: &DynamoDbTableSpec,
) -> Result<()> {
    let op = "UpdateTable";
    if want.deletion_protection != have.deletion_protection {
        sim.call("dynamodb", op, |w, _| {
            active(w, op, name).map(|t| t.deletion_protection = want.deletion_protection)
        })
        .await?;
    }
    if want.kms_key_arn != have.kms_key_arn {
        sim.call("dynamodb", op, |w, _| {
            let mut next = active(w, op, name)?.clone();
            next.kms_key_arn.clone_from(&want.kms_key_arn);
            check(w, op, &next)?;
            *active(w, op, name)? = next;
            Ok(())
        })
        .await?;
    }
    let capacity = |t: &DynamoDbTableSpec| {
        (
            t.billing_mode.clone(),
            t.read_capacity_units,
            t.write_capacity_units,
        )
    };
    if capacity(want) != capacity(have) {
        sim.call("dynamodb", op, |w, _| {
            let mut next = active(w, op, name)?.clone();
            (
                next.billing_mode,
                next.read_capacity_units,
                next.write_capacity_units,
            ) = capacity(want);
            check(w, op, &next)?;
            *active(w, op, name)? = next;
            Ok(())
        })
        .await?;
    }
    if want.point_in_time_recovery != have.point_in_time_recovery {
        let op = "UpdateContinuousBackups";
        sim.call("dynamodb", op, |w, _| {
            let table = active(w, op, name).map_err(|e| match e {
                CloudError::DependencyViolation { operation, .. } => CloudError::DependencyViolation {
                    operation,
                    message: format!("ContinuousBackupsUnavailableException: Backups are being enabled for the table: {name}. Please retry later"),
                },
                other => other,
            })?;
            table.point_in_time_recovery = want.point_in_time_recovery;
            Ok(())
        })
        .await?;
    }
    if want.ttl_attribute != have.ttl_attribute {
        if !have.ttl_attribute.is_empty() {
            set_ttl(sim, name, "").await?;
        }
        if !want.ttl_attribute.is_empty() {
            set_ttl(sim, name, &want.ttl_attribute).await?;
        }
    }
    Ok(())
}

/// One `UpdateTimeToLive`: on with `attribute`, off with "". Refused within the hour after
/// the table's last change, and when turning on while another attribute is on.
async fn set_ttl(sim: &SimCloud, name: &str, attribute: &str) -> Result<()> {
    let op = "UpdateTimeToLive";
    sim.call("dynamodb", op, |w, now| {
        let key = (name.to_string(), "TimeToLive");
        let next_allowed = w.scaled(TTL_INTERVAL_SECONDS);
        if w.cooldowns.contains_key(&key) {
            return Err(dependency(
                op,
                "ValidationException: Time to live has been modified multiple times within a fixed interval (AWS allows one TimeToLive change per table per hour)",
            ));
        }
        let table = active(w, op, name)?;
        if !attribute.is_empty() && !table.ttl_attribute.is_empty() {
            let message = if table.ttl_attribute == attribute {
                "TimeToLive is already enabled".to_string()
            } else {
                format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName is {}",
                    table.ttl_attribute
                )
            };
            return Err(validation(op, message));
        }
        if attribute.is_empty() && table.ttl_attribute.is_empty() {
            return Err(validation(op, "TimeToLive is already disabled"));
        }
        table.ttl_attribute = attribute.to_string();
        w.cooldowns.insert(key, now + next_allowed);
        Ok(())
    })
    .await
}

/// Turns deletion protection off when it is on, then deletes: the table is `DELETING`
/// until gone. A table already deleting, or missing, is success.
pub(crate) async fn delete(sim: &SimCloud, name: &str) -> Result<()> {
    let op = "DescribeTable";
    let table = sim
        .call("dynamodb", op, |w, _| {
            Ok(w.get(Kind::DynamoDbTable, name).map(|r| {
                let protected =
                    DynamoDbTableSpec::of(&r.spec).is_some_and(|t| t.deletion_protection);
                (r.state(), protected)
            }))
        })
        .await?;
    let Some((state, protected)) = table else {
        return Ok(());
    };
    if state == State::Deleting {
        return Ok(());
    }
    if protected {
        let op = "UpdateTable";
        sim.call("dynamodb", op, |w, _| {
            active(w, op, name).map(|t| t.deletion_protection = false)
        })
        .await?;
    }
    let op = "DeleteTable";
    let result = sim
        .call("dynamodb", op, |w, now| {
            let gone_at = now + w.jittered(8.0, 3.0);
            let table = active(w, op, name)?;
            if table.deletion_protection {
                return Err(validation(
                    op,
                    "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
                ));
            }
            if let Some(r) = w.get_mut(Kind::DynamoDbTable, name) {
                r.phase = Phase::Deleting(gone_at);
            }
            Ok(())
        })
        .await;
    match result {
        Err(CloudError::NotFound { .. }) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testkit::*;
    use crate::cloud::sim::SimCloud;
    use crate::cloud::{DynamoDbTableSpec, Kind, Observed, Provider, Spec, State};

    fn table(name: &str, pitr: bool, ttl: &str) -> Spec {
        Spec::DynamoDbTable(DynamoDbTableSpec {
            name: name.into(),
            partition_key: "paymentId:S".into(),
            sort_key: String::new(),
            billing_mode: "PAY_PER_REQUEST".into(),
            read_capacity_units: 0,
            write_capacity_units: 0,
            kms_key_arn: String::new(),
            point_in_time_recovery: pitr,
            deletion_protection: true,
            ttl_attribute: ttl.into(),
        })
    }

    /// As the engine does it: create, wait (across passes) until the table is ACTIVE,
    /// then the first update turns on what AWS applies only to an ACTIVE table.
    async fn make_active(sim: &SimCloud, node: &str, spec: Spec) -> Observed {
        let made = make(sim, node, spec.clone()).await;
        let active = loop {
            let seen = observe_id(sim, Kind::DynamoDbTable, &made.id)
                .await
                .unwrap();
            if seen.state == State::Available {
                break seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        sim.update(&desired(node, spec), &active).await.unwrap()
    }

    #[tokio::test]
    async fn creating_then_active_and_only_then_backups_and_ttl() {
        // 15 s ± 5 s at 0.01: 100–200 ms.
        let sim = sim_at(0.01);
        let plain = make(&sim, "plain", table("hipaa-plain", false, "")).await;
        assert_eq!(plain.state, State::Pending, "returned while CREATING");
        assert_eq!(
            plain.arn.as_deref(),
            Some("arn:aws:dynamodb:us-east-1:123456789012:table/hipaa-plain")
        );
        // Create never waits: the table comes back CREATING, without PITR and TTL.
        let full = make(&sim, "full", table("hipaa-full", true, "expiresAt")).await;
        assert_eq!(full.state, State::Pending, "create returns at once");
        assert_eq!(full.spec, table("hipaa-full", false, ""));
        // Refused while CREATING, as AWS does: a dependency to wait out.
        let early = sim
            .update(
                &desired("full", table("hipaa-full", true, "expiresAt")),
                &full,
            )
            .await
            .unwrap_err();
        assert!(early.retryable(), "{early}");
        let full = make_active(&sim, "full2", table("hipaa-full2", true, "expiresAt")).await;
        assert_eq!(full.state, State::Available);
        assert_eq!(full.spec, table("hipaa-full2", true, "expiresAt"));
        let again = sim
            .create(&desired("full", table("hipaa-full", true, "expiresAt")))
            .await
            .unwrap_err();
        assert_eq!(code(&again), "ResourceInUseException");
        assert!(again.already_exists());
    }

    #[tokio::test]
    async fn a_second_ttl_change_within_the_hour_waits_and_is_retryable() {
        // One hour at 0.0001: 360 ms.
        let sim = sim_at(0.0001);
        let made = make_active(&sim, "t", table("hipaa-t", false, "expiresAt")).await;
        let off = table("hipaa-t", false, "");
        let err = sim
            .update(&desired("t", off.clone()), &made)
            .await
            .unwrap_err();
        assert!(
            err.retryable() && err.to_string().contains("modified multiple times"),
            "{err}"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        let updated = sim.update(&desired("t", off.clone()), &made).await.unwrap();
        assert_eq!(updated.spec, off);
    }

    #[tokio::test]
    async fn delete_turns_protection_off_then_the_table_is_deleting_then_gone() {
        let sim = sim_at(0.01);
        let made = make_active(&sim, "t", table("hipaa-t", true, "")).await;
        sim.reset_calls();
        sim.delete(Kind::DynamoDbTable, &made.id).await.unwrap();
        assert_eq!(
            ops(&sim),
            vec!["DeleteTable", "DescribeTable", "UpdateTable"]
        );
        let seen = observe_id(&sim, Kind::DynamoDbTable, &made.id)
            .await
            .unwrap();
        assert_eq!(seen.state, State::Deleting);
        sim.delete(Kind::DynamoDbTable, &made.id)
            .await
            .expect("deleting a deleting table is fine");
        wait_gone(&sim, &made.id).await;
        sim.delete(Kind::DynamoDbTable, &made.id)
            .await
            .expect("a missing table deletes fine");
    }

    #[tokio::test]
    async fn billing_mode_and_capacity_are_validated() {
        let sim = sim();
        let mut bad = table("hipaa-bad", false, "");
        if let Spec::DynamoDbTable(t) = &mut bad {
            t.read_capacity_units = 5;
        }
        let err = sim.create(&desired("bad", bad)).await.unwrap_err();
        assert_eq!(code(&err), "ValidationException", "capacity with on-demand");
        let mut keyless = table("hipaa-keyless", false, "");
        if let Spec::DynamoDbTable(t) = &mut keyless {
            t.partition_key = "id:X".into();
        }
        let err = sim.create(&desired("k", keyless)).await.unwrap_err();
        assert_eq!(code(&err), "ValidationException", "key type");
    }
}
