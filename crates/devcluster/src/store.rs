//! Object storage: every object of every resource type, one resourceVersion sequence
//! for the whole server, the recent change history watches replay from, and a broadcast
//! of new changes to running watches.
//!
//! Guarantees: resourceVersions strictly increase across all writes; a change is in the
//! history and broadcast in resourceVersion order, under the same lock that stored it;
//! with a data directory, a write returns only after it is durable (redb commit), so a
//! kill -9 loses no acknowledged write.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use super::registry::Registry;

/// How many changes watches can replay from. A watch from an older resourceVersion gets
/// 410 Gone and must re-list, as with the real server's watch cache.
pub const HISTORY: usize = 50_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One committed write.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub storage: String,
    pub namespace: String,
    pub kind: ChangeKind,
    /// The object after the write (for a delete: as it was, with the delete's resourceVersion).
    pub object: Arc<Value>,
    /// The object before the write, for watches whose selector it may have left.
    pub previous: Option<Arc<Value>>,
}

type Objects = BTreeMap<(String, String), Arc<Value>>;

/// Everything behind the store's lock.
pub struct State {
    pub registry: Registry,
    rv: u64,
    objects: HashMap<String, Objects>,
    history: VecDeque<Arc<Change>>,
    /// Changes after this resourceVersion are all in `history`.
    history_floor: u64,
    persist: Option<Persist>,
    events: broadcast::Sender<Arc<Change>>,
}

pub struct Store {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<Change>>,
}

