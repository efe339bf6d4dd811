//! Pure: a custom resource's spec -> the desired graph of AWS resources, HIPAA defaults
//! applied. Never calls AWS. References between nodes are placeholders in spec string
//! fields (see [`reference`]) that the engine replaces with AWS ids once the referenced
//! node exists; they are also the graph's dependency edges.

pub mod network;
pub mod payment;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::cloud::{Kind, Spec};

/// A placeholder for an output of another node: `ref:<node>:<output>`, where output is
/// `id`, `arn` or an attribute name the provider reports (e.g. `publicIp`).
pub fn reference(node: &str, output: &str) -> String {
    format!("ref:{node}:{output}")
}

/// One desired AWS resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Logical key, unique in the stack, stable across reconciles, e.g.
    /// `subnet/private/us-east-1a`. Also the `hipaa.dev/node` tag.
    pub key: String,
    /// The spec, with [`reference`] placeholders where other nodes' ids go.
    pub spec: Spec,
    /// Nodes that must be available first although the spec does not reference them
    /// (a NAT gateway needs the VPC's internet gateway).
    pub after: BTreeSet<String>,
}

impl Node {
    pub fn kind(&self) -> Kind {
        self.spec.kind()
    }

    /// Keys of the nodes this one references.
    pub fn dependencies(&self) -> BTreeSet<String> {
        let value = serde_json::to_value(&self.spec).unwrap_or_default();
        let mut out = self.after.clone();
        collect_references(&value, &mut out);
        out
    }
}

fn collect_references(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::String(s) => {
            if let Some(rest) = s.strip_prefix("ref:")
                && let Some((node, _)) = rest.rsplit_once(':')
            {
                out.insert(node.to_string());
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

/// The desired graph of one custom resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Graph {
    pub nodes: Vec<Node>,
    /// Tags the user asked for on every resource (the ownership tags are added later).
    pub tags: BTreeMap<String, String>,
    pub region: String,
}

/// A spec the schema accepted but that cannot be built (checked before any create).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BlueprintError {
    /// The spec field at fault, e.g. `spec.subnets.privatePrefixLength`.
    pub field: String,
    pub message: String,
}

impl Graph {
    /// The longest dependency chain when each node costs `cost(key)` and starts once all
    /// its dependencies are done: (the node it ends at, its length). `None` for an empty
    /// or cyclic graph. Benchmarks compare convergence times with it.
    pub fn critical_path(&self, cost: impl Fn(&str) -> Duration) -> Option<(String, Duration)> {
        let order = self.topological_order().ok()?;
        let mut finish: BTreeMap<String, Duration> = BTreeMap::new();
        for key in &order {
            let node = self.node(key)?;
            let start = node
                .dependencies()
                .iter()
                .filter_map(|d| finish.get(d).copied())
                .max()
                .unwrap_or_default();
            finish.insert(key.clone(), start + cost(key));
        }
        finish.into_iter().max_by_key(|(_, d)| *d)
    }

    pub fn node(&self, key: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.key == key)
    }

    /// Node keys in an order where every node comes after its dependencies; an error
    /// names a node whose dependency is missing or that is part of a cycle.
    pub fn topological_order(&self) -> Result<Vec<String>, BlueprintError> {
        let keys: BTreeSet<&str> = self.nodes.iter().map(|n| n.key.as_str()).collect();
        let mut done: BTreeSet<String> = BTreeSet::new();
        let mut order = Vec::new();
        while order.len() < self.nodes.len() {
            let before = order.len();
            for node in &self.nodes {
                if done.contains(&node.key) {
                    continue;
                }
                let deps = node.dependencies();
                if let Some(missing) = deps.iter().find(|d| !keys.contains(d.as_str())) {
                    return Err(BlueprintError {
                        field: node.key.clone(),
                        message: format!("references unknown node {missing}"),
                    });
                }
                if deps.iter().all(|d| done.contains(d)) {
                    done.insert(node.key.clone());
                    order.push(node.key.clone());
                }
            }
            if order.len() == before {
                let stuck = self
                    .nodes
                    .iter()
                    .find(|n| !done.contains(&n.key))
                    .map(|n| n.key.clone())
                    .unwrap_or_default();
                return Err(BlueprintError {
                    field: stuck,
                    message: "dependency cycle".into(),
                });
            }
        }
        Ok(order)
    }
}
