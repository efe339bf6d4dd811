//! Desired vs observed, field by field: the drift of one resource.

use std::collections::BTreeMap;

use crate::cloud::{Observed, Spec, resolved_at_creation};

/// One field of one resource that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDrift {
    pub node: String,
    pub field: String,
    pub desired: String,
    pub actual: String,
    /// What differs, for a reader: for a list, `+ item` for what AWS has that the spec
    /// does not and `- item` for the reverse (`+ tcp/22 from 0.0.0.0/0`); for a value,
    /// `spec X, AWS Y`.
    pub change: String,
}

impl FieldDrift {
    /// A field whose whole value differs (`change` says spec and AWS values).
    pub fn value(node: &str, field: &str, desired: &str, actual: &str) -> FieldDrift {
        FieldDrift {
            node: node.into(),
            field: field.into(),
            desired: desired.into(),
            actual: actual.into(),
            change: format!("spec {desired}, AWS {actual}"),
        }
    }
}

/// A list item as a security engineer reads it: a rule as `tcp/22 from 0.0.0.0/0`, a
/// route as `0.0.0.0/0 via nat-0abc`, anything else as its text.
fn item(value: &serde_json::Value) -> String {
    use serde_json::Value;
    // Rules serialize their fields in snake case, specs in camel case: take either.
    let text = |key: &str| {
        let snake = key
            .chars()
            .flat_map(|c| match c.is_ascii_uppercase() {
                true => vec!['_', c.to_ascii_lowercase()],
                false => vec![c],
            })
            .collect::<String>();
        match value.get(key).or_else(|| value.get(&snake)) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    };
    match value {
        Value::String(s) => s.clone(),
        Value::Object(map) if map.contains_key("protocol") && map.contains_key("source") => {
            let (from, to) = (text("fromPort"), text("toPort"));
            let ports = if from == to {
                from
            } else {
                format!("{from}-{to}")
            };
            match text("protocol").as_str() {
                "-1" => format!("all traffic from {}", text("source")),
                protocol => format!("{protocol}/{ports} from {}", text("source")),
            }
        }
        Value::Object(map) if map.contains_key("destination") && map.contains_key("target") => {
            format!("{} via {}", text("destination"), text("target"))
        }
        other => crate::cloud::render(other),
    }
}

/// `+ x; - y` between two lists: what `actual` has that `desired` does not (+), and the
/// reverse (-). Order never counts.
fn list_change(desired: &[serde_json::Value], actual: &[serde_json::Value]) -> String {
    let want: std::collections::BTreeSet<String> = desired.iter().map(item).collect();
    let have: std::collections::BTreeSet<String> = actual.iter().map(item).collect();
    let added = have.difference(&want).map(|i| format!("+ {i}"));
    let removed = want.difference(&have).map(|i| format!("- {i}"));
    added.chain(removed).collect::<Vec<_>>().join("; ")
}

