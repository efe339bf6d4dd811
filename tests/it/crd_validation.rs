//! The generated CRDs against the examples: what the API server would accept, refuse
//! and default. Validation runs through `hipaa_operator::api::validation`, i.e. the
//! `jsonschema` crate for the structural schema and `kube-cel` for the CEL rules, over
//! the schema the code generates (and `crds_are_fresh` proves is the committed one).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hipaa_operator::api::{
    self, HipaaBackend, HipaaEdge, HipaaNetwork, PaymentPipeline, manifests::Checker,
    validation::SchemaValidator,
};
use serde::Deserialize;
use serde_json::{Value, json};

const COMMITTED_CRDS: &str = "crds/hipaa.dev.yaml";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// One validator per kind, keyed by `kind`.
fn validators() -> BTreeMap<String, SchemaValidator> {
    api::crds()
        .iter()
        .map(|crd| {
            let v = SchemaValidator::for_crd(crd, "v1alpha1").expect("generated schema compiles");
            (crd.spec.names.kind.clone(), v)
        })
        .collect()
}

fn yaml_documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("example is valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn validator_for<'a>(
    validators: &'a BTreeMap<String, SchemaValidator>,
    doc: &Value,
) -> &'a SchemaValidator {
    assert_eq!(
        doc["apiVersion"], "hipaa.dev/v1alpha1",
        "apiVersion of {doc}"
    );
    let kind = doc["kind"].as_str().expect("kind is a string");
    validators
        .get(kind)
        .unwrap_or_else(|| panic!("no CRD for kind {kind}"))
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo(dir))
        .expect("examples directory exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn crds_are_fresh() {
    let committed = std::fs::read_to_string(repo(COMMITTED_CRDS)).unwrap_or_default();
    assert!(
        committed == api::crds_yaml(),
        "{COMMITTED_CRDS} differs from what the code generates; run \
         `cargo run -q -- crds > {COMMITTED_CRDS}` and commit it"
    );
}

#[test]
fn committed_crds_have_no_scalar_a_yaml_1_1_parser_reads_as_a_boolean() {
    // kubectl parses YAML 1.1, where plain y/n/yes/no/on/off are booleans: an enum value
    // `N` in the CRD would reach the API server as `false`.
    let ambiguous = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF",
    ];
    let text = std::fs::read_to_string(repo(COMMITTED_CRDS)).unwrap();
    for (number, line) in text.lines().enumerate() {
        let scalar = line
            .trim_start()
            .trim_start_matches("- ")
            .rsplit(": ")
            .next()
            .unwrap_or_default()
            .trim();
        assert!(
            !ambiguous.contains(&scalar),
            "{COMMITTED_CRDS}:{}: {line:?}",
            number + 1
        );
    }
}

#[test]
fn crds_command_prints_the_committed_crds() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hipaa-operator"))
        .arg("crds")
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    let docs = yaml_documents(&printed);
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "hipaanetworks.hipaa.dev",
            "hipaabackends.hipaa.dev",
            "hipaaedges.hipaa.dev",
            "paymentpipelines.hipaa.dev"
        ]
    );
    assert!(
        printed == std::fs::read_to_string(repo(COMMITTED_CRDS)).unwrap_or_default(),
        "`hipaa-operator crds` differs from {COMMITTED_CRDS}"
    );
}

#[test]
fn crds_carry_names_columns_and_status_subresource() {
    for crd in api::crds() {
        let kind = &crd.spec.names.kind;
        assert_eq!(crd.spec.group, "hipaa.dev");
        assert_eq!(crd.spec.scope, "Namespaced", "{kind}");
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["hipaa".to_string()][..]),
            "{kind}: `kubectl get hipaa` lists it"
        );
        let short = crd.spec.names.short_names.clone().unwrap_or_default();
        let expected_short = match kind.as_str() {
            "HipaaNetwork" => "hnet",
            "HipaaBackend" => "hback",
            "HipaaEdge" => "hedge",
            "PaymentPipeline" => "hpay",
            other => panic!("unexpected kind {other}"),
        };
        assert_eq!(short, [expected_short], "{kind}");
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{kind}: status subresource"
        );
        let columns: Vec<&str> = version
            .additional_printer_columns
            .as_ref()
            .map(|c| {
                c.iter()
                    .filter(|c| c.priority.unwrap_or(0) == 0)
                    .map(|c| c.name.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let key_output = match kind.as_str() {
            "HipaaNetwork" => "VPC",
            "HipaaBackend" => "DB Endpoint",
            "HipaaEdge" => "CloudFront",
            _ => "Queue",
        };
        assert_eq!(
            columns,
            ["Ready", "Synced", "Drifted", key_output, "Age"],
            "{kind}: default columns"
        );
    }
}

#[test]
fn every_field_has_a_description() {
    fn walk(schema: &Value, path: &str, missing: &mut Vec<String>) {
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                let p = format!("{path}.{name}");
                // metadata/apiVersion/kind are Kubernetes' own; Condition comes from k8s-openapi.
                if !matches!(name.as_str(), "apiVersion" | "kind" | "metadata")
                    && sub
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
                {
                    missing.push(p.clone());
                }
                walk(sub, &p, missing);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(items, &format!("{path}[]"), missing);
        }
    }
    let mut missing = Vec::new();
    for (kind, v) in validators() {
        walk(v.schema(), &kind, &mut missing);
    }
    assert!(
        missing.is_empty(),
        "fields without a description (kubectl explain shows nothing): {missing:#?}"
    );
}

