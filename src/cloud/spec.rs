//! What one resource is (desired) or was seen to be (observed): one struct per kind, and
//! [`Spec`], the enum over them that the engine handles without knowing the kind.
//!
//! The JSON shape is `{"kind": "vpc", "cidrBlock": …, …}` (the kind's name in camelCase
//! plus its fields in camelCase): drift, status and plan output name fields by these
//! names, so they are part of the operator's output.

use serde::{Deserialize, Serialize};

use super::kind::Kind;
use super::{CloudError, Desired, Observed};

/// An ingress or egress rule of a security group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SgRule {
    /// `tcp`, `udp`, `icmp` or `-1` (all).
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    /// An IPv4/IPv6 CIDR, or a security group id (`sg-…`).
    pub source: String,
}

impl SgRule {
    /// `tcp` from `from_port` to `to_port` from `source`.
    pub fn tcp(from_port: i32, to_port: i32, source: &str) -> Self {
        SgRule {
            protocol: "tcp".into(),
            from_port,
            to_port,
            source: source.into(),
        }
    }
}

/// A route in a route table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Route {
    pub destination: String,
    /// `igw-…`, `nat-…` (or `local`, which observe omits).
    pub target: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KmsKeySpec {
    pub description: String,
    pub rotation_enabled: bool,
    /// AWS services allowed to use the key (encrypt, decrypt, generate data keys,
    /// describe), e.g. `logs.us-east-1.amazonaws.com`, besides the account, which
    /// administers it: the key policy has exactly these two statements. Observed: the
    /// services of the operator's statement, plus [`FOREIGN_KEY_POLICY`] when the policy
    /// has any other statement or lacks the account's.
    pub service_principals: Vec<String>,
    /// Observed only: the key is scheduled for deletion.
    pub pending_deletion: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroupSpec {
    pub name: String,
    pub retention_days: i32,
    pub kms_key_arn: String,
}

/// What a key's observed `service_principals` include when its policy is not the one the
/// operator writes (a statement added or the account's administration removed by hand).
pub const FOREIGN_KEY_POLICY: &str = "(statements the operator did not write)";

/// One `Allow` statement of a role's inline policy: these actions on these resources.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatement {
    pub actions: Vec<String>,
    /// ARNs (or ARN patterns); `*` only where the action cannot be scoped.
    pub resources: Vec<String>,
}

impl PolicyStatement {
    /// A statement with both lists sorted and without duplicates (the form observe
    /// reports, so that order is never drift).
    pub fn new<A: AsRef<str>, R: AsRef<str>>(actions: &[A], resources: &[R]) -> Self {
        let sorted = |items: Vec<String>| {
            let mut items = items;
            items.sort();
            items.dedup();
            items
        };
        PolicyStatement {
            actions: sorted(actions.iter().map(|a| a.as_ref().to_string()).collect()),
            resources: sorted(resources.iter().map(|r| r.as_ref().to_string()).collect()),
        }
    }
}

