//! IAM roles (global: no region in the ARN). The name is unique per account
//! (`EntityAlreadyExists`); the trust policy names one service, the inline policy the
//! allowed actions. Delete removes the inline policy first (AWS refuses to delete a role
//! that still has one: `DeleteConflict`).

use super::SimCloud;
use super::api::{Result, dependency, immutable, not_found, ok_if_missing, sync_tags, terminal};
use super::world::{ACCOUNT, Record, World};
use crate::cloud::{Desired, IamRoleSpec, Kind, Observed, Spec};

pub(crate) async fn create(sim: &SimCloud, d: &Desired) -> Result<Observed> {
    let Spec::IamRole(IamRoleSpec {
        name,
        trusted_service,
        ..
    }) = &d.spec
    else {
        unreachable!("dispatched by kind")
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
            let spec = Spec::IamRole(IamRoleSpec {
                name: name.clone(),
                trusted_service: trusted_service.clone(),
                allowed_actions: vec![],
            });
            w.insert(Kind::IamRole, &id, spec, d.tags.clone(), now);
            if let Some(r) = w.get_mut(Kind::IamRole, &id) {
                r.arn = Some(format!("arn:aws:iam::{ACCOUNT}:role/{name}"));
            }
            Ok(id)
        })
        .await?;
    let created = sim.snapshot(Kind::IamRole, &id)?;
    reconcile(sim, &id, &d.spec, &created.spec).await?;
    sim.snapshot(Kind::IamRole, &id)
}

/// A role by id (`AROA…`) or by name.
fn find<'a>(w: &'a World, id_or_name: &str) -> Option<&'a Record> {
    w.get(Kind::IamRole, id_or_name).or_else(|| {
        w.of_kind(Kind::IamRole).find(
            |r| matches!(&r.spec, Spec::IamRole(IamRoleSpec { name, .. }) if name == id_or_name),
        )
    })
}

fn role<'a>(w: &'a mut World, op: &str, id: &str) -> Result<(&'a mut String, &'a mut Vec<String>)> {
    let id = find(w, id).map(|r| r.id.clone()).unwrap_or_default();
    match w.get_mut(Kind::IamRole, &id).map(|r| &mut r.spec) {
        Some(Spec::IamRole(IamRoleSpec {
            trusted_service,
            allowed_actions,
            ..
        })) => Ok((trusted_service, allowed_actions)),
        _ => Err(not_found(
            op,
            "NoSuchEntity",
            format!("The role {id} cannot be found."),
        )),
    }
}

pub(crate) async fn update(sim: &SimCloud, d: &Desired, o: &Observed) -> Result<Observed> {
    if let (
        Spec::IamRole(IamRoleSpec { name: want, .. }),
        Spec::IamRole(IamRoleSpec { name: have, .. }),
    ) = (&d.spec, &o.spec)
        && want != have
    {
        return Err(immutable("UpdateRole", "name", have, want));
    }
    reconcile(sim, &o.id, &d.spec, &o.spec).await?;
    sync_tags(sim, Kind::IamRole, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::IamRole, &o.id)
}

async fn reconcile(sim: &SimCloud, id: &str, want: &Spec, have: &Spec) -> Result<()> {
    let (
        Spec::IamRole(IamRoleSpec {
            trusted_service: want_trust,
            allowed_actions: want_actions,
            ..
        }),
        Spec::IamRole(IamRoleSpec {
            trusted_service: have_trust,
            allowed_actions: have_actions,
            ..
        }),
    ) = (want, have)
    else {
        return Ok(());
    };
    if want_trust != have_trust {
        let op = "UpdateAssumeRolePolicy";
        sim.call("iam", op, |w, _| {
            role(w, op, id).map(|(trust, _)| trust.clone_from(want_trust))
        })
        .await?;
    }
    let sorted = |a: &[String]| {
        let mut a = a.to_vec();
        a.sort();
        a.dedup();
        a
    };
    let actions = sorted(want_actions);
    if actions != sorted(have_actions) {
        let op = if actions.is_empty() {
            "DeleteRolePolicy"
        } else {
            "PutRolePolicy"
        };
        sim.call("iam", op, |w, _| {
            role(w, op, id).map(|(_, current)| *current = actions)
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
                role(w, op, id).map(|(_, actions)| !actions.is_empty())
            })
            .await?;
        if has_policy {
            let op = "DeleteRolePolicy";
            sim.call("iam", op, |w, _| {
                role(w, op, id).map(|(_, actions)| actions.clear())
            })
            .await?;
        }
        sim.call("iam", "DeleteRole", |w, _| {
            let op = "DeleteRole";
            let (_, actions) = role(w, op, id)?;
            if !actions.is_empty() {
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
