//! IAM roles (global). The id is the role NAME (unique per account, what every IAM call
//! takes; the sim uses the `AROA…` RoleId but accepts the name too). `CreateRole` takes the
//! trust policy for `trusted_service` and the tags; `PutRolePolicy` adds the inline policy
//! `hipaa-operator` with exactly the spec's statements (each its actions on its resources).
//!
//! IAM has no tag filter: observe reads each role it can name (recorded id, else the
//! desired name) with `GetRole` (which returns tags) + `ListRolePolicies` + one
//! `GetRolePolicy` per inline policy; only lookups with neither fall back to a paginated
//! `ListRoles` + one `ListRoleTags` per role named `hipaa-…` (the blueprint's prefix).
//! Delete removes the inline policies first (AWS refuses otherwise: `DeleteConflict`).

use std::collections::BTreeMap;

use aws_sdk_iam::types::{Role, Tag};
use serde_json::{Value, json};

use super::{AwsCloud, match_lookups, missing_tags};
use crate::cloud::{
    CloudError, Desired, IamRoleSpec, Kind, KindSpec, Lookup, Observed, Owned, Owner,
    PolicyStatement, Spec, State, TAG_NODE, TAG_OWNER, normalized_statements,
};

const POLICY_NAME: &str = "hipaa-operator";
/// Roles the operator names (`hipaa-<namespace>-<name>-<suffix>`).
const NAME_PREFIX: &str = "hipaa-";

fn trust_policy(service: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    })
    .to_string()
}

fn statements_policy(statements: &[PolicyStatement]) -> String {
    let statements: Vec<Value> = statements
        .iter()
        .map(|s| json!({"Effect": "Allow", "Action": s.actions, "Resource": s.resources}))
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// IAM returns policy documents URL-encoded (RFC 3986).
fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse(document: &str) -> Value {
    serde_json::from_str(document)
        .or_else(|_| serde_json::from_str(&url_decode(document)))
        .unwrap_or(Value::Null)
}

fn statements(doc: &Value) -> Vec<&Value> {
    match &doc["Statement"] {
        Value::Array(items) => items.iter().collect(),
        Value::Null => vec![],
        one => vec![one],
    }
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

/// The (first) service the trust policy lets assume the role.
fn trusted_service(document: &str) -> String {
    let doc = parse(document);
    statements(&doc)
        .into_iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| strings(&s["Principal"]["Service"]))
        .next()
        .unwrap_or_default()
}

/// The Allow statements of a policy document.
fn allowed(document: &str) -> Vec<PolicyStatement> {
    let doc = parse(document);
    statements(&doc)
        .into_iter()
        .filter(|s| s["Effect"] == "Allow")
        .map(|s| PolicyStatement::new(&strings(&s["Action"]), &strings(&s["Resource"])))
        .collect()
}

fn iam_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, CloudError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| CloudError::Terminal {
                    operation: "TagRole".into(),
                    code: "ConstructionFailure".into(),
                    message: e.to_string(),
                })
        })
        .collect()
}

fn role_tags(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

async fn get_role(cloud: &AwsCloud, name: &str) -> Result<Role, CloudError> {
    let result = cloud.iam.get_role().role_name(name).send().await;
    let output = cloud.done("iam", "GetRole", result)?;
    output.role().cloned().ok_or_else(|| CloudError::NotFound {
        operation: "GetRole".into(),
        message: format!("NoSuchEntity: The role with name {name} cannot be found."),
    })
}

async fn policy_names(cloud: &AwsCloud, name: &str) -> Result<Vec<String>, CloudError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let result = cloud
            .iam
            .list_role_policies()
            .role_name(name)
            .set_marker(marker.clone())
            .send()
            .await;
        let page = cloud.done("iam", "ListRolePolicies", result)?;
        out.extend(page.policy_names().iter().cloned());
        marker = page
            .marker()
            .filter(|m| page.is_truncated() && !m.is_empty())
            .map(String::from);
        if marker.is_none() {
            return Ok(out);
        }
    }
}

/// A role as the engine sees it: its trust policy and the actions its inline policies allow.
async fn read(cloud: &AwsCloud, name: &str) -> Result<Observed, CloudError> {
    let role = get_role(cloud, name).await?;
    let mut allows = Vec::new();
    for policy in policy_names(cloud, role.role_name()).await? {
        let result = cloud
            .iam
            .get_role_policy()
            .role_name(role.role_name())
            .policy_name(&policy)
            .send()
            .await;
        let output = cloud.done("iam", "GetRolePolicy", result)?;
        allows.extend(allowed(output.policy_document()));
    }
    Ok(Observed {
        id: role.role_name().to_string(),
        arn: Some(role.arn().to_string()),
        state: State::Available,
        spec: Spec::IamRole(IamRoleSpec {
            name: role.role_name().to_string(),
            trusted_service: trusted_service(
                role.assume_role_policy_document().unwrap_or_default(),
            ),
            statements: normalized_statements(&allows),
        }),
        tags: role_tags(role.tags()),
        attributes: BTreeMap::from([("roleId".to_string(), role.role_id().to_string())]),
    })
}

