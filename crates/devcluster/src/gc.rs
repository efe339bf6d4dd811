//! What the real control plane's controllers do after a delete: empty a terminating
//! namespace, remove a deleted CRD's objects and then the CRD, delete dependents whose
//! owners are gone (background), before the owner (foreground) or orphan them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::server::Server;
use super::store::State;
use super::writes;

const CRDS: &str = "apiextensions.k8s.io/customresourcedefinitions";

/// Runs until the process ends: after every delete (and every second, for safety).
pub async fn run(server: Arc<Server>) {
    loop {
        tokio::select! {
            _ = server.gc.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        // Each pass may enable the next (a dependent deleted lets its owner go).
        for _ in 0..100 {
            let work = collect(&mut server.store.lock());
            if work == 0 {
                break;
            }
        }
    }
}

fn meta<'a>(object: &'a Value, key: &str) -> &'a str {
    object["metadata"][key].as_str().unwrap_or_default()
}

fn deleting(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
}

fn has_finalizer(object: &Value, finalizer: &str) -> bool {
    object["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|v| v == finalizer))
}

/// Deletes an object found by storage key, as a background DELETE would.
fn delete(state: &mut State, storage: &str, object: &Value) -> usize {
    if deleting(object) {
        return 0;
    }
    let Some(rt) = state.registry.by_storage(storage).into_iter().next() else {
        return 0;
    };
    match writes::delete(
        state,
        &rt,
        meta(object, "namespace"),
        meta(object, "name"),
        &json!({}),
    ) {
        Ok(_) => 1,
        Err(_) => 0,
    }
}

/// Stores `object` as changed by a controller (no validation, no managed fields).
fn put(state: &mut State, storage: &str, object: Value) -> usize {
    let (namespace, name) = (
        meta(&object, "namespace").to_string(),
        meta(&object, "name").to_string(),
    );
    let finalizers_left = object["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    let result = if deleting(&object) && !finalizers_left {
        state.remove(storage, &namespace, &name).map(|_| ())
    } else {
        state.put(storage, &namespace, &name, object).map(|_| ())
    };
    usize::from(result.is_ok())
}

/// One pass; returns how many objects it changed.
pub fn collect(state: &mut State) -> usize {
    let mut work = 0;

    for namespace in state
        .list("namespaces", None)
        .iter()
        .filter(|n| deleting(n))
    {
        let name = meta(namespace, "name").to_string();
        let mut remaining = 0;
        for storage in state.storages() {
            if storage == "namespaces" {
                continue;
            }
            for object in state.list(&storage, Some(&name)) {
                remaining += 1;
                work += delete(state, &storage, &object);
            }
        }
        if remaining == 0 && state.remove("namespaces", "", &name).is_ok() {
            work += 1;
        }
    }

    for crd in state.list(CRDS, None).iter().filter(|c| deleting(c)) {
        let name = meta(crd, "name").to_string();
        let storage = format!(
            "{}/{}",
            crd["spec"]["group"].as_str().unwrap_or_default(),
            crd["spec"]["names"]["plural"].as_str().unwrap_or_default()
        );
        let objects = state.list(&storage, None);
        for object in &objects {
            work += delete(state, &storage, object);
        }
        if objects.is_empty() {
            state.registry.unregister_crd(&name);
            if state.remove(CRDS, "", &name).is_ok() {
                work += 1;
            }
        }
    }

    work + collect_dependents(state)
}

fn collect_dependents(state: &mut State) -> usize {
    let mut work = 0;
    // uid -> (storage, object) of every object.
    let mut owners: HashMap<String, (String, Arc<Value>)> = HashMap::new();
    for storage in state.storages() {
        for object in state.list(&storage, None) {
            owners.insert(meta(&object, "uid").to_string(), (storage.clone(), object));
        }
    }
    let mut still_referenced: HashSet<String> = HashSet::new();
    for (storage, object) in owners.values() {
        let Some(refs) = object["metadata"]["ownerReferences"].as_array() else {
            continue;
        };
        let live: Vec<&Value> = refs
            .iter()
            .filter(|r| owners.contains_key(r["uid"].as_str().unwrap_or_default()))
            .collect();
        if live.is_empty() {
            work += delete(state, storage, object);
            continue;
        }
        let owner_of = |r: &Value| {
            owners
                .get(r["uid"].as_str().unwrap_or_default())
                .map(|(_, o)| o.clone())
        };
        let orphaned =
            |r: &&Value| owner_of(r).is_some_and(|o| deleting(&o) && has_finalizer(&o, "orphan"));
        let keep: Vec<Value> = live
            .iter()
            .filter(|r| !orphaned(r))
            .map(|r| (*r).clone())
            .collect();
        if live.iter().any(|r| {
            owner_of(r).is_some_and(|o| deleting(&o) && has_finalizer(&o, "foregroundDeletion"))
        }) {
            work += delete(state, storage, object);
        }
        for r in &keep {
            still_referenced.insert(r["uid"].as_str().unwrap_or_default().to_string());
        }
        if keep.len() != refs.len() {
            let mut changed = (**object).clone();
            if keep.is_empty() {
                changed["metadata"]
                    .as_object_mut()
                    .map(|m| m.remove("ownerReferences"));
            } else {
                changed["metadata"]["ownerReferences"] = Value::Array(keep);
            }
            // Re-read: the delete above may have changed it.
            if state
                .get(storage, meta(object, "namespace"), meta(object, "name"))
                .is_some()
            {
                work += put(state, storage, changed);
            }
        }
    }
    // Owners waiting for their dependents (foreground) or for orphaning: done when nothing
    // refers to them any more.
    for (uid, (storage, owner)) in &owners {
        if !deleting(owner) || still_referenced.contains(uid) {
            continue;
        }
        let Some(current) = state.get(storage, meta(owner, "namespace"), meta(owner, "name"))
        else {
            continue;
        };
        let finalizers: Vec<Value> = current["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let remaining: Vec<Value> = finalizers
            .iter()
            .filter(|f| *f != "foregroundDeletion" && *f != "orphan")
            .cloned()
            .collect();
        if remaining.len() != finalizers.len() {
            let mut changed = (*current).clone();
            changed["metadata"]["finalizers"] = Value::Array(remaining);
            work += put(state, storage, changed);
        }
    }
    work
}