/// Statements in the form observe reports them: each normalized ([`PolicyStatement::new`]),
/// the list sorted, duplicates and empty statements dropped.
pub fn normalized_statements(statements: &[PolicyStatement]) -> Vec<PolicyStatement> {
    let mut out: Vec<PolicyStatement> = statements
        .iter()
        .map(|s| PolicyStatement::new(&s.actions, &s.resources))
        .filter(|s| !s.actions.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IamRoleSpec {
    pub name: String,
    /// The service allowed to assume it, e.g. `vpc-flow-logs.amazonaws.com`.
    pub trusted_service: String,
    /// What the inline policy allows (least privilege: each action only on the resources
    /// it needs), in [`normalized_statements`] form.
    pub statements: Vec<PolicyStatement>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcSpec {
    pub cidr_block: String,
    pub enable_dns_support: bool,
    pub enable_dns_hostnames: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultSecurityGroupSpec {
    pub vpc_id: String,
    pub ingress: Vec<SgRule>,
    pub egress: Vec<SgRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetSpec {
    pub vpc_id: String,
    pub cidr_block: String,
    pub availability_zone: String,
    pub map_public_ip_on_launch: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InternetGatewaySpec {
    /// The VPC it is attached to ("" when detached).
    pub vpc_id: String,
}

/// An Elastic IP has nothing to configure (its address is the `publicIp` attribute).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElasticIpSpec {}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NatGatewaySpec {
    pub subnet_id: String,
    pub allocation_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteTableSpec {
    pub vpc_id: String,
    pub routes: Vec<Route>,
    /// Subnets associated with the table.
    pub subnet_ids: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupSpec {
    pub vpc_id: String,
    pub name: String,
    pub description: String,
    pub ingress: Vec<SgRule>,
    pub egress: Vec<SgRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSpec {
    pub subnet_id: String,
    pub security_group_ids: Vec<String>,
    pub instance_type: String,
    pub image_id: String,
    /// IMDSv2 only (`HttpTokens=required`).
    pub imds_v2_required: bool,
    pub root_volume_gib: i32,
    pub root_volume_encrypted: bool,
    pub root_volume_kms_key_arn: String,
    pub associate_public_ip: bool,
    pub key_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowLogSpec {
    pub vpc_id: String,
    pub log_group_name: String,
    pub role_arn: String,
    pub traffic_type: String,
}

/// An SNS topic (standard, not FIFO). The id is its ARN.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnsTopicSpec {
    /// Immutable.
    pub name: String,
    pub display_name: String,
    /// KMS key (ARN) for server-side encryption.
    pub kms_master_key_id: String,
    /// The access policy admits only the topic owner's account (the backend writes the
    /// policy itself from the topic's ARN: principal the owner account, AWS:SourceOwner);
    /// observed true only when the topic's policy is exactly that one.
    pub account_only_policy: bool,
}

/// An SQS queue (standard, not FIFO). The id is its URL; its ARN is `Observed::arn` and
/// its URL also the attribute `url`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsQueueSpec {
    /// Immutable.
    pub name: String,
    pub kms_master_key_id: String,
    pub message_retention_seconds: i32,
    pub visibility_timeout_seconds: i32,
    /// Dead-letter queue ARN of the redrive policy; "" = none.
    pub dead_letter_target_arn: String,
    /// maxReceiveCount of the redrive policy; 0 when there is none.
    pub max_receive_count: i32,
    /// The queue policy admits only sqs:SendMessage from this topic (aws:SourceArn),
    /// written by the backend from the queue's ARN; "" = no policy. Observed: the topic
    /// ARN when the policy is exactly that one, else "" (or a short description of a foreign policy).
    pub send_allowed_from_topic_arn: String,
    /// The topic this queue is subscribed to (protocol sqs, raw message delivery on);
    /// "" = none. Create subscribes, update re-subscribes when the subscription is gone,
    /// delete unsubscribes before deleting the queue. Observed through ListSubscriptionsByTopic.
    pub subscribed_topic_arn: String,
}

/// A DynamoDB table. The id is its name; its ARN is `Observed::arn`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamoDbTableSpec {
    /// Immutable.
    pub name: String,
    /// `name:S|N|B`, immutable.
    pub partition_key: String,
    /// `name:S|N|B` or "", immutable.
    pub sort_key: String,
    /// PAY_PER_REQUEST or PROVISIONED.
    pub billing_mode: String,
    /// 0 with PAY_PER_REQUEST.
    pub read_capacity_units: i64,
    pub write_capacity_units: i64,
    /// Customer KMS key (ARN) for SSE.
    pub kms_key_arn: String,
    pub point_in_time_recovery: bool,
    pub deletion_protection: bool,
    /// TTL attribute name; "" = TTL off.
    pub ttl_attribute: String,
}
/// A Lambda function (zip package from S3). Its id is its name; `Observed::arn` is the
/// function ARN.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaFunctionSpec {
    /// Immutable.
    pub name: String,
    pub role_arn: String,
    /// e.g. python3.12
    pub runtime: String,
    pub handler: String,
    /// x86_64 or arm64 (changed with the code: UpdateFunctionCode Architectures).
    pub architecture: String,
    pub memory_mib: i32,
    pub timeout_seconds: i32,
    /// PutFunctionConcurrency; observed through GetFunctionConcurrency (0 = none reserved).
    pub reserved_concurrency: i32,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    /// Environment variables (BTreeMap<String, String>), encrypted with kms_key_arn.
    pub environment: std::collections::BTreeMap<String, String>,
    pub kms_key_arn: String,
    /// Active or PassThrough.
    pub tracing_mode: String,
    /// Where the code comes from: `s3://bucket/key` or `s3://bucket/key?versionId=v`.
    /// The backend deploys from there (Code S3Bucket/S3Key/S3ObjectVersion) and records
    /// what it deployed in two tags on the function, `hipaa.dev/code` (this string) and
    /// `hipaa.dev/code-sha256` (the CodeSha256 AWS answered). Observed: the recorded
    /// source while the function's CodeSha256 still equals the recorded hash; otherwise
    /// `unknown (sha256 <hash>)`, so code deployed by hand is drift and update redeploys
    /// from the spec's source (UpdateFunctionCode) and re-records.
    pub code: String,
}

/// An event source mapping: a Lambda function polling an SQS queue. Its id is the
/// mapping's UUID; `Observed::arn` is the mapping's ARN.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSourceMappingSpec {
    /// The function's name, immutable.
    pub function_name: String,
    /// The queue's ARN, immutable.
    pub event_source_arn: String,
    pub batch_size: i32,
    pub maximum_batching_window_seconds: i32,
    pub enabled: bool,
    /// FunctionResponseTypes ReportBatchItemFailures.
    pub report_batch_item_failures: bool,
}

/// A Lambda function's code source, parsed from [`LambdaFunctionSpec::code`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Object {
    pub bucket: String,
    pub key: String,
    /// `S3ObjectVersion`, when the source names one.
    pub version: Option<String>,
}

impl S3Object {
    /// `s3://bucket/key` or `s3://bucket/key?versionId=v`; anything else is refused as
    /// Lambda refuses a bad `Code` (`InvalidParameterValueException`, from `operation`),
    /// before any call.
    pub fn parse(operation: &str, source: &str) -> Result<S3Object, CloudError> {
        let invalid = || CloudError::Terminal {
            operation: operation.to_string(),
            code: "InvalidParameterValueException".into(),
            message: format!(
                "code {source:?}: expected s3://bucket/key or s3://bucket/key?versionId=v"
            ),
        };
        let rest = source.strip_prefix("s3://").ok_or_else(invalid)?;
        let (path, version) = match rest.rsplit_once("?versionId=") {
            Some((path, version)) if !version.is_empty() => (path, Some(version.to_string())),
            Some(_) => return Err(invalid()),
            None => (rest, None),
        };
        let (bucket, key) = path.split_once('/').ok_or_else(invalid)?;
        if bucket.is_empty() || key.is_empty() {
            return Err(invalid());
        }
        Ok(S3Object {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version,
        })
    }
}

impl LambdaFunctionSpec {
    /// The observed `code` of a function whose `CodeSha256` is `code_sha256`: the source
    /// recorded in its `hipaa.dev/code` tag while its `hipaa.dev/code-sha256` tag still
    /// names that hash, else `unknown (sha256 <hash>)` (code deployed by other means, or
    /// never recorded).
    pub fn recorded_code(
        tags: &std::collections::BTreeMap<String, String>,
        code_sha256: &str,
    ) -> String {
        match (tags.get(super::TAG_CODE), tags.get(super::TAG_CODE_SHA256)) {
            (Some(source), Some(sha)) if sha == code_sha256 => source.clone(),
            _ => format!("unknown (sha256 {code_sha256})"),
        }
    }
}

/// What one resource is (desired) or was seen to be (observed), of any kind. Ids of other
/// resources are AWS ids (the engine resolves references before handing a spec to a
/// provider).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Spec {
    KmsKey(KmsKeySpec),
    LogGroup(LogGroupSpec),
    IamRole(IamRoleSpec),
    Vpc(VpcSpec),
    DefaultSecurityGroup(DefaultSecurityGroupSpec),
    Subnet(SubnetSpec),
    InternetGateway(InternetGatewaySpec),
    ElasticIp(ElasticIpSpec),
    NatGateway(NatGatewaySpec),
    RouteTable(RouteTableSpec),
    SecurityGroup(SecurityGroupSpec),
    Instance(InstanceSpec),
    FlowLog(FlowLogSpec),
    SnsTopic(SnsTopicSpec),
    SqsQueue(SqsQueueSpec),
    DynamoDbTable(DynamoDbTableSpec),
    LambdaFunction(LambdaFunctionSpec),
    EventSourceMapping(EventSourceMappingSpec),
}

impl Spec {
    pub fn kind(&self) -> Kind {
        match self {
            Spec::KmsKey(_) => Kind::KmsKey,
            Spec::LogGroup(_) => Kind::LogGroup,
            Spec::IamRole(_) => Kind::IamRole,
            Spec::Vpc(_) => Kind::Vpc,
            Spec::DefaultSecurityGroup(_) => Kind::DefaultSecurityGroup,
            Spec::Subnet(_) => Kind::Subnet,
            Spec::InternetGateway(_) => Kind::InternetGateway,
            Spec::ElasticIp(_) => Kind::ElasticIp,
            Spec::NatGateway(_) => Kind::NatGateway,
            Spec::RouteTable(_) => Kind::RouteTable,
            Spec::SecurityGroup(_) => Kind::SecurityGroup,
            Spec::Instance(_) => Kind::Instance,
            Spec::FlowLog(_) => Kind::FlowLog,
            Spec::SnsTopic(_) => Kind::SnsTopic,
            Spec::SqsQueue(_) => Kind::SqsQueue,
            Spec::DynamoDbTable(_) => Kind::DynamoDbTable,
            Spec::LambdaFunction(_) => Kind::LambdaFunction,
            Spec::EventSourceMapping(_) => Kind::EventSourceMapping,
        }
    }

    /// The spec's fields as `(name, value as text)`, by name; lists sorted so that order
    /// never counts as drift. Drift is computed on these.
    pub fn fields(&self) -> Vec<(String, String)> {
        let value = serde_json::to_value(self).unwrap_or_default();
        let mut out = Vec::new();
        if let Some(map) = value.as_object() {
            for (key, field) in map {
                if key != "kind" {
                    out.push((key.clone(), field_text(field)));
                }
            }
        }
        out
    }

    /// One field as text (as [`fields`](Self::fields) renders it), by its JSON name.
    pub fn field(&self, name: &str) -> Option<String> {
        let value = serde_json::to_value(self).ok()?;
        value.get(name).filter(|_| name != "kind").map(field_text)
    }

    /// The first of the kind's immutable fields (see [`KindInfo::immutable`]) whose
    /// desired value differs from the observed one, as `(field, observed, desired)`: the
    /// change needs a new resource. A desired value AWS resolves at creation (a
    /// `resolve:ssm:` image) is no change.
    ///
    /// [`KindInfo::immutable`]: super::KindInfo::immutable
    pub fn immutable_change(&self, observed: &Spec) -> Option<(String, String, String)> {
        self.kind().info().immutable.iter().find_map(|field| {
            let want = self.field(field).unwrap_or_default();
            let have = observed.field(field).unwrap_or_default();
            (want != have && !resolved_at_creation(field, &want))
                .then(|| (field.to_string(), have, want))
        })
    }

    /// `Err` (`InvalidParameterValue`, naming the field, as `operation` answers) when
    /// [`immutable_change`](Self::immutable_change) finds one: every update checks this
    /// before its first call.
    pub fn check_immutable(&self, operation: &str, observed: &Spec) -> Result<(), CloudError> {
        match self.immutable_change(observed) {
            None => Ok(()),
            Some((field, have, want)) => Err(CloudError::Terminal {
                operation: operation.to_string(),
                code: "InvalidParameterValue".into(),
                message: format!(
                    "{field} cannot be changed in place (is {have}, desired {want}): replace the resource"
                ),
            }),
        }
    }
}

/// Fields whose desired value AWS resolves at creation and reports differently
/// (`resolve:ssm:` image ids become AMI ids): the observed value is never a difference.
pub fn resolved_at_creation(field: &str, desired: &str) -> bool {
    field == "imageId" && desired.starts_with("resolve:ssm:")
}

fn field_text(field: &serde_json::Value) -> String {
    match field {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => {
            let mut rendered: Vec<String> = items.iter().map(render).collect();
            rendered.sort();
            format!("[{}]", rendered.join(", "))
        }
        other => render(other),
    }
}

/// A JSON value as drift shows it: strings bare, objects as `key=value …`.
pub(crate) fn render(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", render(v)))
                .collect();
            parts.join(" ")
        }
        other => other.to_string(),
    }
}

