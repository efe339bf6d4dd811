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
    let mut out = Vec::new();
    for (field, want) in desired.fields() {
        let have = actual.get(&field).cloned().unwrap_or_default();
        if want != have && !resolved_at_creation(&field, &want) {
            out.push(FieldDrift {
                node: node.into(),
                field,
                desired: want,
                actual: have,
            });
        }
    }
    for (key, want) in desired_tags {
        let have = observed.tags.get(key);
        if have != Some(want) {
            out.push(FieldDrift {
                node: node.into(),
                field: format!("tags.{key}"),
                desired: want.clone(),
                actual: have.cloned().unwrap_or_else(|| "<absent>".into()),
            });
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
}
