//! `PaymentPipeline`: the event-driven payment flow — a payment Lambda publishing to an
//! SNS topic, an SQS queue (with dead-letter queue) subscribed to it, a poller Lambda
//! reading the queue and a DynamoDB table for the transactions (seed items 18-21).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonSpec, CommonStatus, LocalRef};

/// Payment Lambda -> SNS topic -> SQS queue (+ dead-letter queue) -> poller Lambda ->
/// DynamoDB table. Everything is encrypted with a customer KMS key; functions run in the
/// referenced network's private subnets with reserved concurrency and X-Ray tracing; the
/// table has point-in-time recovery and deletion protection; IAM roles are least privilege.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hipaa.dev",
    version = "v1alpha1",
    kind = "PaymentPipeline",
    namespaced,
    status = "PaymentPipelineStatus",
    shortname = "hpay",
    category = "hipaa",
    derive = "PartialEq",
    doc = "A HIPAA-aligned payment pipeline: Lambda -> SNS -> SQS (+DLQ) -> Lambda -> DynamoDB, KMS-encrypted.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Synced",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Synced")].status"#
    ),
    printcolumn(
        name = "Drifted",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Drifted")].status"#
    ),
    printcolumn(
        name = "Queue",
        type_ = "string",
        json_path = ".status.queueUrl",
        description = "SQS queue URL"
    ),
    printcolumn(
        name = "Compliant",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Compliant")].status"#,
        priority = 1
    ),
    printcolumn(
        name = "Network",
        type_ = "string",
        json_path = ".spec.networkRef.name",
        priority = 1
    ),
    printcolumn(
        name = "Table",
        type_ = "string",
        json_path = ".status.tableName",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.queue.visibilityTimeoutSeconds >= self.pollerFunction.timeoutSeconds")
        .message("queue.visibilityTimeoutSeconds must be at least pollerFunction.timeoutSeconds (SQS event sources require it)")
        .field_path(".queue.visibilityTimeoutSeconds"),
)]
pub struct PaymentPipelineSpec {
    #[serde(flatten)]
    pub common: CommonSpec,

    /// The `HipaaNetwork` (same namespace) whose private subnets the functions run in
    /// (HIPAA control LAM-1). The pipeline waits until that network is Ready.
    pub network_ref: LocalRef,

    /// The function that processes a payment and publishes the outcome to the topic.
    pub payment_function: FunctionSpec,

    /// The function that polls the queue and writes transactions to the table.
    pub poller_function: PollerFunctionSpec,

    /// The SNS topic payment outcomes are published to.
    #[serde(default)]
    pub topic: TopicSpec,

    /// The SQS queue subscribed to the topic, and its dead-letter queue.
    #[serde(default)]
    pub queue: QueueSpec,

    /// The DynamoDB table transactions are stored in.
    #[serde(default)]
    pub table: TableSpec,
}

/// Lambda runtimes the operator accepts (those AWS has not deprecated).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum LambdaRuntime {
    #[default]
    #[serde(rename = "python3.12")]
    Python312,
    #[serde(rename = "python3.13")]
    Python313,
    #[serde(rename = "nodejs20.x")]
    Nodejs20,
    #[serde(rename = "nodejs22.x")]
    Nodejs22,
    #[serde(rename = "java21")]
    Java21,
    #[serde(rename = "provided.al2023")]
    ProvidedAl2023,
}

/// Instruction set of a function.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    #[default]
    X86_64,
    Arm64,
}

/// Where a function's deployment package is.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCode {
    /// Bucket holding the deployment package (same region).
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"))]
    pub s3_bucket: String,
    /// Key of the `.zip` deployment package.
    #[schemars(length(min = 1, max = 1024))]
    pub s3_key: String,
    /// Object version, to pin the package in a versioned bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub s3_object_version: Option<String>,
}