/// One kind's spec struct: its [`Kind`], and the way in and out of [`Spec`].
pub trait KindSpec: Sized + Into<Spec> {
    const KIND: Kind;
    /// The struct inside `spec`, when `spec` is of this kind.
    fn of(spec: &Spec) -> Option<&Self>;
    fn of_mut(spec: &mut Spec) -> Option<&mut Self>;
}

macro_rules! kind_specs {
    ($($variant:ident($spec:ident)),* $(,)?) => {$(
        impl From<$spec> for Spec {
            fn from(spec: $spec) -> Spec {
                Spec::$variant(spec)
            }
        }

        impl KindSpec for $spec {
            const KIND: Kind = Kind::$variant;

            fn of(spec: &Spec) -> Option<&Self> {
                match spec {
                    Spec::$variant(spec) => Some(spec),
                    _ => None,
                }
            }

            fn of_mut(spec: &mut Spec) -> Option<&mut Self> {
                match spec {
                    Spec::$variant(spec) => Some(spec),
                    _ => None,
                }
            }
        }
    )*};
}

kind_specs! {
    KmsKey(KmsKeySpec),
    LogGroup(LogGroupSpec),
    IamRole(IamRoleSpec),
    Vpc(VpcSpec),
    DefaultSecurityGroup(DefaultSecurityGroupSpec),
    Subnet(SubnetSpec),
    InternetGateway(InternetGatewaySpec),
    ElasticIp(ElasticIpSpec),
    NatGateway(NatGatewaySpec),
    RouteTable(RouteTableSpec),
    SecurityGroup(SecurityGroupSpec),
    Instance(InstanceSpec),
    FlowLog(FlowLogSpec),
    SnsTopic(SnsTopicSpec),
    SqsQueue(SqsQueueSpec),
    DynamoDbTable(DynamoDbTableSpec),
    LambdaFunction(LambdaFunctionSpec),
    EventSourceMapping(EventSourceMappingSpec),
}

