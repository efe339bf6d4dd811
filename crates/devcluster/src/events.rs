//! events.k8s.io/v1 Events are the same objects as core/v1 Events with other field
//! names; the devcluster stores the core/v1 form, as the real server does, and converts.

use serde_json::{Map, Value};

/// Field renames between core/v1 (left) and events.k8s.io/v1 (right).
const RENAMES: [(&str, &str); 6] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
];

fn rename(object: &Value, forward: bool, api_version: &str) -> Value {
    let Some(map) = object.as_object() else {
        return object.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let renamed = RENAMES
            .iter()
            .chain(std::iter::once(&("count", "deprecatedCount")))
            .find_map(|(core, v1)| {
                if forward && key == core {
                    Some(*v1)
                } else if !forward && key == v1 {
                    Some(*core)
                } else {
                    None
                }
            })
            .unwrap_or(key.as_str());
        out.insert(renamed.to_string(), value.clone());
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// A stored core/v1 Event as events.k8s.io/v1 shows it.
pub fn core_to_v1(object: &Value) -> Value {
    rename(object, true, "events.k8s.io/v1")
}

/// An events.k8s.io/v1 Event in its stored core/v1 form.
pub fn v1_to_core(object: &Value) -> Value {
    rename(object, false, "v1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conversion_round_trips_and_renames_the_fields_kubectl_describe_reads() {
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "HipaaNetwork", "name": "n"}, "note": "drift found",
            "reason": "DriftDetected", "type": "Warning", "reportingController": "hipaa.dev/operator",
            "deprecatedCount": 2});
        let core = v1_to_core(&v1);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(
            core["involvedObject"]["name"], "n",
            "describe selects on involvedObject"
        );
        assert_eq!(core["message"], "drift found");
        assert_eq!(core["count"], 2);
        assert_eq!(core_to_v1(&core), v1);
    }
}
