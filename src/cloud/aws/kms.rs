//! KMS keys: `CreateKey` (description, tags; no idempotency token, so a retried create makes
//! a second key) then `EnableKeyRotation`. The id is the KeyId, the ARN the KeyArn.
//!
//! KMS has no tag filter: observe reads recorded keys with `DescribeKey` +
//! `GetKeyRotationStatus` + `ListResourceTags` (3 calls a key), and finds unrecorded keys
//! with a paginated `ListKeys` and one `ListResourceTags` per customer key in the region
//! (cost: 1 + N calls, N = keys in the account/region; AWS-managed keys that refuse
//! `ListResourceTags` are skipped). Delete is `ScheduleKeyDeletion` (7 days): the key then
//! observes as `Deleting` with `pending_deletion`, and update's `CancelKeyDeletion` +
//! `EnableKey` bring it back. `owned` leaves keys pending deletion out.

use std::collections::BTreeMap;

use aws_sdk_kms::types::{KeyMetadata, KeyState, Tag};

use super::{AwsCloud, match_lookups, missing_tags};
use crate::cloud::{
    CloudError, Desired, Kind, KmsKeySpec, Lookup, Observed, Owned, Owner, State, TAG_NODE,
    TAG_OWNER,
};

fn kms_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, CloudError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| CloudError::Terminal {
                    operation: "TagResource".into(),
                    code: "ConstructionFailure".into(),
                    message: e.to_string(),
                })
        })
        .collect()
}

