//! CloudWatch Logs log groups: the id is the name, unique per region
//! (`ResourceAlreadyExistsException`). `CreateLogGroup` takes the tags and the KMS key;
//! retention is a separate `PutRetentionPolicy` (0 = never expire), limited to the values
//! AWS accepts.

use super::SimCloud;
use super::api::{Result, not_found, ok_if_missing, sync_tags, terminal};
use super::world::{ACCOUNT, World};
use crate::cloud::{Desired, Kind, KmsKeySpec, LogGroupSpec, Observed, STREAMS_ARN};

const RETENTION_DAYS: [i32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

pub(crate) async fn create(sim: &SimCloud, d: &Desired, spec: &LogGroupSpec) -> Result<Observed> {
    let LogGroupSpec {
        name, kms_key_arn, ..
    } = spec;
    let created = LogGroupSpec {
        retention_days: 0,
        ..spec.clone()
    };
    sim.call("logs", "CreateLogGroup", |w, now| {
        let op = "CreateLogGroup";
        if name.is_empty() || name.len() > 512 {
            return Err(terminal(
                op,
                "InvalidParameterException",
                format!("invalid log group name '{name}'"),
            ));
        }
        if w.get(Kind::LogGroup, name).is_some() {
            return Err(terminal(
                op,
                "ResourceAlreadyExistsException",
                "The specified log group already exists",
            ));
        }
        check_key(w, op, kms_key_arn)?;
        w.insert(
            Kind::LogGroup,
            name,
            created.clone().into(),
            d.tags.clone(),
            now,
        );
        let arn = format!("arn:aws:logs:{}:{ACCOUNT}:log-group:{name}", w.region);
        if let Some(r) = w.get_mut(Kind::LogGroup, name) {
            r.attributes
                .insert(STREAMS_ARN.into(), format!("{arn}:log-stream:*"));
            r.arn = Some(arn);
        }
        Ok(())
    })
    .await?;
    reconcile(sim, name, spec, &created).await?;
    sim.snapshot(Kind::LogGroup, name)
}

/// An empty ARN, or a key that exists and is not pending deletion.
fn check_key(w: &World, op: &str, arn: &str) -> Result<()> {
    let usable = arn.is_empty()
        || w.specs::<KmsKeySpec>()
            .any(|(r, key)| r.arn.as_deref() == Some(arn) && !key.pending_deletion);
    if usable {
        Ok(())
    } else {
        Err(terminal(
            op,
            "InvalidParameterException",
            format!("Specified KMS key {arn} does not exist or is not allowed to be used"),
        ))
    }
}

pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &LogGroupSpec,
    have: &LogGroupSpec,
) -> Result<Observed> {
    d.spec.check_immutable("CreateLogGroup", &o.spec)?;
    reconcile(sim, &o.id, want, have).await?;
    sync_tags(sim, Kind::LogGroup, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::LogGroup, &o.id)
}

async fn reconcile(
    sim: &SimCloud,
    name: &str,
    want: &LogGroupSpec,
    have: &LogGroupSpec,
) -> Result<()> {
    if want.retention_days != have.retention_days {
        let days = want.retention_days;
        let op = if days == 0 {
            "DeleteRetentionPolicy"
        } else {
            "PutRetentionPolicy"
        };
        sim.call("logs", op, |w, _| {
            if days != 0 && !RETENTION_DAYS.contains(&days) {
                return Err(terminal(
                    op,
                    "InvalidParameterException",
                    format!("{days} is not a valid retention in days"),
                ));
            }
            group(w, op, name).map(|group| group.retention_days = days)
        })
        .await?;
    }
    if want.kms_key_arn != have.kms_key_arn {
        let key = &want.kms_key_arn;
        let op = if key.is_empty() {
            "DisassociateKmsKey"
        } else {
            "AssociateKmsKey"
        };
        sim.call("logs", op, |w, _| {
            check_key(w, op, key)?;
            group(w, op, name).map(|group| group.kms_key_arn.clone_from(key))
        })
        .await?;
    }
    Ok(())
}

fn group<'a>(w: &'a mut World, op: &str, name: &str) -> Result<&'a mut LogGroupSpec> {
    w.spec_mut::<LogGroupSpec>(name).ok_or_else(|| {
        not_found(
            op,
            "ResourceNotFoundException",
            "The specified log group does not exist.",
        )
    })
}

pub(crate) async fn delete(sim: &SimCloud, name: &str) -> Result<()> {
    let result = sim
        .call("logs", "DeleteLogGroup", |w, _| {
            group(w, "DeleteLogGroup", name)?;
            w.remove(name);
            Ok(())
        })
        .await;
    ok_if_missing(result)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::cloud::{Kind, Provider};

    #[tokio::test]
    async fn id_is_name_arn_follows_region_and_second_create_is_already_exists() {
        let sim = sim();
        let group = make(&sim, "logs", log_spec("/hipaa/flow", 365, "")).await;
        assert_eq!(group.id, "/hipaa/flow");
        assert_eq!(
            group.arn.as_deref(),
            Some("arn:aws:logs:us-east-1:123456789012:log-group:/hipaa/flow")
        );
        assert_eq!(group.spec, log_spec("/hipaa/flow", 365, ""));
        let err = sim
            .create(&desired("logs", log_spec("/hipaa/flow", 365, "")))
            .await
            .unwrap_err();
        assert_eq!(code(&err), "ResourceAlreadyExistsException");
    }

    #[tokio::test]
    async fn retention_and_key_are_validated() {
        let sim = sim();
        let err = sim
            .create(&desired("a", log_spec("/a", 42, "")))
            .await
            .unwrap_err();
        assert_eq!(
            code(&err),
            "InvalidParameterException",
            "42 days is not an allowed retention"
        );
        let err = sim
            .create(&desired(
                "b",
                log_spec("/b", 30, "arn:aws:kms:us-east-1:123456789012:key/nope"),
            ))
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidParameterException", "unknown key");
        let key = make(&sim, "key", key_spec(true)).await;
        sim.delete(Kind::KmsKey, &key.id).await.unwrap();
        let err = sim
            .create(&desired(
                "c",
                log_spec("/c", 30, key.arn.as_deref().unwrap()),
            ))
            .await
            .unwrap_err();
        assert_eq!(
            code(&err),
            "InvalidParameterException",
            "key pending deletion"
        );
    }
}
