//! `hipaa-operator plan`: what the engine would do for the objects of a manifest stream,
//! changing nothing. Objects are first checked and defaulted as the API server would.

use serde_json::{Value, json};

use crate::api::manifests::Checker;
use crate::api::{HipaaNetwork, PaymentPipeline};
use crate::cloud::Provider;
use crate::controller::stack::{Referenced, Stack, owner_of};
use crate::engine::{ActionKind, Engine, Records};

/// The plan for one object, or why there is none.
#[derive(Debug)]
pub struct ObjectPlan {
    /// `Kind/namespace/name`.
    pub object: String,
    pub result: PlanResult,
}

#[derive(Debug)]
pub enum PlanResult {
    Planned(Vec<PlannedAction>),
    /// Not planned, and not an error: the engine does not build this kind yet.
    Skipped(String),
    /// The object cannot be built: refused by the schema, or a check the schema cannot
    /// make (zones, subnet sizes) failed. Nothing would be created.
    Failed(String),
}

#[derive(Debug, PartialEq, Eq)]
pub struct PlannedAction {
    pub node: String,
    pub resource_type: &'static str,
    pub action: &'static str,
    pub reason: String,
}

/// Plans every object of `text` against the provider `make` returns for the object's
/// region (one per object). Read-only: only observe calls are made. A kind that
/// references another (a PaymentPipeline its HipaaNetwork) is planned with the
/// referenced object's outputs as placeholders (`<clinic-net.vpcId>`): the plan does not
/// read the cluster.
pub async fn plan_stream<P: Provider, F: Fn(&str) -> P>(
    text: &str,
    make: F,
) -> Result<Vec<ObjectPlan>, String> {
    let checker = Checker::new().map_err(|e| e.to_string())?;
    let mut plans = Vec::new();
    for verdict in checker.check_stream(text) {
        if !verdict.accepted() {
            let errors: Vec<String> = verdict.errors.iter().map(ToString::to_string).collect();
            plans.push(ObjectPlan {
                object: verdict.object,
                result: PlanResult::Failed(format!("refused by the schema: {}", errors.join("; "))),
            });
            continue;
        }
        let Some(object) = verdict.defaulted else {
            continue;
        };
        let result = match object["kind"].as_str().unwrap_or_default() {
            "HipaaNetwork" => plan_object::<HipaaNetwork, P, F>(object, &make).await,
            "PaymentPipeline" => plan_object::<PaymentPipeline, P, F>(object, &make).await,
            _ => Ok(None),
        };
        plans.push(ObjectPlan {
            object: verdict.object,
            result: match result {
                Ok(Some(actions)) => PlanResult::Planned(actions),
                Ok(None) => PlanResult::Skipped(
                    "not planned: the engine does not build this kind yet".into(),
                ),
                Err(e) => PlanResult::Failed(e),
            },
        });
    }
    Ok(plans)
}

/// The actions for one object of kind `K` on an empty record; `None` is never returned
/// for a kind that has a [`Stack`] (the `Option` is the caller's "not built yet").
async fn plan_object<K: Stack, P: Provider, F: Fn(&str) -> P>(
    object: Value,
    make: &F,
) -> Result<Option<Vec<PlannedAction>>, String> {
    let object: K = serde_json::from_value(object).map_err(|e| e.to_string())?;
    let mut owner = owner_of(&object);
    if owner.namespace.is_empty() {
        owner.namespace = "default".into();
    }
    let target = match (K::TARGET, object.reference()) {
        (Some(target), Some(name)) => Some(Referenced {
            name: name.to_string(),
            status: (target.placeholder)(name),
        }),
        _ => None,
    };
    let graph = object
        .blueprint(&owner, target.as_ref())
        .map_err(|e| e.to_string())?;
    let engine = Engine::new(make(&object.common_spec().region), Default::default());
    engine
        .validate(&graph, &object.availability_zones())
        .await
        .map_err(|e| e.to_string())?;
    let outcome = engine
        .plan(&graph, &owner, &Records::new())
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(
        outcome
            .actions
            .iter()
            .map(|a| PlannedAction {
                node: a.node.clone(),
                resource_type: a.kind.type_name(),
                action: a.action.as_str(),
                reason: a.reason.clone(),
            })
            .collect(),
    ))
}

/// A terminal table per object.
pub fn render_table(plans: &[ObjectPlan], note: &str) -> String {
    let mut out = format!("# {note}\n");
    for plan in plans {
        out.push_str(&format!("\n{}\n", plan.object));
        match &plan.result {
            PlanResult::Failed(e) => out.push_str(&format!("  error: {e}\n")),
            PlanResult::Skipped(why) => out.push_str(&format!("  {why}\n")),
            PlanResult::Planned(actions) => {
                let width = actions
                    .iter()
                    .map(|a| a.node.len())
                    .max()
                    .unwrap_or(4)
                    .max(4);
                out.push_str(&format!(
                    "  {:<width$}  {:<26}  {:<7}  REASON\n",
                    "NODE", "TYPE", "ACTION"
                ));
                for a in actions {
                    out.push_str(&format!(
                        "  {:<width$}  {:<26}  {:<7}  {}\n",
                        a.node, a.resource_type, a.action, a.reason
                    ));
                }
                let count = |kind: &ActionKind| {
                    actions.iter().filter(|a| a.action == kind.as_str()).count()
                };
                out.push_str(&format!(
                    "  {} to create, {} to update, {} unchanged, {} waiting\n",
                    count(&ActionKind::Create),
                    count(&ActionKind::Update),
                    count(&ActionKind::NoOp),
                    count(&ActionKind::Wait)
                ));
            }
        }
    }
    out
}

/// The same as JSON.
pub fn render_json(plans: &[ObjectPlan], note: &str) -> Value {
    let objects: Vec<Value> = plans
        .iter()
        .map(|p| match &p.result {
            PlanResult::Planned(actions) => json!({
                "object": p.object,
                "actions": actions.iter().map(|a| json!({"node": a.node, "type": a.resource_type, "action": a.action, "reason": a.reason})).collect::<Vec<_>>(),
            }),
            PlanResult::Skipped(why) => json!({"object": p.object, "skipped": why}),
            PlanResult::Failed(e) => json!({"object": p.object, "error": e}),
        })
        .collect();
    json!({"note": note, "plans": objects})
}
