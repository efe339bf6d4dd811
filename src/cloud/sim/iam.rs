//! IAM roles (global: no region in the ARN). The name is unique per account
//! (`EntityAlreadyExists`); the trust policy names one service, the inline policy the
//! allowed statements (actions on resources). Delete removes the inline policy first (AWS refuses to delete a role
//! that still has one: `DeleteConflict`).

use super::SimCloud;
use super::api::{Result, dependency, not_found, ok_if_missing, sync_tags, terminal};
use super::world::{ACCOUNT, Record, World};
use crate::cloud::{Desired, IamRoleSpec, Kind, Observed, normalized_statements};

pub(crate) async fn create(sim: &SimCloud, d: &Desired, spec: &IamRoleSpec) -> Result<Observed> {
    let name = &spec.name;
    let created = IamRoleSpec {
        statements: vec![],
        ..spec.clone()
    };
    let id = sim
        .call("iam", "CreateRole", |w, now| {
            let op = "CreateRole";
            let valid = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
            if name.is_empty() || name.len() > 64 || !name.chars().all(valid) {
                return Err(terminal(
                    op,
                    "ValidationError",
                    format!("invalid role name '{name}'"),
                ));
            }
            if find(w, name).is_some() {
                return Err(terminal(
                    op,
                    "EntityAlreadyExists",
                    format!("Role with name {name} already exists."),
                ));
            }
            let id = loop {
                let id = format!("AROA{}", w.rng.upper_alnum(17));
                if w.get(Kind::IamRole, &id).is_none() {
                    break id;
                }
            };
            w.insert(
                Kind::IamRole,
                &id,
                created.clone().into(),
                d.tags.clone(),
                now,
            );
            if let Some(r) = w.get_mut(Kind::IamRole, &id) {
                r.arn = Some(format!("arn:aws:iam::{ACCOUNT}:role/{name}"));
            }
            Ok(id)
        })
        .await?;
    reconcile(sim, &id, spec, &created).await?;
    sim.snapshot(Kind::IamRole, &id)
}

/// A role by id (`AROA…`) or by name.
fn find<'a>(w: &'a World, id_or_name: &str) -> Option<&'a Record> {
    w.get(Kind::IamRole, id_or_name).or_else(|| {
        w.specs::<IamRoleSpec>()
            .find(|(_, role)| role.name == id_or_name)
            .map(|(r, _)| r)
    })
}

fn role<'a>(w: &'a mut World, op: &str, id: &str) -> Result<&'a mut IamRoleSpec> {
    let id = find(w, id).map(|r| r.id.clone()).unwrap_or_default();
    w.spec_mut::<IamRoleSpec>(&id).ok_or_else(|| {
        not_found(
            op,
            "NoSuchEntity",
            format!("The role {id} cannot be found."),
        )
    })
}

pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &IamRoleSpec,
    have: &IamRoleSpec,
) -> Result<Observed> {
    d.spec.check_immutable("UpdateRole", &o.spec)?;
    reconcile(sim, &o.id, want, have).await?;
    sync_tags(sim, Kind::IamRole, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::IamRole, &o.id)
}

async fn reconcile(sim: &SimCloud, id: &str, want: &IamRoleSpec, have: &IamRoleSpec) -> Result<()> {
    if want.trusted_service != have.trusted_service {
        let op = "UpdateAssumeRolePolicy";
        sim.call("iam", op, |w, _| {
            role(w, op, id).map(|role| role.trusted_service.clone_from(&want.trusted_service))
        })
        .await?;
    }
    let statements = normalized_statements(&want.statements);
    if statements != normalized_statements(&have.statements) {
        let op = if statements.is_empty() {
            "DeleteRolePolicy"
        } else {
            "PutRolePolicy"
        };
        sim.call("iam", op, |w, _| {
            role(w, op, id).map(|role| role.statements = statements)
        })
        .await?;
    }
    Ok(())
}

pub(crate) async fn delete(sim: &SimCloud, id: &str) -> Result<()> {
    let result = async {
        let op = "ListRolePolicies";
        let has_policy = sim
            .call("iam", op, |w, _| {
                role(w, op, id).map(|role| !role.statements.is_empty())
            })
            .await?;
        if has_policy {
            let op = "DeleteRolePolicy";
            sim.call("iam", op, |w, _| {
                role(w, op, id).map(|role| role.statements.clear())
            })
            .await?;
        }
        sim.call("iam", "DeleteRole", |w, _| {
            let op = "DeleteRole";
            if !role(w, op, id)?.statements.is_empty() {
                return Err(dependency(
                    op,
                    "DeleteConflict: Cannot delete entity, must delete policies first.",
                ));
            }
            let real = find(w, id).map(|r| r.id.clone()).unwrap_or_default();
            w.remove(&real);
            Ok(())
        })
        .await
    };
    ok_if_missing(result.await)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::cloud::{Kind, Provider};

    #[tokio::test]
    async fn role_id_arn_duplicate_name_and_delete_with_policy() {
        let sim = sim();
        let role = make(&sim, "role", role_spec("flow-logs", &["logs:PutLogEvents"])).await;
        assert!(
            role.id.starts_with("AROA") && role.id.len() == 21,
            "{}",
            role.id
        );
        assert_eq!(
            role.arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/flow-logs")
        );
        assert_eq!(role.spec, role_spec("flow-logs", &["logs:PutLogEvents"]));
        let err = sim
            .create(&desired("role2", role_spec("flow-logs", &[])))
            .await
            .unwrap_err();
        assert_eq!(code(&err), "EntityAlreadyExists");
        sim.reset_calls();
        sim.delete(Kind::IamRole, &role.id).await.unwrap();
        assert_eq!(
            ops(&sim),
            vec!["DeleteRole", "DeleteRolePolicy", "ListRolePolicies"]
        );
        sim.delete(Kind::IamRole, &role.id)
            .await
            .expect("missing role: success");
    }
}
