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
//!
//! The key policy: the account administers the key (AWS's default statement) and the
//! spec's services may use it (statement `ServicesUseTheKey`); `PutKeyPolicy` writes it
//! after `CreateKey` (the account id comes from the new key's ARN) and whenever the
//! observed policy differs. Observe reads it with `GetKeyPolicy` (one call a key): any
//! other statement, or the account's missing, is reported as [`FOREIGN_KEY_POLICY`].

use std::collections::BTreeMap;

use aws_sdk_kms::types::{KeyMetadata, KeyState, Tag};

use serde_json::{Value, json};

use super::{AwsCloud, match_lookups, missing_tags};
use crate::cloud::{
    CloudError, Desired, FOREIGN_KEY_POLICY, Kind, KmsKeySpec, Lookup, Observed, Owned, Owner,
    State, TAG_NODE, TAG_OWNER, settings_pending,
};

/// The statement id of the services' use of the key.
const SERVICES_SID: &str = "ServicesUseTheKey";

/// What the services may do with the key: use it for their data, nothing else.
const SERVICE_ACTIONS: [&str; 7] = [
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
];

/// The account of a key's ARN (`arn:aws:kms:<region>:<account>:key/<id>`).
fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut items = items.to_vec();
    items.sort();
    items.dedup();
    items
}

/// The key policy the operator writes: the account administers the key (AWS's default
/// statement, without which the key could not be managed), the services use it.
fn key_policy(account: &str, services: &[String]) -> String {
    let mut statements = vec![json!({
        "Sid": "AccountAdministersTheKey",
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
        "Action": "kms:*",
        "Resource": "*",
    })];
    let services = sorted(services);
    if !services.is_empty() {
        statements.push(json!({
            "Sid": SERVICES_SID,
            "Effect": "Allow",
            "Principal": {"Service": services},
            "Action": SERVICE_ACTIONS,
            "Resource": "*",
        }));
    }
    json!({"Version": "2012-10-17", "Id": "hipaa-operator", "Statement": statements}).to_string()
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => vec![],
    }
}

/// The spec's `service_principals` as a policy shows them: the services of the operator's
/// statement, plus [`FOREIGN_KEY_POLICY`] when anything else differs from what
/// [`key_policy`] writes (a statement of another shape, the account's missing).
fn principals_of(policy: &str, account: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(policy).unwrap_or(Value::Null);
    let statements = match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Null => vec![],
        one => vec![one.clone()],
    };
    let root = format!("arn:aws:iam::{account}:root");
    let mut services = Vec::new();
    let mut administered = false;
    let mut foreign = false;
    for statement in &statements {
        let allows = statement["Effect"] == "Allow" && statement["Resource"] == "*";
        let aws = strings(&statement["Principal"]["AWS"]);
        let actions = sorted(&strings(&statement["Action"]));
        if allows && aws == [root.clone()] && actions == ["kms:*"] {
            administered = true;
        } else if allows
            && statement["Sid"] == SERVICES_SID
            && aws.is_empty()
            && actions == SERVICE_ACTIONS.map(String::from)
        {
            services.extend(strings(&statement["Principal"]["Service"]));
        } else {
            foreign = true;
        }
    }
    let mut out = sorted(&services);
    if foreign || !administered {
        out.push(FOREIGN_KEY_POLICY.to_string());
    }
    out
}

/// The key's policy, as [`principals_of`] reads it.
async fn policy_principals(
    cloud: &AwsCloud,
    meta: &KeyMetadata,
) -> Result<Vec<String>, CloudError> {
    let result = cloud
        .kms
        .get_key_policy()
        .key_id(meta.key_id())
        .policy_name("default")
        .send()
        .await;
    let output = cloud.done("kms", "GetKeyPolicy", result)?;
    Ok(principals_of(
        output.policy().unwrap_or_default(),
        account_of(meta.arn().unwrap_or_default()),
    ))
}

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
    let service_principals = if pending_deletion {
        Vec::new()
    } else {
        policy_principals(cloud, &meta).await?
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
            service_principals,
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
    // AWS's default policy: the account administers the key, no service uses it.
    let created = KmsKeySpec {
        description: spec.description.clone(),
        rotation_enabled: false,
        service_principals: vec![],
        pending_deletion: false,
    };
    let account = account_of(meta.arn().unwrap_or_default()).to_string();
    if let Err(error) = reconcile(cloud, meta.key_id(), &account, spec, &created).await {
        // The key exists: a retried CreateKey would make a second one.
        let observed = Observed {
            id: meta.key_id().to_string(),
            arn: meta.arn().map(String::from),
            state: State::Available,
            spec: created.into(),
            tags: desired.tags.clone(),
            attributes: BTreeMap::new(),
        };
        return Ok(settings_pending(observed, &error));
    }
    read(cloud, meta.key_id(), Some(desired.tags.clone())).await
}

pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &KmsKeySpec,
    have: &KmsKeySpec,
) -> Result<Observed, CloudError> {
    let account = account_of(observed.arn.as_deref().unwrap_or_default()).to_string();
    reconcile(cloud, &observed.id, &account, want, have).await?;
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
    account: &str,
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
    if sorted(&want.service_principals) != sorted(&have.service_principals) {
        let result = cloud
            .kms
            .put_key_policy()
            .key_id(id)
            .policy_name("default")
            .policy(key_policy(account, &want.service_principals))
            .send()
            .await;
        cloud.done("kms", "PutKeyPolicy", result)?;
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
    use crate::cloud::{FOREIGN_KEY_POLICY, Kind, KmsKeySpec, Provider, Spec, State};

    fn key(rotation: bool) -> Spec {
        Spec::KmsKey(KmsKeySpec {
            description: "hipaa-operator test".into(),
            rotation_enabled: rotation,
            service_principals: vec!["logs.us-east-1.amazonaws.com".into()],
            pending_deletion: false,
        })
    }

    #[test]
    fn the_policy_reads_back_as_its_services_and_anything_else_is_foreign() {
        let services = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ours = super::key_policy("111122223333", &services(&["sns.amazonaws.com", "logs.x"]));
        let with_extra = {
            let mut doc: serde_json::Value = serde_json::from_str(&ours).unwrap();
            doc["Statement"].as_array_mut().unwrap().push(serde_json::json!({
                "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"
            }));
            doc.to_string()
        };
        let without_account = {
            let mut doc: serde_json::Value = serde_json::from_str(&ours).unwrap();
            doc["Statement"].as_array_mut().unwrap().remove(0);
            doc.to_string()
        };
        // AWS's default policy (as CreateKey writes it), with its own statement id.
        let default = r#"{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;
        // Each row: a policy, and the services it reads back as.
        let rows: [(&str, &str, Vec<String>); 5] = [
            ("ours", &ours, services(&["logs.x", "sns.amazonaws.com"])),
            ("AWS's default", default, vec![]),
            (
                "a statement added",
                &with_extra,
                services(&["logs.x", "sns.amazonaws.com", FOREIGN_KEY_POLICY]),
            ),
            (
                "the account's removed",
                &without_account,
                services(&["logs.x", "sns.amazonaws.com", FOREIGN_KEY_POLICY]),
            ),
            (
                "another account's root",
                &super::key_policy("999999999999", &[]),
                services(&[FOREIGN_KEY_POLICY]),
            ),
        ];
        for (what, policy, want) in rows {
            assert_eq!(super::principals_of(policy, "111122223333"), want, "{what}");
        }
        assert_eq!(
            super::account_of("arn:aws:kms:us-east-1:111122223333:key/abc"),
            "111122223333"
        );
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