#[test]
fn every_valid_example_is_accepted_and_round_trips() {
    let validators = validators();
    let files = yaml_files("examples");
    assert!(!files.is_empty(), "examples/*.yaml exist");
    let mut kinds_seen = std::collections::BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in yaml_documents(&text) {
            let name = format!(
                "{}: {}/{}",
                file.display(),
                doc["kind"],
                doc["metadata"]["name"]
            );
            let v = validator_for(&validators, &doc);
            let defaulted = v
                .validate(&doc, None)
                .unwrap_or_else(|e| panic!("{name} refused: {e}"));
            assert_eq!(
                v.unknown_fields(&doc),
                Vec::<String>::new(),
                "{name}: fields the schema does not declare"
            );
            // The typed API reads what the API server stores, and applies the same defaults.
            let typed = match doc["kind"].as_str().unwrap() {
                "HipaaNetwork" => round_trip::<HipaaNetwork>(&doc),
                "HipaaBackend" => round_trip::<HipaaBackend>(&doc),
                "HipaaEdge" => round_trip::<HipaaEdge>(&doc),
                "PaymentPipeline" => round_trip::<PaymentPipeline>(&doc),
                other => panic!("{name}: unexpected kind {other}"),
            };
            assert_eq!(
                typed["spec"], defaulted["spec"],
                "{name}: Rust defaults differ from schema defaults"
            );
            kinds_seen.insert(doc["kind"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        kinds_seen.len(),
        4,
        "the examples use all four kinds: {kinds_seen:?}"
    );
}

fn round_trip<K: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Value {
    let typed: K =
        serde_json::from_value(doc.clone()).expect("example deserializes into the Rust type");
    serde_json::to_value(typed).expect("serializes")
}

#[test]
fn stack_example_is_wired_by_references() {
    let docs = yaml_documents(&std::fs::read_to_string(repo("examples/stack.yaml")).unwrap());
    let name_of = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .and_then(|d| d["metadata"]["name"].as_str())
            .unwrap_or_else(|| panic!("stack.yaml has a {kind}"))
            .to_string()
    };
    let spec_of = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .map(|d| d["spec"].clone())
            .unwrap()
    };
    assert_eq!(
        spec_of("HipaaBackend")["networkRef"]["name"],
        name_of("HipaaNetwork")
    );
    assert_eq!(
        spec_of("PaymentPipeline")["networkRef"]["name"],
        name_of("HipaaNetwork")
    );
    assert_eq!(
        spec_of("HipaaEdge")["backendRef"]["name"],
        name_of("HipaaBackend")
    );
}

/// The `# Breaks:` and `# Expect:` header of an invalid example.
struct Expectation {
    breaks: String,
    expect: Vec<String>,
}

fn expectation(text: &str) -> Expectation {
    let mut breaks = String::new();
    let mut expect = Vec::new();
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(rest) = line.strip_prefix("# Breaks:") {
            breaks = rest.trim().to_string();
        } else if let Some(rest) = line.strip_prefix("# Expect:") {
            expect.push(rest.trim().to_string());
        }
    }
    Expectation { breaks, expect }
}

#[test]
fn every_invalid_example_is_refused_with_a_message_naming_the_field() {
    let checker = Checker::new().expect("schemas compile");
    let files = yaml_files("examples/invalid");
    assert!(
        files.len() >= 19,
        "one invalid manifest per rule; found {}",
        files.len()
    );
    for file in files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let exp = expectation(&text);
        assert!(
            !exp.breaks.is_empty(),
            "{name}: a `# Breaks:` comment names the rule"
        );
        assert!(
            !exp.expect.is_empty(),
            "{name}: an `# Expect:` comment gives the error"
        );
        let verdicts = checker.check_stream(&text);
        let (last, earlier) = verdicts
            .split_last()
            .unwrap_or_else(|| panic!("{name}: no object"));
        // Two documents are a stored object and an update of it: the first is valid.
        for v in earlier {
            assert!(v.accepted(), "{name}: {} refused: {:?}", v.object, v.errors);
        }
        assert_eq!(
            last.update,
            !earlier.is_empty(),
            "{name}: a second document is an update"
        );
        let rendered: Vec<String> = last.errors.iter().map(ToString::to_string).collect();
        assert!(
            !rendered.is_empty(),
            "{name}: accepted, but it breaks: {}",
            exp.breaks
        );
        for expected in &exp.expect {
            assert!(
                rendered.iter().any(|r| r.contains(expected.as_str())),
                "{name}: expected an error containing {expected:?}, got {rendered:#?}"
            );
        }
        assert_eq!(
            rendered.len(),
            exp.expect.len(),
            "{name}: breaks more than the one rule it is about: {rendered:#?}"
        );
    }
}