/// The observed spec of an update, of the desired spec's kind: what a backend's update
/// dispatch hands the kind's function next to the desired one. A resource of another
/// kind is refused (`InvalidParameterValue`).
pub fn observed_as<'a, T: KindSpec>(
    desired: &Desired,
    observed: &'a Observed,
) -> Result<&'a T, CloudError> {
    T::of(&observed.spec).ok_or_else(|| CloudError::Terminal {
        operation: "Update".into(),
        code: "InvalidParameterValue".into(),
        message: format!(
            "{} is a {}, not a {}",
            observed.id,
            observed.spec.kind().type_name(),
            desired.spec.kind().type_name()
        ),
    })
}

#[cfg(test)]
impl Spec {
    /// A spec of `kind` with every field at its default.
    pub(crate) fn example(kind: Kind) -> Spec {
        match kind {
            Kind::KmsKey => KmsKeySpec::default().into(),
            Kind::LogGroup => LogGroupSpec::default().into(),
            Kind::IamRole => IamRoleSpec::default().into(),
            Kind::Vpc => VpcSpec::default().into(),
            Kind::DefaultSecurityGroup => DefaultSecurityGroupSpec::default().into(),
            Kind::Subnet => SubnetSpec::default().into(),
            Kind::InternetGateway => InternetGatewaySpec::default().into(),
            Kind::ElasticIp => ElasticIpSpec::default().into(),
            Kind::NatGateway => NatGatewaySpec::default().into(),
            Kind::RouteTable => RouteTableSpec::default().into(),
            Kind::SecurityGroup => SecurityGroupSpec::default().into(),
            Kind::Instance => InstanceSpec::default().into(),
            Kind::FlowLog => FlowLogSpec::default().into(),
            Kind::SnsTopic => SnsTopicSpec::default().into(),
            Kind::SqsQueue => SqsQueueSpec::default().into(),
            Kind::DynamoDbTable => DynamoDbTableSpec::default().into(),
            Kind::LambdaFunction => LambdaFunctionSpec::default().into(),
            Kind::EventSourceMapping => EventSourceMappingSpec::default().into(),
        }
    }