/// A Lambda function. It runs in the private subnets, its environment is encrypted with
/// the stack's KMS key, it has X-Ray tracing and no public function URL (not options).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FunctionSpec {
    /// Runtime: `python3.12` (default), `python3.13`, `nodejs20.x`, `nodejs22.x`,
    /// `java21` or `provided.al2023`.
    #[serde(default)]
    pub runtime: LambdaRuntime,

    /// Entry point, e.g. `app.handler`.
    #[schemars(regex(pattern = r"^[^\s]+$"), length(min = 1, max = 128))]
    pub handler: String,

    /// The deployment package in S3.
    pub code: FunctionCode,

    /// `x86_64` (default) or `arm64`.
    #[serde(default)]
    pub architecture: Architecture,

    /// Memory in MiB, 128 to 10240. Default 256.
    #[serde(default = "default_memory")]
    #[schemars(range(min = 128, max = 10240))]
    pub memory_mib: i32,

    /// Timeout in seconds, 1 to 900. Default 30.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = 900))]
    pub timeout_seconds: i32,

    /// Reserved concurrency, 1 to 1000 (HIPAA control LAM-4). Default 10.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 1000))]
    pub reserved_concurrency: i32,

    /// Environment variables (at most 50), encrypted with the stack's KMS key. Not a secret
    /// store: names that look like credentials are refused; read secrets from Secrets
    /// Manager at run time instead (HIPAA control LAM-2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub environment: Vec<EnvVar>,
}

/// One environment variable of a function.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EnvVar {
    /// Variable name: a letter, then letters, digits and `_`; not starting with `AWS_`
    /// (reserved by Lambda); not looking like a credential.
    #[schemars(
        regex(pattern = r"^[A-Za-z][A-Za-z0-9_]*$"),
        length(min = 1, max = 128)
    )]
    #[x_kube(
        validation = Rule::new("!self.startsWith('AWS_')")
            .message("names starting with AWS_ are reserved by Lambda"),
        validation = Rule::new("!self.upperAscii().matches('PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_?KEY|API_?KEY|CREDENTIAL')")
            .message("names that look like secrets (PASSWORD, SECRET, TOKEN, PRIVATE_KEY, API_KEY, CREDENTIAL) are refused: keep secrets in Secrets Manager (HIPAA control LAM-2)"),
    )]
    pub name: String,
    /// Value, up to 4096 characters (Lambda's limit for all variables together).
    #[serde(default)]
    #[schemars(length(max = 4096))]
    pub value: String,
}

/// The poller: a function plus its SQS event source mapping.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollerFunctionSpec {
    #[serde(flatten)]
    pub function: FunctionSpec,

    /// Messages per invocation, 1 to 10. Default 10.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1, max = 10))]
    pub batch_size: i32,

    /// Seconds to gather a batch before invoking, 0 to 300. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 300))]
    pub maximum_batching_window_seconds: i32,
}

fn default_memory() -> i32 {
    256
}
fn default_timeout() -> i32 {
    30
}
fn default_concurrency() -> i32 {
    10
}
fn default_batch_size() -> i32 {
    10
}

/// The SNS topic. Encrypted with the stack's KMS key; its policy allows only this
/// stack's principals (not options).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicSpec {
    /// Display name shown in notifications, up to 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub display_name: Option<String>,
}

/// The SQS queue and its dead-letter queue, both encrypted with the stack's KMS key.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.deadLetterRetentionSeconds >= self.messageRetentionSeconds")
    .message("deadLetterRetentionSeconds must be at least messageRetentionSeconds, or failed messages expire in the dead-letter queue before their first copy would")
    .field_path(".deadLetterRetentionSeconds"))]
pub struct QueueSpec {
    /// Seconds a message is kept, 60 (1 minute) to 1209600 (14 days). Default 345600 (4 days).
    #[serde(default = "default_retention")]
    #[schemars(range(min = 60, max = 1_209_600))]
    pub message_retention_seconds: i32,

    /// Seconds a received message stays hidden, 0 to 43200; at least the poller's timeout.
    /// Default 180.
    #[serde(default = "default_visibility")]
    #[schemars(range(min = 0, max = 43_200))]
    pub visibility_timeout_seconds: i32,

    /// Receives before a message moves to the dead-letter queue, 1 to 1000. Default 5.
    #[serde(default = "default_max_receive")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_receive_count: i32,

    /// Seconds the dead-letter queue keeps a message, 60 to 1209600. Default 1209600 (14 days).
    #[serde(default = "default_dlq_retention")]
    #[schemars(range(min = 60, max = 1_209_600))]
    pub dead_letter_retention_seconds: i32,
}