#[test]
fn validate_command_accepts_the_stack_and_refuses_each_invalid_example() {
    let run = |files: &[PathBuf]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hipaa-operator"));
        cmd.arg("validate");
        for f in files {
            cmd.arg("-f").arg(f);
        }
        cmd.output().expect("binary runs")
    };
    let ok = run(&[repo("examples/stack.yaml")]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout)
            .matches(" accepted")
            .count(),
        4
    );

    for file in yaml_files("examples/invalid") {
        let out = run(std::slice::from_ref(&file));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: exit status; output {stdout}",
            file.display()
        );
        for expected in expectation(&std::fs::read_to_string(&file).unwrap()).expect {
            assert!(
                stdout.contains(&expected),
                "{}: {expected:?} not in {stdout}",
                file.display()
            );
        }
    }
}

#[test]
fn defaults_are_applied_as_documented() {
    let validators = validators();
    let minimal = [
        json!({"apiVersion": "hipaa.dev/v1alpha1", "kind": "HipaaNetwork", "metadata": {"name": "n"},
               "spec": {"region": "us-east-1", "cidrBlock": "10.0.0.0/16",
                        "availabilityZones": ["us-east-1a", "us-east-1b"],
                        "bastion": {"allowedCidrs": ["203.0.113.0/24"]}}}),
        json!({"apiVersion": "hipaa.dev/v1alpha1", "kind": "HipaaBackend", "metadata": {"name": "b"},
               "spec": {"region": "us-east-1", "networkRef": {"name": "n"}}}),
        json!({"apiVersion": "hipaa.dev/v1alpha1", "kind": "HipaaEdge", "metadata": {"name": "e"},
               "spec": {"region": "us-east-1", "backendRef": {"name": "b"}, "domainName": "app.example.com",
                        "hostedZone": {"name": "example.com"}}}),
        json!({"apiVersion": "hipaa.dev/v1alpha1", "kind": "PaymentPipeline", "metadata": {"name": "p"},
               "spec": {"region": "us-east-1", "networkRef": {"name": "n"},
                        "paymentFunction": {"handler": "a.h", "code": {"s3Bucket": "code-bucket", "s3Key": "a.zip"}},
                        "pollerFunction": {"handler": "b.h", "code": {"s3Bucket": "code-bucket", "s3Key": "b.zip"}}}}),
    ];
    // (kind, JSON pointer under the object, default, what it proves)
    let cases: &[(&str, &str, Value, &str)] = &[
        (
            "HipaaNetwork",
            "/spec/deletionPolicy",
            json!("Delete"),
            "AWS resources are removed with the CR unless Retain is asked",
        ),
        (
            "HipaaNetwork",
            "/spec/driftPolicy",
            json!("Remediate"),
            "drift is repaired unless Report is asked",
        ),
        (
            "HipaaNetwork",
            "/spec/logRetentionDays",
            json!(365),
            "logs kept a year (LOG-1)",
        ),
        (
            "HipaaNetwork",
            "/spec/natGateways",
            json!("PerAz"),
            "egress survives the loss of a zone",
        ),
        (
            "HipaaNetwork",
            "/spec/subnets/publicPrefixLength",
            json!(24),
            "public subnets are /24",
        ),
        (
            "HipaaNetwork",
            "/spec/subnets/privatePrefixLength",
            json!(20),
            "private subnets are /20",
        ),
        (
            "HipaaNetwork",
            "/spec/bastion/instanceType",
            json!("t3.micro"),
            "small bastion",
        ),
        (
            "HipaaNetwork",
            "/spec/bastion/rootVolumeGib",
            json!(8),
            "8 GiB bastion root volume",
        ),
        (
            "HipaaBackend",
            "/spec/app/count",
            json!(2),
            "two application instances",
        ),
        (
            "HipaaBackend",
            "/spec/app/port",
            json!(80),
            "application port 80",
        ),
        (
            "HipaaBackend",
            "/spec/loadBalancer/port",
            json!(80),
            "NLB listener port 80",
        ),
        (
            "HipaaBackend",
            "/spec/database/engine",
            json!("postgres"),
            "PostgreSQL by default",
        ),
        (
            "HipaaBackend",
            "/spec/database/backupRetentionDays",
            json!(7),
            "7 days of backups (RDS-3)",
        ),
        (
            "HipaaBackend",
            "/spec/database/allocatedStorageGib",
            json!(50),
            "50 GiB of storage",
        ),
        (
            "HipaaBackend",
            "/spec/database/instanceClass",
            json!("db.t3.medium"),
            "db.t3.medium",
        ),
        (
            "HipaaEdge",
            "/spec/cloudFront/minimumProtocolVersion",
            json!("TLSv1.2_2021"),
            "TLS 1.2 2021 policy (CF-2)",
        ),
        (
            "HipaaEdge",
            "/spec/cloudFront/viewerProtocolPolicy",
            json!("redirect-to-https"),
            "HTTP redirected to HTTPS (CF-1)",
        ),
        (
            "HipaaEdge",
            "/spec/hostedZone/create",
            json!(false),
            "zones are not created unless asked",
        ),
        (
            "HipaaEdge",
            "/spec/api/stageName",
            json!("prod"),
            "stage prod",
        ),
        (
            "HipaaEdge",
            "/spec/api/loggingLevel",
            json!("INFO"),
            "execution logging on (API-1)",
        ),
        (
            "PaymentPipeline",
            "/spec/paymentFunction/runtime",
            json!("python3.12"),
            "python3.12 runtime",
        ),
        (
            "PaymentPipeline",
            "/spec/paymentFunction/reservedConcurrency",
            json!(10),
            "reserved concurrency set (LAM-4)",
        ),
        (
            "PaymentPipeline",
            "/spec/pollerFunction/batchSize",
            json!(10),
            "batches of 10 messages",
        ),
        (
            "PaymentPipeline",
            "/spec/queue/messageRetentionSeconds",
            json!(345600),
            "4 days of retention",
        ),
        (
            "PaymentPipeline",
            "/spec/queue/maxReceiveCount",
            json!(5),
            "5 receives before the DLQ (SQS-2)",
        ),
        (
            "PaymentPipeline",
            "/spec/table/billingMode",
            json!("PAY_PER_REQUEST"),
            "on-demand capacity",
        ),
        (
            "PaymentPipeline",
            "/spec/table/partitionKey",
            json!({"name": "paymentId", "type": "String"}),
            "keyed by paymentId",
        ),
    ];
    for (kind, pointer, expected, why) in cases {
        let doc = minimal.iter().find(|d| d["kind"] == *kind).unwrap();
        let v = &validators[*kind];
        let defaulted = v
            .validate(doc, None)
            .unwrap_or_else(|e| panic!("minimal {kind} refused: {e}"));
        assert_eq!(
            defaulted.pointer(pointer),
            Some(expected),
            "{kind}{pointer}: {why}"
        );
        // The default is the one `kubectl explain` documents.
        let description = schema_at(v.schema(), pointer)
            .and_then(|s| s.get("description"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{kind}{pointer} has a description"));
        let shown = match expected {
            Value::String(s) => s.clone(),
            Value::Object(_) => expected["name"].as_str().unwrap().to_string(),
            other => other.to_string(),
        };
        assert!(
            description.contains(&shown),
            "{kind}{pointer}: description {description:?} does not mention the default {shown}"
        );
    }
}

/// The schema node of the field at a JSON pointer of an object.
fn schema_at<'a>(schema: &'a Value, pointer: &str) -> Option<&'a Value> {
    pointer
        .split('/')
        .skip(1)
        .try_fold(schema, |node, key| node.get("properties")?.get(key))
}

#[test]
fn every_cel_rule_compiles_and_fits_the_cost_budget() {
    fn rules(schema: &Value, out: &mut Vec<String>) {
        match schema {
            Value::Object(map) => {
                if let Some(Value::Array(list)) = map.get("x-kubernetes-validations") {
                    out.extend(
                        list.iter()
                            .filter_map(|r| r["rule"].as_str().map(String::from)),
                    );
                }
                map.values().for_each(|v| rules(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| rules(v, out)),
            _ => {}
        }
    }
    let mut total = 0;
    for (kind, v) in validators() {
        let compiled = kube_cel::compile_schema(v.schema());
        assert!(
            compiled.compilation_errors().is_empty(),
            "{kind}: {:?}",
            compiled.compilation_errors()
        );
        let mut found = Vec::new();
        rules(v.schema(), &mut found);
        for rule in &found {
            let warnings = kube_cel::estimate_rule_cost(rule, &compiled);
            assert!(warnings.is_empty(), "{kind}: rule {rule:?}: {warnings:?}");
        }
        total += found.len();
    }
    assert!(
        total >= 15,
        "the CRDs carry their CEL rules ({total} found)"
    );
}