/// The drift between a desired spec (references resolved) with its tags and what AWS
/// reports. Tags the operator did not ask for are not drift (AWS and other tools add
/// their own); a missing or changed desired tag is.
pub fn diff(
    node: &str,
    desired: &Spec,
    desired_tags: &BTreeMap<String, String>,
    observed: &Observed,
) -> Vec<FieldDrift> {
    let actual: BTreeMap<String, String> = observed.spec.fields().into_iter().collect();
    let desired_json = serde_json::to_value(desired).unwrap_or_default();
    let actual_json = serde_json::to_value(&observed.spec).unwrap_or_default();
    let mut out = Vec::new();
    for (field, want) in desired.fields() {
        let have = actual.get(&field).cloned().unwrap_or_default();
        if want != have && !resolved_at_creation(&field, &want) {
            let mut drift = FieldDrift::value(node, &field, &want, &have);
            if let (Some(w), Some(h)) = (
                desired_json.get(&field).and_then(|v| v.as_array()),
                actual_json.get(&field).and_then(|v| v.as_array()),
            ) {
                drift.change = list_change(w, h);
            }
            out.push(drift);
        }
    }
    for (key, want) in desired_tags {
        let have = observed.tags.get(key);
        if have != Some(want) {
            let have = have.map(String::as_str).unwrap_or("<absent>");
            out.push(FieldDrift::value(node, &format!("tags.{key}"), want, have));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{InstanceSpec, SecurityGroupSpec};
    use crate::cloud::{SgRule, State};

    fn sg(ingress: Vec<SgRule>) -> Spec {
        Spec::SecurityGroup(SecurityGroupSpec {
            vpc_id: "vpc-1".into(),
            name: "b".into(),
            description: "d".into(),
            ingress,
            egress: vec![],
        })
    }

    fn rule(port: i32, source: &str) -> SgRule {
        SgRule {
            protocol: "tcp".into(),
            from_port: port,
            to_port: port,
            source: source.into(),
        }
    }

    fn observed(spec: Spec, tags: &[(&str, &str)]) -> Observed {
        Observed {
            id: "sg-1".into(),
            arn: None,
            state: State::Available,
            spec,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            attributes: Default::default(),
        }
    }

    #[test]
    fn drift_names_the_field_and_both_values() {
        let tags = BTreeMap::from([("team".to_string(), "portal".to_string())]);
        let cases: Vec<(Spec, Observed, Vec<&str>, &str)> = vec![
            (
                sg(vec![rule(22, "203.0.113.0/24")]),
                observed(
                    sg(vec![rule(22, "203.0.113.0/24")]),
                    &[("team", "portal"), ("aws:x", "y")],
                ),
                vec![],
                "equal specs and extra tags are no drift",
            ),
            (
                sg(vec![rule(22, "203.0.113.0/24")]),
                observed(
                    sg(vec![rule(22, "0.0.0.0/0"), rule(22, "203.0.113.0/24")]),
                    &[("team", "portal")],
                ),
                vec!["ingress"],
                "an added rule is drift on ingress",
            ),
            (
                sg(vec![rule(22, "a"), rule(443, "b")]),
                observed(
                    sg(vec![rule(443, "b"), rule(22, "a")]),
                    &[("team", "portal")],
                ),
                vec![],
                "rule order is not drift",
            ),
            (
                sg(vec![]),
                observed(sg(vec![]), &[]),
                vec!["tags.team"],
                "a removed tag is drift",
            ),
        ];
        for (desired, seen, fields, why) in cases {
            let got: Vec<String> = diff("sg/bastion", &desired, &tags, &seen)
                .into_iter()
                .map(|d| d.field)
                .collect();
            assert_eq!(got, fields, "{why}");
        }
        let drift = diff(
            "sg/bastion",
            &sg(vec![rule(22, "203.0.113.0/24")]),
            &tags,
            &observed(sg(vec![rule(22, "0.0.0.0/0")]), &[("team", "portal")]),
        );
        assert!(
            drift[0].actual.contains("0.0.0.0/0") && drift[0].desired.contains("203.0.113.0/24"),
            "{drift:?}"
        );
    }

    #[test]
    fn ssm_resolved_images_are_not_drift() {
        let instance = |image: &str| {
            Spec::Instance(InstanceSpec {
                subnet_id: "subnet-1".into(),
                security_group_ids: vec![],
                instance_type: "t3.micro".into(),
                image_id: image.into(),
                imds_v2_required: true,
                root_volume_gib: 8,
                root_volume_encrypted: true,
                root_volume_kms_key_arn: "k".into(),
                associate_public_ip: true,
                key_name: String::new(),
            })
        };
        let seen = observed(instance("ami-0123456789abcdef0"), &[]);
        assert!(
            diff(
                "i",
                &instance("resolve:ssm:/aws/service/x"),
                &BTreeMap::new(),
                &seen
            )
            .is_empty()
        );
        assert_eq!(
            diff("i", &instance("ami-1"), &BTreeMap::new(), &seen).len(),
            1,
            "an explicit image that differs is drift"
        );
    }

    #[test]
    fn the_change_shows_what_differs_not_both_whole_values() {
        let tags = BTreeMap::new();
        let all = SgRule {
            protocol: "-1".into(),
            from_port: 0,
            to_port: 0,
            source: "sg-0app".into(),
        };
        let range = SgRule {
            protocol: "tcp".into(),
            from_port: 8000,
            to_port: 8080,
            source: "10.0.0.0/16".into(),
        };
        // (spec's rules, AWS's rules, the change): each row one way a list differs.
        let rows: Vec<(Vec<SgRule>, Vec<SgRule>, &str)> = vec![
            (
                vec![rule(22, "203.0.113.0/24")],
                vec![rule(22, "203.0.113.0/24"), rule(22, "0.0.0.0/0")],
                "+ tcp/22 from 0.0.0.0/0",
            ),
            (
                vec![rule(22, "203.0.113.0/24"), range.clone()],
                vec![rule(22, "203.0.113.0/24")],
                "- tcp/8000-8080 from 10.0.0.0/16",
            ),
            (
                vec![rule(5432, "sg-0app")],
                vec![all.clone()],
                "+ all traffic from sg-0app; - tcp/5432 from sg-0app",
            ),
        ];
        for (want, have, change) in rows {
            let found = diff("sg/db", &sg(want), &tags, &observed(sg(have), &[]));
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].change, change);
        }
        // A scalar and a tag say both values.
        let subnet = |public: bool| {
            Spec::Subnet(crate::cloud::SubnetSpec {
                vpc_id: "vpc-1".into(),
                cidr_block: "10.0.0.0/24".into(),
                availability_zone: "us-east-1a".into(),
                map_public_ip_on_launch: public,
            })
        };
        let tags = BTreeMap::from([("team".to_string(), "portal".to_string())]);
        let found = diff(
            "subnet/private/a",
            &subnet(false),
            &tags,
            &observed(subnet(true), &[]),
        );
        let changes: Vec<&str> = found.iter().map(|d| d.change.as_str()).collect();
        assert_eq!(
            changes,
            ["spec false, AWS true", "spec portal, AWS <absent>"]
        );
    }
}