fn default_retention() -> i32 {
    345_600
}
fn default_visibility() -> i32 {
    180
}
fn default_max_receive() -> i32 {
    5
}
fn default_dlq_retention() -> i32 {
    1_209_600
}

impl Default for QueueSpec {
    fn default() -> Self {
        Self {
            message_retention_seconds: default_retention(),
            visibility_timeout_seconds: default_visibility(),
            max_receive_count: default_max_receive(),
            dead_letter_retention_seconds: default_dlq_retention(),
        }
    }
}

/// DynamoDB capacity mode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BillingMode {
    #[default]
    PayPerRequest,
    Provisioned,
}

/// DynamoDB attribute types usable in keys. Spelled out rather than DynamoDB's `S`/`N`/`B`:
/// YAML 1.1 parsers (kubectl's among them) read an unquoted `N` as the boolean false.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum KeyType {
    /// DynamoDB `S`.
    #[default]
    String,
    /// DynamoDB `N`.
    Number,
    /// DynamoDB `B`.
    Binary,
}

impl KeyType {
    /// DynamoDB's name for the type (`S`, `N`, `B`).
    pub fn dynamodb(self) -> &'static str {
        match self {
            KeyType::String => "S",
            KeyType::Number => "N",
            KeyType::Binary => "B",
        }
    }
}

/// A key attribute of the table.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyAttribute {
    /// Attribute name.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// `String` (default), `Number` or `Binary`.
    #[serde(default, rename = "type")]
    pub type_: KeyType,
}

/// The transactions table: point-in-time recovery, SSE with the stack's KMS key and
/// deletion protection are not options. Key schema is immutable once created.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.billingMode == 'PROVISIONED' ? (has(self.readCapacityUnits) && has(self.writeCapacityUnits)) : (!has(self.readCapacityUnits) && !has(self.writeCapacityUnits))")
        .message("readCapacityUnits and writeCapacityUnits are required with billingMode PROVISIONED and not allowed with PAY_PER_REQUEST"),
    validation = Rule::new("has(self.sortKey) == has(oldSelf.sortKey)")
        .message("sortKey cannot be added or removed: the key schema is immutable")
        .field_path(".sortKey"),
)]
pub struct TableSpec {
    /// `PAY_PER_REQUEST` (default) or `PROVISIONED`.
    #[serde(default)]
    pub billing_mode: BillingMode,

    /// Read capacity units, 1 to 40000; only with `PROVISIONED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 40_000))]
    pub read_capacity_units: Option<i32>,

    /// Write capacity units, 1 to 40000; only with `PROVISIONED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 40_000))]
    pub write_capacity_units: Option<i32>,

    /// Partition key. Default `paymentId` of type `String`. Immutable.
    #[serde(default = "default_partition_key")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("partitionKey is immutable"))]
    pub partition_key: KeyAttribute,

    /// Sort key, if any. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("sortKey is immutable"))]
    pub sort_key: Option<KeyAttribute>,

    /// Attribute holding an expiry time (epoch seconds) for DynamoDB TTL, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub ttl_attribute: Option<String>,
}

fn default_partition_key() -> KeyAttribute {
    KeyAttribute {
        name: "paymentId".to_string(),
        type_: KeyType::String,
    }
}

impl Default for TableSpec {
    fn default() -> Self {
        Self {
            billing_mode: BillingMode::default(),
            read_capacity_units: None,
            write_capacity_units: None,
            partition_key: default_partition_key(),
            sort_key: None,
            ttl_attribute: None,
        }
    }
}

/// What the operator observed and manages for a `PaymentPipeline`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPipelineStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// URL of the SQS queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_url: Option<String>,
    /// URL of the dead-letter queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_queue_url: Option<String>,
    /// ARN of the SNS topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    /// ARN of the payment function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_function_arn: Option<String>,
    /// ARN of the poller function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poller_function_arn: Option<String>,
    /// UUID of the poller's SQS event source mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_source_mapping_id: Option<String>,
    /// Name of the DynamoDB table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    /// ARN of the DynamoDB table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_arn: Option<String>,
    /// ARN of the KMS key encrypting the pipeline's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
}
