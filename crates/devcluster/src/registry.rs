//! The resource types the devcluster serves: the built-in kinds kubectl and the operator
//! use, and every version of every established CustomResourceDefinition. Also the
//! discovery documents (`/api`, `/apis`, resource lists) derived from them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::validation::SchemaValidator;

/// What a resource type needs special handling for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    None,
    Namespace,
    CustomResourceDefinition,
    /// events.k8s.io/v1 Event: stored as core/v1 Event and converted on the way in and out.
    EventsV1,
    /// A custom resource: schema-validated, generation-tracked.
    Custom,
}

/// One served group/version/resource.
#[derive(Debug)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    pub printer_columns: Vec<Value>,
    /// openAPIV3Schema of a custom resource version.
    pub schema: Option<Value>,
    pub validator: Option<Arc<SchemaValidator>>,
    pub special: Special,
    /// Objects of resource types with the same storage key are the same objects.
    pub storage: String,
    /// Name of the CRD that defines this type, if any.
    pub crd: Option<String>,
}

impl ResourceType {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural` or `plural.group`, as error messages name a resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Kind` or `Kind.group`, as validation errors name a kind.
    pub fn kind_qualified(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// Custom resources and CRDs count `metadata.generation`.
    pub fn tracks_generation(&self) -> bool {
        matches!(
            self.special,
            Special::Custom | Special::CustomResourceDefinition
        )
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    fn discovery(&self) -> Vec<Value> {
        let mut resource = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        });
        if !self.short_names.is_empty() {
            resource["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            resource["categories"] = json!(self.categories);
        }
        let mut out = vec![resource];
        if self.status_subresource {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        out
    }
}

/// Every served resource type, by group, version and plural.
#[derive(Debug, Default)]
pub struct Registry {
    types: BTreeMap<(String, String, String), Arc<ResourceType>>,
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    special: Special,
    storage: &'static str,
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        status: true,
        special: Special::Namespace,
        storage: "namespaces",
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        status: false,
        special: Special::None,
        storage: "configmaps",
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        special: Special::None,
        storage: "secrets",
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        namespaced: true,
        short_names: &["sa"],
        categories: &[],
        status: false,
        special: Special::None,
        storage: "serviceaccounts",
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        status: false,
        special: Special::None,
        storage: "events",
    },
    Builtin {
        group: "events.k8s.io",
        version: "v1",
        kind: "Event",
        plural: "events",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        status: false,
        special: Special::EventsV1,
        storage: "events",
    },
    Builtin {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        special: Special::None,
        storage: "coordination.k8s.io/leases",
    },
    Builtin {
        group: "apiextensions.k8s.io",
        version: "v1",
        kind: "CustomResourceDefinition",
        plural: "customresourcedefinitions",
        namespaced: false,
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        status: true,
        special: Special::CustomResourceDefinition,
        storage: "apiextensions.k8s.io/customresourcedefinitions",
    },
];

impl Registry {
    /// The built-in kinds.
    pub fn with_builtins() -> Self {
        let mut registry = Self::default();
        for b in BUILTINS {
            registry.insert(ResourceType {
                group: b.group.into(),
                version: b.version.into(),
                kind: b.kind.into(),
                plural: b.plural.into(),
                singular: b.kind.to_lowercase(),
                namespaced: b.namespaced,
                short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
                categories: b.categories.iter().map(|s| s.to_string()).collect(),
                status_subresource: b.status,
                printer_columns: Vec::new(),
                schema: None,
                validator: None,
                special: b.special,
                storage: b.storage.into(),
                crd: None,
            });
        }
        registry
    }

    fn insert(&mut self, rt: ResourceType) {
        let key = (rt.group.clone(), rt.version.clone(), rt.plural.clone());
        self.types.insert(key, Arc::new(rt));
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// All served versions of a group's resource with this storage key.
    pub fn by_storage(&self, storage: &str) -> Vec<Arc<ResourceType>> {
        self.types
            .values()
            .filter(|t| t.storage == storage)
            .cloned()
            .collect()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }

    /// Serves every served version of a CRD (replacing what an earlier version of the
    /// CRD served). Returns the storage key of its objects.
    pub fn register_crd(&mut self, crd: &Value) -> Result<String, String> {
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.unregister_crd(&name);
        let spec = &crd["spec"];
        let group = spec["group"].as_str().unwrap_or_default().to_string();
        let names = &spec["names"];
        let plural = names["plural"].as_str().unwrap_or_default().to_string();
        let kind = names["kind"].as_str().unwrap_or_default().to_string();
        let storage = format!("{group}/{plural}");
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        for version in spec["versions"].as_array().into_iter().flatten() {
            if version["served"] == Value::Bool(false) {
                continue;
            }
            let version_name = version["name"].as_str().unwrap_or_default().to_string();
            let schema = version["schema"]["openAPIV3Schema"].clone();
            let validator = if schema.is_object() {
                Some(Arc::new(
                    SchemaValidator::new(&name, schema.clone()).map_err(|e| e.to_string())?,
                ))
            } else {
                None
            };
            self.insert(ResourceType {
                group: group.clone(),
                version: version_name,
                kind: kind.clone(),
                plural: plural.clone(),
                singular: names["singular"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| kind.to_lowercase()),
                namespaced: spec["scope"] != "Cluster",
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                status_subresource: version["subresources"]["status"].is_object(),
                printer_columns: version["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                schema: schema.is_object().then_some(schema),
                validator,
                special: Special::Custom,
                storage: storage.clone(),
                crd: Some(name.clone()),
            });
        }
        Ok(storage)
    }

    /// Stops serving a CRD's kinds.
    pub fn unregister_crd(&mut self, crd_name: &str) {
        self.types.retain(|_, t| t.crd.as_deref() != Some(crd_name));
    }

    /// `/api`.
    pub fn core_versions(&self) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]
        })
    }

    fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.types.values().filter(|t| !t.group.is_empty()) {
            let versions = groups.entry(t.group.clone()).or_default();
            if !versions.contains(&t.version) {
                versions.push(t.version.clone());
            }
        }
        groups
    }

    fn group_json(group: &str, versions: &[String]) -> Value {
        let list: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        json!({"name": group, "versions": list, "preferredVersion": list[0]})
    }

    /// `/apis`.
    pub fn group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .iter()
            .map(|(g, versions)| Self::group_json(g, versions))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `/apis/<group>`.
    pub fn group(&self, group: &str) -> Option<Value> {
        let groups = self.groups();
        let versions = groups.get(group)?;
        let mut doc = Self::group_json(group, versions);
        doc["kind"] = json!("APIGroup");
        doc["apiVersion"] = json!("v1");
        Some(doc)
    }

    /// `/api/v1` or `/apis/<group>/<version>`.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let types: Vec<&Arc<ResourceType>> = self
            .types
            .values()
            .filter(|t| t.group == group && t.version == version)
            .collect();
        if types.is_empty() {
            return None;
        }
        let group_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        let resources: Vec<Value> = types.iter().flat_map(|t| t.discovery()).collect();
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources
        }))
    }

    /// Every group/version served, as OpenAPI v3 paths (`api/v1`, `apis/g/v`).
    pub fn group_versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for t in self.types.values() {
            let gv = (t.group.clone(), t.version.clone());
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
        out
    }

    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceType>> {
        self.types
            .values()
            .filter(|t| t.group == group && t.version == version)
            .cloned()
            .collect()
    }
}
