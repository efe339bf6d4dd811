//! References between custom resources (`spec.networkRef`, `spec.backendRef`): a
//! referrer waits, making no AWS call, until the object it names exists and is Ready; it
//! is reconciled the moment that object becomes Ready or its outputs change (a watch,
//! never a blind requeue); and a referenced object's deletion waits until no referrer
//! names it.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use futures::{Stream, StreamExt};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::Value;

use super::stack::{Referenced, Stack, Target};
use super::{Context, Error};

/// One kind's reference to another: which kind refers, through which field, to what.
#[derive(Clone, Debug)]
pub struct Edge {
    /// The referring kind, e.g. `HipaaBackend`.
    pub referrer_kind: &'static str,
    pub referrer: ApiResource,
    pub target: Target,
}

impl Edge {
    /// The edge of a kind with a [`Target`], if it has one.
    pub fn of<K: Stack>() -> Option<Edge> {
        K::TARGET.map(|target| Edge {
            referrer_kind: K::KIND,
            referrer: ApiResource::erase::<K>(&()),
            target,
        })
    }

    /// The name a referrer object gives in `spec.<field>.name`.
    fn named_by(&self, referrer: &DynamicObject) -> Option<String> {
        referrer
            .data
            .get("spec")?
            .get(self.target.field)?
            .get("name")?
            .as_str()
            .map(String::from)
    }
}

/// Where a referrer stands with its reference.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolution {
    /// The kind references nothing.
    None,
    /// The referenced object is Ready for its current generation.
    Ready(Referenced),
    /// Not usable yet; the message says why, naming the object.
    Waiting(String),
}

/// Whether a hipaa.dev object's status says Ready for its current generation.
fn ready_for_generation(object: &DynamicObject) -> Result<(), String> {
    let conditions = object
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ready = conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"));
    let Some(ready) = ready else {
        return Err("has no Ready condition yet".into());
    };
    let text = |field: &str| ready.get(field).and_then(Value::as_str).unwrap_or_default();
    if text("status") != "True" {
        return Err(format!(
            "is not Ready ({}: {})",
            text("reason"),
            text("message")
        ));
    }
    let observed = ready.get("observedGeneration").and_then(Value::as_i64);
    if observed.is_some() && observed != object.metadata.generation {
        return Err("is Ready for an older generation of its spec".into());
    }
    Ok(())
}

/// Reads the object `object` references, once: Ready, or why it is not usable yet.
pub async fn resolve<K: Stack>(object: &K, ctx: &Context) -> Result<Resolution, Error> {
    let (Some(target), Some(name)) = (K::TARGET, object.reference()) else {
        return Ok(Resolution::None);
    };
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &namespace, &(target.resource)());
    let what = format!("{} {namespace}/{name}", target.kind);
    let Some(found) = api.get_opt(name).await? else {
        return Ok(Resolution::Waiting(format!("{what} does not exist")));
    };
    if found.metadata.deletion_timestamp.is_some() {
        return Ok(Resolution::Waiting(format!("{what} is being deleted")));
    }
    if let Err(why) = ready_for_generation(&found) {
        return Ok(Resolution::Waiting(format!("{what} {why}")));
    }
    Ok(Resolution::Ready(Referenced {
        name: name.to_string(),
        status: found.data.get("status").cloned().unwrap_or(Value::Null),
    }))
}

