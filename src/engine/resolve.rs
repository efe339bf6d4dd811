//! Replacing `ref:<node>:<output>` placeholders with what AWS reported for `<node>`.

use std::collections::BTreeMap;

use crate::cloud::{Observed, Spec};

/// Outputs of the nodes that exist: node -> what was observed or created.
pub type Outputs = BTreeMap<String, Observed>;

/// The value of `output` (`id`, `arn` or an attribute) of an observed resource.
pub fn output(observed: &Observed, output: &str) -> Option<String> {
    match output {
        "id" => Some(observed.id.clone()),
        "arn" => observed.arn.clone(),
        other => observed.attributes.get(other).cloned(),
    }
}

/// The spec with every placeholder replaced, or the first node whose output is missing.
pub fn resolve(spec: &Spec, outputs: &Outputs) -> Result<Spec, String> {
    let mut value = serde_json::to_value(spec).map_err(|e| e.to_string())?;
    replace(&mut value, outputs)?;
    serde_json::from_value(value).map_err(|e| e.to_string())
}

fn replace(value: &mut serde_json::Value, outputs: &Outputs) -> Result<(), String> {
    match value {
        serde_json::Value::String(s) => {
            if let Some(rest) = s.strip_prefix("ref:")
                && let Some((node, field)) = rest.rsplit_once(':')
            {
                let found = outputs
                    .get(node)
                    .and_then(|o| output(o, field))
                    .ok_or_else(|| node.to_string())?;
                *s = found;
            }
            Ok(())
        }
        serde_json::Value::Array(items) => items.iter_mut().try_for_each(|v| replace(v, outputs)),
        serde_json::Value::Object(map) => map.values_mut().try_for_each(|v| replace(v, outputs)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::State;
    use crate::cloud::{ElasticIpSpec, FlowLogSpec, NatGatewaySpec};

    fn observed(id: &str, arn: Option<&str>) -> Observed {
        Observed {
            id: id.into(),
            arn: arn.map(String::from),
            state: State::Available,
            spec: Spec::ElasticIp(ElasticIpSpec {}),
            tags: Default::default(),
            attributes: BTreeMap::from([("publicIp".to_string(), "198.51.100.7".to_string())]),
        }
    }

    #[test]
    fn placeholders_become_ids_arns_and_attributes() {
        let outputs = Outputs::from([
            ("vpc".to_string(), observed("vpc-1", None)),
            ("logs".to_string(), observed("/g", Some("arn:aws:logs:x"))),
            ("eip".to_string(), observed("eipalloc-1", None)),
        ]);
        let spec = Spec::FlowLog(FlowLogSpec {
            vpc_id: "ref:vpc:id".into(),
            log_group_name: "ref:logs:id".into(),
            role_arn: "ref:logs:arn".into(),
            traffic_type: "ALL".into(),
        });
        assert_eq!(
            resolve(&spec, &outputs).unwrap(),
            Spec::FlowLog(FlowLogSpec {
                vpc_id: "vpc-1".into(),
                log_group_name: "/g".into(),
                role_arn: "arn:aws:logs:x".into(),
                traffic_type: "ALL".into()
            })
        );
        let missing = Spec::NatGateway(NatGatewaySpec {
            subnet_id: "ref:subnet/public/a:id".into(),
            allocation_id: "ref:eip:id".into(),
        });
        assert_eq!(
            resolve(&missing, &outputs).unwrap_err(),
            "subnet/public/a",
            "names the node not yet available"
        );
        assert_eq!(
            output(&outputs["eip"], "publicIp").as_deref(),
            Some("198.51.100.7")
        );
    }
}