/// The key's tags; `None` when KMS refuses to list them (AWS-managed keys).
async fn tags_of(
    cloud: &AwsCloud,
    key_id: &str,
) -> Result<Option<BTreeMap<String, String>>, CloudError> {
    let mut out = BTreeMap::new();
    let mut marker: Option<String> = None;
    loop {
        let result = cloud
            .kms
            .list_resource_tags()
            .key_id(key_id)
            .set_marker(marker.clone())
            .send()
            .await;
        let page = match cloud.done("kms", "ListResourceTags", result) {
            Ok(page) => page,
            Err(CloudError::Terminal { code, .. }) if code == "AccessDeniedException" => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        for t in page.tags() {
            out.insert(t.tag_key().to_string(), t.tag_value().to_string());
        }
        marker = page
            .next_marker()
            .filter(|m| page.truncated() && !m.is_empty())
            .map(String::from);
        if marker.is_none() {
            return Ok(Some(out));
        }
    }
}

async fn describe_key(cloud: &AwsCloud, key_id: &str) -> Result<KeyMetadata, CloudError> {
    let result = cloud.kms.describe_key().key_id(key_id).send().await;
    let output = cloud.done("kms", "DescribeKey", result)?;
    output
        .key_metadata()
        .cloned()
        .ok_or_else(|| CloudError::NotFound {
            operation: "DescribeKey".into(),
            message: format!("NotFoundException: Key '{key_id}' does not exist"),
        })
}

/// A key as the engine sees it: `DescribeKey` + `GetKeyRotationStatus` (+ tags when not given).
async fn read(
    cloud: &AwsCloud,
    key_id: &str,
    tags: Option<BTreeMap<String, String>>,
) -> Result<Observed, CloudError> {
    let meta = describe_key(cloud, key_id).await?;
    with_meta(cloud, meta, tags).await
}

/// [`read`] with the key's metadata already described.
async fn with_meta(
    cloud: &AwsCloud,
    meta: KeyMetadata,
    tags: Option<BTreeMap<String, String>>,
) -> Result<Observed, CloudError> {
    let pending_deletion = meta.key_state() == Some(&KeyState::PendingDeletion);
    let rotation_enabled = if pending_deletion {
        // AWS refuses GetKeyRotationStatus on a key pending deletion (KMSInvalidStateException).
        false
    } else {
        let result = cloud
            .kms
            .get_key_rotation_status()
            .key_id(meta.key_id())
            .send()
            .await;
        match cloud.done("kms", "GetKeyRotationStatus", result) {
            Ok(output) => output.key_rotation_enabled(),
            Err(CloudError::Terminal { code, .. }) if code == "KMSInvalidStateException" => false,
            Err(e) => return Err(e),
        }
    };
    let tags = match tags {
        Some(tags) => tags,
        None => tags_of(cloud, meta.key_id()).await?.unwrap_or_default(),
    };
    Ok(Observed {
        id: meta.key_id().to_string(),
        arn: meta.arn().map(String::from),
        state: if pending_deletion {
            State::Deleting
        } else {
            State::Available
        },
        spec: KmsKeySpec {
            description: meta.description().unwrap_or_default().to_string(),
            rotation_enabled,
            pending_deletion,
        }
        .into(),
        tags,
        attributes: BTreeMap::new(),
    })
}

/// Customer keys tagged with `owner`, with their tags: `ListKeys` + `ListResourceTags` each.
async fn tagged(
    cloud: &AwsCloud,
    owner: &Owner,
) -> Result<Vec<(String, BTreeMap<String, String>)>, CloudError> {
    let owner = owner.to_string();
    let mut ids = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let result = cloud
            .kms
            .list_keys()
            .set_marker(marker.clone())
            .send()
            .await;
        let page = cloud.done("kms", "ListKeys", result)?;
        ids.extend(
            page.keys()
                .iter()
                .filter_map(|k| k.key_id().map(String::from)),
        );
        marker = page
            .next_marker()
            .filter(|m| page.truncated() && !m.is_empty())
            .map(String::from);
        if marker.is_none() {
            break;
        }
    }
    let mut out = Vec::new();
    for id in ids {
        match tags_of(cloud, &id).await {
            Ok(Some(tags)) if tags.get(TAG_OWNER) == Some(&owner) => out.push((id, tags)),
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
    let mut found: Vec<Observed> = Vec::new();
    for id in lookups.iter().filter_map(|l| l.recorded_id.as_deref()) {
        match read(cloud, id, None).await {
            Ok(key) => found.push(key),
            Err(CloudError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let unresolved = lookups.iter().any(|l| {
        !l.recorded_id
            .as_ref()
            .is_some_and(|id| found.iter().any(|o| &o.id == id))
    });
    if unresolved {
        let mut by_tag = Vec::new();
        for (id, tags) in tagged(cloud, owner).await? {
            if found.iter().any(|o| o.id == id) {
                continue;
            }
            let meta = describe_key(cloud, &id).await?;
            by_tag.push((
                meta.creation_date().map(|d| d.secs()).unwrap_or_default(),
                id,
                meta,
                tags,
            ));
        }
        // Oldest first, as match_lookups expects.
        by_tag.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        for (_, _, meta, tags) in by_tag {
            found.push(with_meta(cloud, meta, Some(tags)).await?);
        }
    }
    Ok(match_lookups(lookups, found))
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &KmsKeySpec,
) -> Result<Observed, CloudError> {
    let result = cloud
        .kms
        .create_key()
        .description(&spec.description)
        .set_tags(Some(kms_tags(&desired.tags)?))
        .send()
        .await;
    let output = cloud.done("kms", "CreateKey", result)?;
    let meta = output.key_metadata().ok_or_else(|| CloudError::Server {
        operation: "CreateKey".into(),
        message: "no key metadata in the response".into(),
    })?;
    let created = KmsKeySpec {
        description: spec.description.clone(),
        rotation_enabled: false,
        pending_deletion: false,
    };
    reconcile(cloud, meta.key_id(), spec, &created).await?;
    read(cloud, meta.key_id(), Some(desired.tags.clone())).await
}

pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &KmsKeySpec,
    have: &KmsKeySpec,
) -> Result<Observed, CloudError> {
    reconcile(cloud, &observed.id, want, have).await?;
    let missing = missing_tags(&desired.tags, &observed.tags);
    if !missing.is_empty() {
        let result = cloud
            .kms
            .tag_resource()
            .key_id(&observed.id)
            .set_tags(Some(kms_tags(&missing)?))
            .send()
            .await;
        cloud.done("kms", "TagResource", result)?;
    }
    let mut tags = observed.tags.clone();
    tags.extend(missing);
    read(cloud, &observed.id, Some(tags)).await
}

async fn reconcile(
    cloud: &AwsCloud,
    id: &str,
    want: &KmsKeySpec,
    have: &KmsKeySpec,
) -> Result<(), CloudError> {
    // A key whose deletion is cancelled comes back disabled and with its rotation setting.
    let mut have_rot = have.rotation_enabled;
    if have.pending_deletion && !want.pending_deletion {
        let result = cloud.kms.cancel_key_deletion().key_id(id).send().await;
        cloud.done("kms", "CancelKeyDeletion", result)?;
        let result = cloud.kms.enable_key().key_id(id).send().await;
        cloud.done("kms", "EnableKey", result)?;
        let result = cloud.kms.get_key_rotation_status().key_id(id).send().await;
        have_rot = cloud
            .done("kms", "GetKeyRotationStatus", result)?
            .key_rotation_enabled();
    }
    if want.description != have.description {
        let result = cloud
            .kms
            .update_key_description()
            .key_id(id)
            .description(&want.description)
            .send()
            .await;
        cloud.done("kms", "UpdateKeyDescription", result)?;
    }
    if want.rotation_enabled != have_rot {
        if want.rotation_enabled {
            let result = cloud.kms.enable_key_rotation().key_id(id).send().await;
            cloud.done("kms", "EnableKeyRotation", result)?;
        } else {
            let result = cloud.kms.disable_key_rotation().key_id(id).send().await;
            cloud.done("kms", "DisableKeyRotation", result)?;
        }
    }
    Ok(())
}

pub(crate) async fn delete(cloud: &AwsCloud, id: &str) -> Result<(), CloudError> {
    let result = cloud
        .kms
        .schedule_key_deletion()
        .key_id(id)
        .pending_window_in_days(7)
        .send()
        .await;
    match cloud.done("kms", "ScheduleKeyDeletion", result) {
        Ok(_) => Ok(()),
        // Already pending deletion.
        Err(CloudError::Terminal { code, .. }) if code == "KMSInvalidStateException" => Ok(()),
        Err(e) => Err(e),
    }
}

pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    let mut out = Vec::new();
    for (id, tags) in tagged(cloud, owner).await? {
        let meta = match describe_key(cloud, &id).await {
            Ok(meta) => meta,
            Err(CloudError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        if meta.key_state() == Some(&KeyState::PendingDeletion) {
            continue;
        }
        out.push(Owned {
            kind: Kind::KmsKey,
            id,
            node: tags.get(TAG_NODE).cloned().unwrap_or_default(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::route_table::tests::{by_id, by_tag, cloud, desired, owner};
    use crate::cloud::{Kind, KmsKeySpec, Provider, Spec, State};

    fn key(rotation: bool) -> Spec {
        Spec::KmsKey(KmsKeySpec {
            description: "hipaa-operator test".into(),
            rotation_enabled: rotation,
            pending_deletion: false,
        })
    }

    #[tokio::test]
    async fn kms_key_against_moto() {
        let cloud = cloud().await;
        let owner = owner("kms");
        let d = desired(&owner, "key", key(true));
        let created = cloud.create(&d).await.unwrap();
        assert_eq!(created.spec, key(true));
        assert_eq!(created.tags, d.tags);
        assert!(created.arn.as_deref().unwrap().ends_with(&created.id));
        assert_eq!(
            by_id(&cloud, &owner, Kind::KmsKey, &created.id)
                .await
                .unwrap()
                .spec,
            key(true)
        );
        let seen = by_tag(&cloud, &owner, Kind::KmsKey, "key").await.unwrap();
        assert_eq!(
            (seen.id.as_str(), &seen.tags),
            (created.id.as_str(), &d.tags)
        );
        assert!(
            cloud
                .owned(&owner)
                .await
                .unwrap()
                .iter()
                .any(|o| o.id == created.id && o.node == "key")
        );

        let updated = cloud
            .update(&desired(&owner, "key", key(false)), &seen)
            .await
            .unwrap();
        assert_eq!(updated.spec, key(false));

        cloud.delete(Kind::KmsKey, &created.id).await.unwrap();
        cloud
            .delete(Kind::KmsKey, &created.id)
            .await
            .expect("scheduling twice: success");
        let pending = by_id(&cloud, &owner, Kind::KmsKey, &created.id)
            .await
            .unwrap();
        assert_eq!(pending.state, State::Deleting);
        assert!(matches!(
            pending.spec,
            Spec::KmsKey(KmsKeySpec {
                pending_deletion: true,
                ..
            })
        ));
        assert!(
            !cloud
                .owned(&owner)
                .await
                .unwrap()
                .iter()
                .any(|o| o.id == created.id),
            "pending deletion: not owned"
        );
        let back = cloud
            .update(&desired(&owner, "key", key(true)), &pending)
            .await
            .unwrap();
        assert_eq!((back.state, back.spec), (State::Available, key(true)));
    }
}