/// The objects (as `Kind name`) that reference `object`, over every registered edge
/// that targets its kind. One list call per referring kind.
pub async fn referrers<K: Stack>(object: &K, ctx: &Context) -> Result<Vec<String>, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let mut found = Vec::new();
    for edge in ctx.edges_to(K::KIND) {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &namespace, &edge.referrer);
        for referrer in api.list(&ListParams::default()).await?.items {
            if edge.named_by(&referrer).as_deref() == Some(name.as_str()) {
                found.push(format!("{} {}", edge.referrer_kind, referrer.name_any()));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// What in a referenced object matters to its referrers: whether it exists, is being
/// deleted, is Ready for its generation, and its outputs (the status without the
/// bookkeeping every pass may rewrite: conditions, resources, drift, compliance).
fn referrers_care_about(object: &DynamicObject) -> u64 {
    let mut outputs = object.data.get("status").cloned().unwrap_or(Value::Null);
    if let Value::Object(map) = &mut outputs {
        for field in [
            "conditions",
            "resources",
            "drift",
            "compliance",
            "observedGeneration",
        ] {
            map.remove(field);
        }
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    object
        .metadata
        .deletion_timestamp
        .is_some()
        .hash(&mut hasher);
    ready_for_generation(object).is_ok().hash(&mut hasher);
    outputs.to_string().hash(&mut hasher);
    hasher.finish()
}

/// A watch of `K`'s target kind that yields a referenced object when what its referrers
/// care about changed, and the mapper from it to the `K` objects (in `store`) naming it.
#[allow(clippy::type_complexity)]
pub fn target_trigger<K: Stack>(
    ctx: &Context,
    target: Target,
    store: Store<K>,
) -> (
    impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static,
    impl Fn(DynamicObject) -> Vec<ObjectRef<K>> + Send + Sync + 'static,
) {
    let resource = (target.resource)();
    let api: Api<DynamicObject> = match &ctx.settings.namespace {
        Some(ns) => Api::namespaced_with(ctx.client.clone(), ns, &resource),
        None => Api::all_with(ctx.client.clone(), &resource),
    };
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .touched_objects();
    let seen: Mutex<HashMap<String, u64>> = Mutex::new(HashMap::new());
    let mapper = move |referenced: DynamicObject| {
        let namespace = referenced.namespace().unwrap_or_default();
        let name = referenced.name_any();
        let digest = referrers_care_about(&referenced);
        let changed = seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(format!("{namespace}/{name}"), digest)
            != Some(digest);
        if !changed {
            return Vec::new();
        }
        store
            .state()
            .iter()
            .filter(|r| r.namespace().as_deref() == Some(namespace.as_str()))
            .filter(|r| r.reference() == Some(name.as_str()))
            .map(|r| ObjectRef::from_obj(r.as_ref()))
            .collect()
    };
    (stream, mapper)
}

/// A watch of a kind that references `K`, yielding its objects as they are removed, and
/// the mapper to the `K` object each named: a deletion held by `DependentsExist` goes on
/// the moment its last referrer is gone.
#[allow(clippy::type_complexity)]
pub fn referrer_removed_trigger<K: Stack>(
    ctx: &Context,
    edge: Edge,
) -> (
    impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static,
    impl Fn(DynamicObject) -> Option<ObjectRef<K>> + Send + Sync + 'static,
) {
    let api: Api<DynamicObject> = match &ctx.settings.namespace {
        Some(ns) => Api::namespaced_with(ctx.client.clone(), ns, &edge.referrer),
        None => Api::all_with(ctx.client.clone(), &edge.referrer),
    };
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .filter_map(|event| async move {
            match event {
                Ok(watcher::Event::Delete(object)) => Some(Ok(object)),
                Ok(_) => None,
                Err(error) => Some(Err(error)),
            }
        });
    let mapper = move |referrer: DynamicObject| {
        let name = edge.named_by(&referrer)?;
        let namespace = referrer.namespace()?;
        Some(ObjectRef::<K>::new(&name).within(&namespace))
    };
    (stream, mapper)
}

/// The `ApiResource` of a kind, for [`Target::resource`].
pub fn resource_of<K: Resource<DynamicType = ()>>() -> ApiResource {
    ApiResource::erase::<K>(&())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(generation: i64, status: Value) -> DynamicObject {
        let mut object = DynamicObject::new("net", &resource_of::<crate::api::HipaaNetwork>())
            .within("clinic")
            .data(json!({ "status": status }));
        object.metadata.generation = Some(generation);
        object
    }

    fn ready(status: &str, generation: i64) -> Value {
        json!({"type": "Ready", "status": status, "reason": "R", "message": "m",
               "observedGeneration": generation, "lastTransitionTime": "2026-01-01T00:00:00Z"})
    }

    #[test]
    fn ready_means_ready_for_the_current_generation() {
        // (generation, status, usable): each row is one way a referenced object can be.
        let rows = [
            (1, json!({}), false),
            (1, json!({"conditions": [ready("False", 1)]}), false),
            (2, json!({"conditions": [ready("True", 1)]}), false),
            (2, json!({"conditions": [ready("True", 2)]}), true),
        ];
        for (generation, status, usable) in rows {
            let got = ready_for_generation(&object(generation, status.clone()));
            assert_eq!(got.is_ok(), usable, "{status}: {got:?}");
        }
    }

    #[test]
    fn referrers_are_woken_by_outputs_and_readiness_not_by_bookkeeping() {
        let base = json!({"vpcId": "vpc-1", "conditions": [ready("True", 1)],
                          "drift": [], "resources": [{"node": "vpc"}]});
        let digest = |status: Value| referrers_care_about(&object(1, status));
        let before = digest(base.clone());
        let mut bookkeeping = base.clone();
        bookkeeping["drift"] = json!([{"resource": "sg/bastion"}]);
        bookkeeping["resources"] = json!([{"node": "vpc", "state": "available"}]);
        assert_eq!(digest(bookkeeping), before, "drift and records do not wake");
        let mut output = base.clone();
        output["vpcId"] = json!("vpc-2");
        assert_ne!(digest(output), before, "a changed output wakes");
        let mut unready = base.clone();
        unready["conditions"] = json!([ready("False", 1)]);
        assert_ne!(digest(unready), before, "readiness wakes");
    }
}
