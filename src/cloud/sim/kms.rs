//! KMS keys. `CreateKey` takes no idempotency token (a retried create makes a second key).
//! Delete is `ScheduleKeyDeletion` with the 7-day minimum window: the key stays, state
//! `Deleting` and `pending_deletion = true`, until 7 days × `time_scale` have passed;
//! update's `CancelKeyDeletion` (+ `EnableKey`, as a cancelled key comes back disabled)
//! brings it back. The key policy is modelled as the services it admits
//! (`PutKeyPolicy`).

use super::SimCloud;
use super::api::{CloudErrorExt, Result, not_found, sync_tags, terminal};
use super::world::{ACCOUNT, Phase, World};
use crate::cloud::{CloudError, Desired, Kind, KindSpec, KmsKeySpec, Observed};

const WEEK_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

pub(crate) async fn create(sim: &SimCloud, d: &Desired, spec: &KmsKeySpec) -> Result<Observed> {
    // AWS's default policy: the account administers the key, no service uses it.
    let created = KmsKeySpec {
        description: spec.description.clone(),
        rotation_enabled: false,
        service_principals: vec![],
        pending_deletion: false,
    };
    let id = sim
        .call("kms", "CreateKey", |w, now| {
            let id = w.rng.uuid();
            w.insert(
                Kind::KmsKey,
                &id,
                created.clone().into(),
                d.tags.clone(),
                now,
            );
            let arn = format!("arn:aws:kms:{}:{ACCOUNT}:key/{id}", w.region);
            if let Some(r) = w.get_mut(Kind::KmsKey, &id) {
                r.arn = Some(arn);
            }
            Ok(id)
        })
        .await?;
    if let Err(error) = reconcile(sim, &id, spec, &created).await {
        // The key exists: a retried CreateKey would make a second one.
        return sim
            .snapshot(Kind::KmsKey, &id)
            .map(|created| crate::cloud::settings_pending(created, &error));
    }
    sim.snapshot(Kind::KmsKey, &id)
}

pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &KmsKeySpec,
    have: &KmsKeySpec,
) -> Result<Observed> {
    reconcile(sim, &o.id, want, have).await?;
    sync_tags(sim, Kind::KmsKey, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::KmsKey, &o.id)
}

async fn reconcile(sim: &SimCloud, id: &str, want: &KmsKeySpec, have: &KmsKeySpec) -> Result<()> {
    if have.pending_deletion && !want.pending_deletion {
        sim.call("kms", "CancelKeyDeletion", |w, _| {
            let key = key(w, "CancelKeyDeletion", id)?;
            *key.phase = Phase::Available;
            key.spec.pending_deletion = false;
            Ok(())
        })
        .await?;
        sim.call("kms", "EnableKey", |w, _| {
            key(w, "EnableKey", id).map(|_| ())
        })
        .await?;
    }
    if want.description != have.description {
        let op = "UpdateKeyDescription";
        sim.call("kms", op, |w, _| {
            usable(w, op, id).map(|key| key.spec.description.clone_from(&want.description))
        })
        .await?;
    }
    let sorted = |items: &[String]| {
        let mut items = items.to_vec();
        items.sort();
        items.dedup();
        items
    };
    let services = sorted(&want.service_principals);
    if services != sorted(&have.service_principals) {
        let op = "PutKeyPolicy";
        sim.call("kms", op, |w, _| {
            usable(w, op, id).map(|key| key.spec.service_principals = services)
        })
        .await?;
    }
    if want.rotation_enabled != have.rotation_enabled {
        let op = if want.rotation_enabled {
            "EnableKeyRotation"
        } else {
            "DisableKeyRotation"
        };
        sim.call("kms", op, |w, _| {
            usable(w, op, id).map(|key| key.spec.rotation_enabled = want.rotation_enabled)
        })
        .await?;
    }
    Ok(())
}

/// A key's record, its parts borrowed.
struct Key<'a> {
    phase: &'a mut Phase,
    spec: &'a mut KmsKeySpec,
    arn: &'a str,
}

fn key<'a>(w: &'a mut World, op: &str, id: &str) -> Result<Key<'a>> {
    let missing = || {
        not_found(
            op,
            "NotFoundException",
            format!("Key '{id}' does not exist"),
        )
    };
    let record = w.get_mut(Kind::KmsKey, id).ok_or_else(missing)?;
    Ok(Key {
        spec: KmsKeySpec::of_mut(&mut record.spec).ok_or_else(missing)?,
        phase: &mut record.phase,
        arn: record.arn.as_deref().unwrap_or_default(),
    })
}

/// The key, refused while it is pending deletion (as AWS does).
fn usable<'a>(w: &'a mut World, op: &str, id: &str) -> Result<Key<'a>> {
    let key = key(w, op, id)?;
    if key.spec.pending_deletion {
        return Err(terminal(
            op,
            "KMSInvalidStateException",
            format!("{} is pending deletion.", key.arn),
        ));
    }
    Ok(key)
}

pub(crate) async fn delete(sim: &SimCloud, id: &str) -> Result<()> {
    let op = "ScheduleKeyDeletion";
    let result = sim
        .call("kms", op, |w, now| {
            let gone_at = now + w.scaled(WEEK_SECONDS);
            let key = usable(w, op, id)?;
            *key.phase = Phase::Deleting(gone_at);
            key.spec.pending_deletion = true;
            Ok(())
        })
        .await;
    match result {
        Err(CloudError::NotFound { .. }) => Ok(()),
        Err(e) if e.code() == Some("KMSInvalidStateException") => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::cloud::{Kind, KmsKeySpec, Provider, Spec, State};

    #[tokio::test]
    async fn key_has_uuid_id_and_arn_and_create_is_not_idempotent() {
        let sim = sim();
        let key = make(&sim, "key", key_spec(true)).await;
        assert_eq!(
            key.arn.as_deref(),
            Some(format!("arn:aws:kms:us-east-1:123456789012:key/{}", key.id).as_str())
        );
        assert_eq!(key.id.len(), 36);
        assert_eq!(
            key.spec,
            key_spec(true),
            "rotation enabled by a second call"
        );
        assert_eq!(count(&sim, "EnableKeyRotation"), 1);
        let again = sim.create(&desired("key", key_spec(true))).await.unwrap();
        assert_ne!(key.id, again.id, "KMS CreateKey has no client token");
    }

    #[tokio::test]
    async fn delete_schedules_deletion_hides_from_owned_and_cancel_brings_it_back() {
        let sim = sim();
        let key = make(&sim, "key", key_spec(true)).await;
        sim.delete(Kind::KmsKey, &key.id).await.unwrap();
        sim.delete(Kind::KmsKey, &key.id)
            .await
            .expect("scheduling twice is still success");
        let seen = observe_id(&sim, Kind::KmsKey, &key.id)
            .await
            .expect("the key stays for 7 days");
        assert_eq!(seen.state, State::Deleting);
        assert!(matches!(
            seen.spec,
            Spec::KmsKey(KmsKeySpec {
                pending_deletion: true,
                ..
            })
        ));
        assert!(
            sim.owned(&owner()).await.unwrap().is_empty(),
            "owned() no longer lists it"
        );
        sim.reset_calls();
        let back = sim
            .update(&desired("key", key_spec(true)), &seen)
            .await
            .unwrap();
        assert_eq!(ops(&sim), vec!["CancelKeyDeletion", "EnableKey"]);
        assert_eq!((back.state, back.spec), (State::Available, key_spec(true)));
    }
}