impl Store {
    /// An empty in-memory store, or the one persisted in `data_dir`.
    pub fn open(data_dir: Option<&Path>) -> Result<Self, String> {
        let (events, _) = broadcast::channel(65_536);
        let mut state = State {
            registry: Registry::with_builtins(),
            rv: 0,
            objects: HashMap::new(),
            history: VecDeque::new(),
            history_floor: 0,
            persist: None,
            events: events.clone(),
        };
        if let Some(dir) = data_dir {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let persist = Persist::open(&dir.join("devcluster.redb"))?;
            let (rv, objects) = persist.load()?;
            state.rv = rv;
            state.history_floor = rv;
            for (storage, namespace, name, object) in objects {
                state
                    .objects
                    .entry(storage)
                    .or_default()
                    .insert((namespace, name), Arc::new(object));
            }
            state.persist = Some(persist);
            // Serve the kinds of every stored CRD again.
            let crds: Vec<Arc<Value>> = state
                .objects
                .get("apiextensions.k8s.io/customresourcedefinitions")
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default();
            for crd in crds {
                state.registry.register_crd(&crd)?;
            }
        }
        Ok(Self {
            state: Mutex::new(state),
            events,
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.events.subscribe()
    }
}

impl State {
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, storage: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(storage)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of a storage key, in (namespace, name) order; `namespace` None for all.
    pub fn list(&self, storage: &str, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let Some(objects) = self.objects.get(storage) else {
            return Vec::new();
        };
        match namespace {
            None => objects.values().cloned().collect(),
            Some(ns) => objects
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    /// Every storage key with objects.
    pub fn storages(&self) -> Vec<String> {
        self.objects.keys().cloned().collect()
    }

    /// Stores `object` (its resourceVersion is set here) and announces the change.
    pub fn put(
        &mut self,
        storage: &str,
        namespace: &str,
        name: &str,
        mut object: Value,
    ) -> Result<Arc<Value>, String> {
        let rv = self.rv + 1;
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        if let Some(persist) = &self.persist {
            persist.write(storage, namespace, name, Some(&object), rv)?;
        }
        self.rv = rv;
        let object = Arc::new(object);
        let previous = self
            .objects
            .entry(storage.to_string())
            .or_default()
            .insert((namespace.to_string(), name.to_string()), object.clone());
        let kind = if previous.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        self.announce(Change {
            rv,
            storage: storage.into(),
            namespace: namespace.into(),
            kind,
            object: object.clone(),
            previous,
        });
        Ok(object)
    }

    /// Removes an object and announces its deletion. Returns the deleted object.
    pub fn remove(
        &mut self,
        storage: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Value>>, String> {
        let key = (namespace.to_string(), name.to_string());
        let Some(previous) = self.objects.get(storage).and_then(|m| m.get(&key)).cloned() else {
            return Ok(None);
        };
        let rv = self.rv + 1;
        if let Some(persist) = &self.persist {
            persist.write(storage, namespace, name, None, rv)?;
        }
        self.rv = rv;
        if let Some(objects) = self.objects.get_mut(storage) {
            objects.remove(&key);
            if objects.is_empty() {
                self.objects.remove(storage);
            }
        }
        let mut last = (*previous).clone();
        last["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        self.announce(Change {
            rv,
            storage: storage.into(),
            namespace: namespace.into(),
            kind: ChangeKind::Deleted,
            object: Arc::new(last),
            previous: Some(previous.clone()),
        });
        Ok(Some(previous))
    }

    fn announce(&mut self, change: Change) {
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        while self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.history_floor = old.rv;
            }
        }
        // No receiver is fine: nobody is watching.
        let _ = self.events.send(change);
    }

    /// Changes after `rv`, or None when some of them are no longer kept.
    pub fn changes_since(&self, rv: u64) -> Option<Vec<Arc<Change>>> {
        if rv < self.history_floor {
            return None;
        }
        let start = self.history.partition_point(|c| c.rv <= rv);
        Some(self.history.range(start..).cloned().collect())
    }

    /// Forgets the change history, as an etcd compaction does: a watch resuming from an
    /// older resourceVersion gets 410 Gone and must re-list.
    pub fn compact(&mut self) {
        self.history.clear();
        self.history_floor = self.rv;
    }

    /// The oldest resourceVersion a watch can still start from.
    pub fn history_floor(&self) -> u64 {
        self.history_floor
    }
}

/// Crash-safe persistence in an embedded redb database: one table of objects keyed by
/// storage, namespace and name, and the resourceVersion counter, written in one
/// transaction per change.
struct Persist {
    db: redb::Database,
}

const OBJECTS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("objects");
const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");

fn object_key(storage: &str, namespace: &str, name: &str) -> String {
    format!("{storage}\u{0}{namespace}\u{0}{name}")
}

impl Persist {
    fn open(path: &Path) -> Result<Self, String> {
        let db =
            redb::Database::create(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
        let txn = db.begin_write().map_err(|e| e.to_string())?;
        txn.open_table(OBJECTS).map_err(|e| e.to_string())?;
        txn.open_table(META).map_err(|e| e.to_string())?;
        txn.commit().map_err(|e| e.to_string())?;
        Ok(Self { db })
    }

    #[allow(clippy::type_complexity)]
    fn load(&self) -> Result<(u64, Vec<(String, String, String, Value)>), String> {
        use redb::{ReadableTable, ReadableTableMetadata};
        let txn = self.db.begin_read().map_err(|e| e.to_string())?;
        let meta = txn.open_table(META).map_err(|e| e.to_string())?;
        let rv = meta
            .get("rv")
            .map_err(|e| e.to_string())?
            .map(|v| v.value())
            .unwrap_or(0);
        let table = txn.open_table(OBJECTS).map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(table.len().unwrap_or(0) as usize);
        for entry in table.iter().map_err(|e| e.to_string())? {
            let (key, value) = entry.map_err(|e| e.to_string())?;
            let mut parts = key.value().splitn(3, '\u{0}');
            let (storage, namespace, name) = (
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
            );
            let object: Value = serde_json::from_slice(value.value()).map_err(|e| e.to_string())?;
            out.push((storage, namespace, name, object));
        }
        Ok((rv, out))
    }

    fn write(
        &self,
        storage: &str,
        namespace: &str,
        name: &str,
        object: Option<&Value>,
        rv: u64,
    ) -> Result<(), String> {
        let txn = self.db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut table = txn.open_table(OBJECTS).map_err(|e| e.to_string())?;
            let key = object_key(storage, namespace, name);
            match object {
                Some(object) => {
                    let bytes = serde_json::to_vec(object).map_err(|e| e.to_string())?;
                    table
                        .insert(key.as_str(), bytes.as_slice())
                        .map_err(|e| e.to_string())?;
                }
                None => {
                    table.remove(key.as_str()).map_err(|e| e.to_string())?;
                }
            }
            let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
            meta.insert("rv", rv).map_err(|e| e.to_string())?;
        }
        txn.commit().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_versions_increase_across_storages_and_history_replays_in_order() {
        let store = Store::open(None).unwrap();
        let mut state = store.lock();
        let a = state
            .put(
                "configmaps",
                "default",
                "a",
                json!({"metadata": {"name": "a"}}),
            )
            .unwrap();
        let b = state
            .put(
                "secrets",
                "default",
                "b",
                json!({"metadata": {"name": "b"}}),
            )
            .unwrap();
        state.remove("configmaps", "default", "a").unwrap();
        assert_eq!(a["metadata"]["resourceVersion"], "1");
        assert_eq!(b["metadata"]["resourceVersion"], "2");
        let since: Vec<(u64, ChangeKind)> = state
            .changes_since(1)
            .unwrap()
            .iter()
            .map(|c| (c.rv, c.kind))
            .collect();
        assert_eq!(
            since,
            vec![(2, ChangeKind::Added), (3, ChangeKind::Deleted)]
        );
        assert_eq!(state.list("configmaps", None).len(), 0);
    }

    #[test]
    fn data_dir_keeps_objects_and_the_resource_version_sequence() {
        let dir = std::env::temp_dir().join(format!("devcluster-store-{}", uuid::Uuid::new_v4()));
        {
            let store = Store::open(Some(&dir)).unwrap();
            let mut state = store.lock();
            state
                .put(
                    "configmaps",
                    "default",
                    "a",
                    json!({"metadata": {"name": "a"}}),
                )
                .unwrap();
            state
                .put(
                    "configmaps",
                    "default",
                    "b",
                    json!({"metadata": {"name": "b"}}),
                )
                .unwrap();
            state.remove("configmaps", "default", "a").unwrap();
        }
        let store = Store::open(Some(&dir)).unwrap();
        let mut state = store.lock();
        assert_eq!(state.resource_version(), 3, "the sequence survives");
        assert!(state.get("configmaps", "default", "a").is_none());
        assert_eq!(
            state.get("configmaps", "default", "b").unwrap()["metadata"]["resourceVersion"],
            "2"
        );
        let c = state
            .put(
                "configmaps",
                "default",
                "c",
                json!({"metadata": {"name": "c"}}),
            )
            .unwrap();
        assert_eq!(
            c["metadata"]["resourceVersion"], "4",
            "new writes continue the sequence"
        );
        assert!(
            state.changes_since(1).is_none(),
            "history before the restart is gone: 410 for old watches"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