    /// The spec with `field` (a JSON name) changed: a string gets a suffix, a boolean
    /// flips, a number grows, a list gets an item.
    pub(crate) fn with_changed(&self, field: &str) -> Spec {
        let mut value = serde_json::to_value(self).expect("a spec serializes");
        let slot = value
            .get_mut(field)
            .unwrap_or_else(|| panic!("{:?} has no field {field}", self.kind()));
        *slot = match slot.take() {
            serde_json::Value::String(s) => format!("{s}-changed").into(),
            serde_json::Value::Bool(b) => (!b).into(),
            serde_json::Value::Number(n) => (n.as_i64().unwrap_or(0) + 1).into(),
            serde_json::Value::Array(mut items) => {
                items.push("changed".into());
                items.into()
            }
            other => panic!("{field}: cannot change {other}"),
        };
        serde_json::from_value(value).expect("the changed spec deserializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_the_kind_in_camel_case_and_the_fields_flat() {
        let cases = [
            (
                Spec::Vpc(VpcSpec {
                    cidr_block: "10.0.0.0/16".into(),
                    enable_dns_support: true,
                    enable_dns_hostnames: false,
                }),
                serde_json::json!({"kind": "vpc", "cidrBlock": "10.0.0.0/16", "enableDnsSupport": true, "enableDnsHostnames": false}),
            ),
            (
                Spec::ElasticIp(ElasticIpSpec {}),
                serde_json::json!({"kind": "elasticIp"}),
            ),
            (
                Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
                    vpc_id: "vpc-1".into(),
                    ingress: vec![SgRule::tcp(22, 22, "10.0.0.0/8")],
                    egress: vec![],
                }),
                serde_json::json!({"kind": "defaultSecurityGroup", "vpcId": "vpc-1", "ingress": [{"protocol": "tcp", "from_port": 22, "to_port": 22, "source": "10.0.0.0/8"}], "egress": []}),
            ),
        ];
        for (spec, json) in cases {
            assert_eq!(serde_json::to_value(&spec).unwrap(), json);
            assert_eq!(serde_json::from_value::<Spec>(json).unwrap(), spec);
        }
        for kind in Kind::ALL {
            let spec = Spec::example(kind);
            let json = serde_json::to_value(&spec).unwrap();
            assert_eq!(
                serde_json::from_value::<Spec>(json).unwrap(),
                spec,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn code_sources_parse_and_anything_else_is_refused_before_a_call() {
        let ok = |bucket: &str, key: &str, version: Option<&str>| S3Object {
            bucket: bucket.into(),
            key: key.into(),
            version: version.map(String::from),
        };
        // (source, parsed or None for refused): each row one shape.
        let rows = [
            ("s3://code/fn.zip", Some(ok("code", "fn.zip", None))),
            ("s3://code/a/b/fn.zip", Some(ok("code", "a/b/fn.zip", None))),
            (
                "s3://code/fn.zip?versionId=3HL4kqtJ",
                Some(ok("code", "fn.zip", Some("3HL4kqtJ"))),
            ),
            ("s3://code/fn.zip?versionId=", None),
            ("s3://code", None),
            ("s3:///fn.zip", None),
            ("s3://code/", None),
            ("https://code.s3.amazonaws.com/fn.zip", None),
            ("", None),
        ];
        for (source, want) in rows {
            let got = S3Object::parse("CreateFunction", source);
            match want {
                Some(want) => assert_eq!(got, Ok(want), "{source}"),
                None => assert!(
                    matches!(&got, Err(CloudError::Terminal { code, .. }) if code == "InvalidParameterValueException"),
                    "{source}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn the_recorded_code_holds_only_while_the_hash_is_the_recorded_one() {
        let tags = |source: Option<&str>, sha: Option<&str>| {
            let mut tags = std::collections::BTreeMap::new();
            tags.extend(source.map(|s| (crate::cloud::TAG_CODE.to_string(), s.to_string())));
            tags.extend(sha.map(|s| (crate::cloud::TAG_CODE_SHA256.to_string(), s.to_string())));
            tags
        };
        // (tags, the function's CodeSha256, observed code): each row one case.
        let rows = [
            (tags(Some("s3://c/a.zip"), Some("h1")), "h1", "s3://c/a.zip"),
            (
                tags(Some("s3://c/a.zip"), Some("h1")),
                "h2",
                "unknown (sha256 h2)",
            ),
            (
                tags(Some("s3://c/a.zip"), None),
                "h1",
                "unknown (sha256 h1)",
            ),
            (tags(None, None), "h1", "unknown (sha256 h1)"),
        ];
        for (tags, sha, want) in rows {
            assert_eq!(
                LambdaFunctionSpec::recorded_code(&tags, sha),
                want,
                "{tags:?} {sha}"
            );
        }
    }

    #[test]
    fn immutable_change_names_the_first_immutable_field_that_differs() {
        let subnet = Spec::example(Kind::Subnet);
        assert_eq!(subnet.immutable_change(&subnet), None);
        let moved = subnet
            .with_changed("cidrBlock")
            .with_changed("availabilityZone");
        assert_eq!(
            moved.immutable_change(&subnet),
            Some(("cidrBlock".into(), String::new(), "-changed".into()))
        );
        let public = subnet.with_changed("mapPublicIpOnLaunch");
        assert_eq!(public.immutable_change(&subnet), None, "mutable in place");
        let image = |id: &str| {
            Spec::Instance(InstanceSpec {
                image_id: id.into(),
                ..InstanceSpec::default()
            })
        };
        assert_eq!(
            image("resolve:ssm:/aws/service/x").immutable_change(&image("ami-1")),
            None,
            "resolved at launch"
        );
        assert!(image("ami-2").immutable_change(&image("ami-1")).is_some());
    }
}