/// Roles named `hipaa-…` tagged with `owner`: `ListRoles` + `ListRoleTags` each.
async fn tagged(
    cloud: &AwsCloud,
    owner: &Owner,
) -> Result<Vec<(String, BTreeMap<String, String>)>, CloudError> {
    let owner = owner.to_string();
    let mut names = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let result = cloud
            .iam
            .list_roles()
            .path_prefix("/")
            .set_marker(marker.clone())
            .send()
            .await;
        let page = cloud.done("iam", "ListRoles", result)?;
        names.extend(
            page.roles()
                .iter()
                .map(|r| r.role_name().to_string())
                .filter(|n| n.starts_with(NAME_PREFIX)),
        );
        marker = page
            .marker()
            .filter(|m| page.is_truncated() && !m.is_empty())
            .map(String::from);
        if marker.is_none() {
            break;
        }
    }
    let mut out = Vec::new();
    for name in names {
        let mut tags = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let result = cloud
                .iam
                .list_role_tags()
                .role_name(&name)
                .set_marker(marker.clone())
                .send()
                .await;
            let page = match cloud.done("iam", "ListRoleTags", result) {
                Ok(page) => page,
                Err(CloudError::NotFound { .. }) => break,
                Err(e) => return Err(e),
            };
            tags.extend(role_tags(page.tags()));
            marker = page
                .marker()
                .filter(|m| page.is_truncated() && !m.is_empty())
                .map(String::from);
            if marker.is_none() {
                break;
            }
        }
        if tags.get(TAG_OWNER) == Some(&owner) {
            out.push((name, tags));
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
        let desired_name = lookup
            .desired
            .as_ref()
            .and_then(IamRoleSpec::of)
            .map(|role| role.name.as_str());
        let mut seen = false;
        if let Some(id) = lookup.recorded_id.as_deref() {
            match read(cloud, id).await {
                Ok(role) => {
                    seen = true;
                    if !found.iter().any(|o| o.id == role.id) {
                        found.push(role);
                    }
                }
                Err(CloudError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if seen {
            continue;
        }
        match desired_name {
            Some(name) if !found.iter().any(|o| o.id == name) => match read(cloud, name).await {
                // Found by name: ours only if tagged with the owner.
                Ok(role) if role.tags.get(TAG_OWNER) == Some(&owner_tag) => found.push(role),
                Ok(_) | Err(CloudError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            },
            Some(_) => {}
            None => unnamed = true,
        }
    }
    if unnamed {
        for (name, _) in tagged(cloud, owner).await? {
            if !found.iter().any(|o| o.id == name) {
                found.push(read(cloud, &name).await?);
            }
        }
    }
    Ok(match_lookups(lookups, found))
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &IamRoleSpec,
) -> Result<Observed, CloudError> {
    let result = cloud
        .iam
        .create_role()
        .role_name(&spec.name)
        .assume_role_policy_document(trust_policy(&spec.trusted_service))
        .set_tags(Some(iam_tags(&desired.tags)?))
        .send()
        .await;
    cloud.done("iam", "CreateRole", result)?;
    let created = IamRoleSpec {
        statements: vec![],
        ..spec.clone()
    };
    reconcile(cloud, &spec.name, spec, &created).await?;
    read(cloud, &spec.name).await
}

pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &IamRoleSpec,
    have: &IamRoleSpec,
) -> Result<Observed, CloudError> {
    desired.spec.check_immutable("UpdateRole", &observed.spec)?;
    reconcile(cloud, &observed.id, want, have).await?;
    let missing = missing_tags(&desired.tags, &observed.tags);
    if !missing.is_empty() {
        let result = cloud
            .iam
            .tag_role()
            .role_name(&observed.id)
            .set_tags(Some(iam_tags(&missing)?))
            .send()
            .await;
        cloud.done("iam", "TagRole", result)?;
    }
    read(cloud, &observed.id).await
}

async fn reconcile(
    cloud: &AwsCloud,
    name: &str,
    want: &IamRoleSpec,
    have: &IamRoleSpec,
) -> Result<(), CloudError> {
    if want.trusted_service != have.trusted_service {
        let result = cloud
            .iam
            .update_assume_role_policy()
            .role_name(name)
            .policy_document(trust_policy(&want.trusted_service))
            .send()
            .await;
        cloud.done("iam", "UpdateAssumeRolePolicy", result)?;
    }
    let statements = normalized_statements(&want.statements);
    if statements != normalized_statements(&have.statements) {
        if statements.is_empty() {
            let result = cloud
                .iam
                .delete_role_policy()
                .role_name(name)
                .policy_name(POLICY_NAME)
                .send()
                .await;
            cloud.done("iam", "DeleteRolePolicy", result)?;
        } else {
            let result = cloud
                .iam
                .put_role_policy()
                .role_name(name)
                .policy_name(POLICY_NAME)
                .policy_document(statements_policy(&statements))
                .send()
                .await;
            cloud.done("iam", "PutRolePolicy", result)?;
        }
    }
    Ok(())
}

pub(crate) async fn delete(cloud: &AwsCloud, name: &str) -> Result<(), CloudError> {
    for policy in policy_names(cloud, name).await? {
        let result = cloud
            .iam
            .delete_role_policy()
            .role_name(name)
            .policy_name(&policy)
            .send()
            .await;
        cloud.done("iam", "DeleteRolePolicy", result)?;
    }
    let result = cloud.iam.delete_role().role_name(name).send().await;
    cloud.done("iam", "DeleteRole", result).map(|_| ())
}

pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    Ok(tagged(cloud, owner)
        .await?
        .into_iter()
        .map(|(name, tags)| Owned {
            kind: Kind::IamRole,
            id: name,
            node: tags.get(TAG_NODE).cloned().unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::route_table::tests::{by_id, by_tag, cloud, desired, owner};
    use crate::cloud::{
        IamRoleSpec, Kind, Lookup, PolicyStatement, Provider, Spec, normalized_statements,
    };

    fn role(name: &str, service: &str, actions: &[&str]) -> Spec {
        Spec::IamRole(IamRoleSpec {
            name: name.into(),
            trusted_service: service.into(),
            statements: vec![crate::cloud::PolicyStatement::new(
                actions,
                &[format!(
                    "arn:aws:logs:us-east-1:123456789012:log-group:/{name}:*"
                )],
            )],
        })
    }

    #[test]
    fn documents_parse_url_encoded_or_not() {
        let trust = super::trust_policy("vpc-flow-logs.amazonaws.com");
        assert_eq!(
            super::trusted_service(&trust),
            "vpc-flow-logs.amazonaws.com"
        );
        let encoded = trust
            .replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22")
            .replace(':', "%3A");
        assert_eq!(
            super::trusted_service(&encoded),
            "vpc-flow-logs.amazonaws.com"
        );
        // Statements come back in the normalized form, whatever order they were written in.
        let one = PolicyStatement {
            actions: vec!["b".into(), "a".into()],
            resources: vec!["arn:2".into(), "arn:1".into()],
        };
        let two = PolicyStatement::new(&["c"], &["*"]);
        let policy = super::statements_policy(&[two.clone(), one]);
        assert_eq!(
            normalized_statements(&super::allowed(&policy)),
            vec![PolicyStatement::new(&["a", "b"], &["arn:1", "arn:2"]), two]
        );
    }

    #[tokio::test]
    async fn iam_role_against_moto() {
        let cloud = cloud().await;
        let owner = owner("iam");
        let name = format!("hipaa-{}-flow-logs", owner.name);
        let spec = role(
            &name,
            "vpc-flow-logs.amazonaws.com",
            &["logs:CreateLogStream", "logs:PutLogEvents"],
        );
        let d = desired(&owner, "role", spec.clone());
        let created = cloud.create(&d).await.unwrap();
        assert_eq!(created.id, name);
        assert_eq!(created.spec, spec);
        assert_eq!(created.tags, d.tags);
        assert_eq!(
            created.arn.as_deref(),
            Some(format!("arn:aws:iam::123456789012:role/{name}").as_str())
        );
        assert_eq!(
            by_id(&cloud, &owner, Kind::IamRole, &name)
                .await
                .unwrap()
                .spec,
            spec
        );
        assert_eq!(
            by_tag(&cloud, &owner, Kind::IamRole, "role")
                .await
                .unwrap()
                .id,
            name
        );
        let named = Lookup {
            node: "role".into(),
            recorded_id: None,
            desired: Some(spec.clone()),
        };
        let seen = cloud
            .observe(Kind::IamRole, &owner, &[named])
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        assert!(
            cloud
                .owned(&owner)
                .await
                .unwrap()
                .iter()
                .any(|o| o.kind == Kind::IamRole && o.id == name)
        );

        let want = role(&name, "ec2.amazonaws.com", &["logs:PutLogEvents"]);
        let updated = cloud
            .update(&desired(&owner, "role", want.clone()), &seen)
            .await
            .unwrap();
        assert_eq!(updated.spec, want);
        cloud.delete(Kind::IamRole, &name).await.unwrap();
        cloud
            .delete(Kind::IamRole, &name)
            .await
            .expect("missing: success");
        assert!(by_id(&cloud, &owner, Kind::IamRole, &name).await.is_none());
    }
}
