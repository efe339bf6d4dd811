//! Checking manifest files against the hipaa.dev CRDs without a cluster, as the API
//! server would on `kubectl apply`: for CI pipelines and pre-commit hooks that want the
//! server's verdict before anything is applied.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::validation::{FieldError, FieldErrorType, SchemaValidator};

/// The verdict on one object of a manifest stream.
#[derive(Debug)]
pub struct Verdict {
    /// `Kind/namespace/name` (namespace omitted when the manifest has none).
    pub object: String,
    /// True when an earlier document of the stream declared the same object, so this one
    /// was checked as an update of it (transition rules such as immutability apply).
    pub update: bool,
    /// Empty when the object is accepted.
    pub errors: Vec<FieldError>,
    /// The object as the API server would store it (defaults applied), when accepted.
    pub defaulted: Option<Value>,
}

impl Verdict {
    pub fn accepted(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Validators for every hipaa.dev kind, by kind.
pub struct Checker {
    validators: BTreeMap<String, SchemaValidator>,
}

impl Checker {
    /// Compiles the schemas of the CRDs this build generates.
    pub fn new() -> Result<Self, super::validation::SchemaError> {
        let mut validators = BTreeMap::new();
        for crd in super::crds() {
            let version = crd.spec.versions[0].name.clone();
            validators.insert(
                crd.spec.names.kind.clone(),
                SchemaValidator::for_crd(&crd, &version)?,
            );
        }
        Ok(Self { validators })
    }

    /// Checks every document of a YAML stream in order. A document that repeats an
    /// earlier object (same kind, namespace and name) is checked as an update of the
    /// earlier one's accepted form. Documents of other API groups are skipped; a document
    /// that is not YAML, has no kind, or has fields the schema does not declare is refused
    /// (the API server refuses unknown fields under kubectl's default strict validation).
    pub fn check_stream(&self, text: &str) -> Vec<Verdict> {
        let mut stored: BTreeMap<String, Value> = BTreeMap::new();
        let mut verdicts = Vec::new();
        for (index, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let value = match Value::deserialize(doc) {
                Ok(Value::Null) => continue,
                Ok(v) => v,
                Err(e) => {
                    verdicts.push(Verdict {
                        object: format!("document {}", index + 1),
                        update: false,
                        defaulted: None,
                        errors: vec![FieldError {
                            field: String::new(),
                            kind: FieldErrorType::Invalid,
                            value: None,
                            detail: format!("not valid YAML: {e}"),
                        }],
                    });
                    // The YAML parser cannot resynchronise after an error.
                    break;
                }
            };
            let api_version = value["apiVersion"].as_str().unwrap_or_default();
            if !api_version.starts_with(&format!("{}/", super::GROUP)) {
                continue;
            }
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            let key = format!(
                "{kind}/{}{}",
                value["metadata"]["namespace"]
                    .as_str()
                    .map(|n| format!("{n}/"))
                    .unwrap_or_default(),
                value["metadata"]["name"].as_str().unwrap_or_default()
            );
            let Some(validator) = self.validators.get(&kind) else {
                verdicts.push(Verdict {
                    object: key,
                    update: false,
                    defaulted: None,
                    errors: vec![FieldError {
                        field: "kind".into(),
                        kind: FieldErrorType::Unsupported,
                        value: Some(Value::String(kind)),
                        detail: format!(
                            "supported values: {}",
                            self.validators
                                .keys()
                                .map(|k| format!("{k:?}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }],
                });
                continue;
            };
            let old = stored.get(&key);
            let mut errors: Vec<FieldError> = validator
                .unknown_fields(&value)
                .into_iter()
                .map(|field| FieldError {
                    field,
                    kind: FieldErrorType::Forbidden,
                    value: None,
                    detail: "field not declared in schema".into(),
                })
                .collect();
            let update = old.is_some();
            let mut accepted = None;
            match validator.validate(&value, old) {
                Ok(defaulted) if errors.is_empty() => {
                    stored.insert(key.clone(), defaulted.clone());
                    accepted = Some(defaulted);
                }
                Ok(_) => {}
                Err(invalid) => errors.extend(invalid.0),
            }
            verdicts.push(Verdict {
                object: key,
                update,
                errors,
                defaulted: accepted,
            });
        }
        verdicts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETWORK: &str = "apiVersion: hipaa.dev/v1alpha1
kind: HipaaNetwork
metadata: {name: n, namespace: team-a}
spec:
  region: us-east-1
  cidrBlock: CIDR
  availabilityZones: [us-east-1a, us-east-1b]
  bastion: {allowedCidrs: [203.0.113.0/24]}
";

    #[test]
    fn later_document_for_the_same_object_is_an_update() {
        let checker = Checker::new().unwrap();
        let stream = format!(
            "{}---\n{}",
            NETWORK.replace("CIDR", "10.0.0.0/16"),
            NETWORK.replace("CIDR", "10.9.0.0/16")
        );
        let verdicts = checker.check_stream(&stream);
        assert_eq!(verdicts.len(), 2);
        assert!(
            verdicts[0].accepted() && !verdicts[0].update,
            "the first is a create and valid"
        );
        assert!(
            verdicts[1].update,
            "the second repeats HipaaNetwork/team-a/n"
        );
        assert_eq!(
            verdicts[1].errors[0].to_string(),
            "spec.cidrBlock: Invalid value: \"string\": cidrBlock is immutable"
        );
    }

    #[test]
    fn other_groups_are_skipped_and_unknown_fields_refused() {
        let checker = Checker::new().unwrap();
        let stream = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: team-a}}\n---\n{}  natGateway: Single\n",
            NETWORK.replace("CIDR", "10.0.0.0/16")
        );
        let verdicts = checker.check_stream(&stream);
        assert_eq!(verdicts.len(), 1, "the Namespace is not ours to check");
        assert_eq!(
            verdicts[0].errors[0].to_string(),
            "spec.natGateway: Forbidden: field not declared in schema"
        );
    }

    #[test]
    fn broken_yaml_and_unknown_kinds_are_refused() {
        let checker = Checker::new().unwrap();
        let verdicts = checker.check_stream(
            "apiVersion: hipaa.dev/v1alpha1\nkind: HipaaDatabase\nmetadata: {name: x}\n",
        );
        assert!(
            verdicts[0].errors[0]
                .to_string()
                .starts_with("kind: Unsupported value: \"HipaaDatabase\"")
        );
        let verdicts = checker.check_stream("kind: [unclosed\n");
        assert!(verdicts[0].errors[0].detail.starts_with("not valid YAML"));
    }
}
