//! `HipaaEdge`: how users reach the stack — the Route53 record (and zone when asked),
//! the ACM certificate, CloudFront with an S3 origin through origin access control,
//! and API Gateway with a VPC Link to the backend's NLB (seed items 1-5, 17).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonSpec, CommonStatus, DOMAIN_PATTERN, LocalRef};

/// The public edge of a stack: `domainName` resolves (Route53) to a CloudFront
/// distribution with an ACM certificate, serving static content from a private S3 bucket
/// (origin access control) and forwarding `apiPathPattern` to an API Gateway REST API,
/// which reaches the referenced backend's internal NLB through a VPC Link. Viewers are
/// HTTPS only, TLS 1.2 (2021 policy) or newer; CloudFront, API Gateway and S3 access logs
/// are on; the bucket blocks public access, is versioned and KMS-encrypted.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hipaa.dev",
    version = "v1alpha1",
    kind = "HipaaEdge",
    namespaced,
    status = "HipaaEdgeStatus",
    shortname = "hedge",
    category = "hipaa",
    derive = "PartialEq",
    doc = "The public edge of a HIPAA-aligned stack: Route53, ACM, CloudFront, S3 origin, API Gateway and VPC Link.",
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
        name = "CloudFront",
        type_ = "string",
        json_path = ".status.cloudFrontDomain",
        description = "CloudFront distribution domain name"
    ),
    printcolumn(
        name = "Compliant",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Compliant")].status"#,
        priority = 1
    ),
    printcolumn(
        name = "Domain",
        type_ = "string",
        json_path = ".spec.domainName",
        priority = 1
    ),
    printcolumn(
        name = "Backend",
        type_ = "string",
        json_path = ".spec.backendRef.name",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.domainName == self.hostedZone.name || self.domainName.endsWith('.' + self.hostedZone.name)")
    .message("domainName must be hostedZone.name or a name inside it")
    .field_path(".domainName"))]
pub struct HipaaEdgeSpec {
    #[serde(flatten)]
    pub common: CommonSpec,

    /// The `HipaaBackend` (same namespace) whose NLB API Gateway forwards to. The edge
    /// waits until that backend is Ready.
    pub backend_ref: LocalRef,

    /// The name users browse to, e.g. `portal.example.com`. Lower-case DNS name.
    #[schemars(regex(pattern = DOMAIN_PATTERN), length(max = 253))]
    pub domain_name: String,

    /// Further names on the certificate and the distribution, e.g. `www.example.com`; a
    /// leading `*.` wildcard is allowed. At most 10.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 10),
        inner(
            regex(
                pattern = r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
            ),
            length(max = 253)
        )
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub subject_alternative_names: Vec<String>,

    /// The Route53 public hosted zone that holds `domainName` and the certificate's DNS
    /// validation records.
    pub hosted_zone: HostedZoneSpec,

    /// The CloudFront distribution.
    #[serde(default)]
    pub cloud_front: CloudFrontSpec,

    /// The private S3 bucket serving static content through origin access control.
    #[serde(default)]
    pub origin_bucket: OriginBucketSpec,

    /// The API Gateway REST API and stage.
    #[serde(default)]
    pub api: ApiSpec,
}

/// Which Route53 public hosted zone to use.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostedZoneSpec {
    /// The zone's domain, e.g. `example.com`.
    #[schemars(regex(pattern = DOMAIN_PATTERN), length(max = 253))]
    pub name: String,

    /// Id of an existing public hosted zone, e.g. `Z0123456789ABCDEFGHIJ`. When absent the
    /// zone is looked up by `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^Z[A-Z0-9]{1,32}$"))]
    pub id: Option<String>,

    /// Create the public hosted zone (with query logging, HIPAA control R53-1) when no zone
    /// named `name` exists. Default false: the zone must exist.
    #[serde(default)]
    pub create: bool,
}

/// Minimum TLS security policy for viewers. Only TLSv1.2_2021 and newer are accepted
/// (HIPAA control CF-2).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum MinimumProtocolVersion {
    /// TLS 1.2 and 1.3 with the 2021 cipher suites.
    #[default]
    #[serde(rename = "TLSv1.2_2021")]
    Tls12_2021,
    /// TLS 1.2 and 1.3 with the 2025 cipher suites.
    #[serde(rename = "TLSv1.2_2025")]
    Tls12_2025,
    /// TLS 1.3 only.
    #[serde(rename = "TLSv1.3_2025")]
    Tls13_2025,
}

/// How CloudFront treats plain-HTTP viewers. `allow-all` is not offered (HIPAA control CF-1).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ViewerProtocolPolicy {
    /// Answer HTTP with a redirect to HTTPS.
    #[default]
    RedirectToHttps,
    /// Refuse HTTP.
    HttpsOnly,
}

/// CloudFront edge locations used.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PriceClass {
    /// North America, Europe and Israel.
    #[default]
    #[serde(rename = "PriceClass_100")]
    PriceClass100,
    /// PriceClass_100 plus Asia, Middle East and Africa.
    #[serde(rename = "PriceClass_200")]
    PriceClass200,
    /// Every edge location.
    #[serde(rename = "PriceClass_All")]
    PriceClassAll,
}

/// The CloudFront distribution. Access logging, the ACM certificate with SNI and
/// HTTPS-only origins are not options.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudFrontSpec {
    /// Minimum viewer TLS policy: `TLSv1.2_2021` (default), `TLSv1.2_2025` or `TLSv1.3_2025`.
    #[serde(default)]
    pub minimum_protocol_version: MinimumProtocolVersion,

    /// `redirect-to-https` (default) or `https-only`.
    #[serde(default)]
    pub viewer_protocol_policy: ViewerProtocolPolicy,

    /// `PriceClass_100` (default), `PriceClass_200` or `PriceClass_All`.
    #[serde(default)]
    pub price_class: PriceClass,

    /// Object returned for `/`. Default `index.html`.
    #[serde(default = "default_root_object")]
    #[schemars(regex(pattern = r"^[^/\s][^\s]*$"), length(max = 255))]
    pub default_root_object: String,

    /// Path pattern routed to API Gateway instead of S3. Default `/api/*`.
    #[serde(default = "default_api_path_pattern")]
    #[schemars(regex(pattern = r"^/[^\s]*$"), length(max = 255))]
    pub api_path_pattern: String,

    /// ARN of an AWS WAF web ACL (scope CLOUDFRONT) to attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^arn:aws[a-z-]*:wafv2:us-east-1:[0-9]{12}:global/webacl/.+$"),
        length(max = 2048)
    )]
    pub web_acl_arn: Option<String>,
}

fn default_root_object() -> String {
    "index.html".to_string()
}
fn default_api_path_pattern() -> String {
    "/api/*".to_string()
}

impl Default for CloudFrontSpec {
    fn default() -> Self {
        Self {
            minimum_protocol_version: MinimumProtocolVersion::default(),
            viewer_protocol_policy: ViewerProtocolPolicy::default(),
            price_class: PriceClass::default(),
            default_root_object: default_root_object(),
            api_path_pattern: default_api_path_pattern(),
            web_acl_arn: None,
        }
    }
}

/// The static-content bucket: public access blocked, ACLs disabled, SSE-KMS, versioning,
/// server access logging and a policy denying non-TLS requests. These are not options.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OriginBucketSpec {
    /// Bucket name. When absent the operator derives a unique name from the namespace,
    /// the resource name and the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"))]
    pub name: Option<String>,
}

/// The API Gateway REST API stage. Execution logging (data trace off), access logging to
/// an encrypted log group and X-Ray tracing are not options.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiSpec {
    /// Stage name. Default `prod`.
    #[serde(default = "default_stage_name")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_]+$"), length(min = 1, max = 128))]
    pub stage_name: String,

    /// Execution log level: `INFO` (default) or `ERROR`; never off (HIPAA control API-1).
    #[serde(default)]
    pub logging_level: ApiLoggingLevel,

    /// Steady-state request rate limit per second, 1 to 10000. Default 100.
    #[serde(default = "default_rate_limit")]
    #[schemars(range(min = 1, max = 10000))]
    pub throttling_rate_limit: i32,

    /// Burst request limit, 1 to 5000. Default 200.
    #[serde(default = "default_burst_limit")]
    #[schemars(range(min = 1, max = 5000))]
    pub throttling_burst_limit: i32,

    /// Size in GB of the stage cache, which is always encrypted (HIPAA control API-4). When
    /// absent the stage has no cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["0.5", "1.6", "6.1", "13.5", "28.4", "58.2", "118", "237"]))]
    pub cache_size_gb: Option<String>,
}

/// API Gateway execution log level.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ApiLoggingLevel {
    #[default]
    Info,
    Error,
}

fn default_stage_name() -> String {
    "prod".to_string()
}
fn default_rate_limit() -> i32 {
    100
}
fn default_burst_limit() -> i32 {
    200
}

impl Default for ApiSpec {
    fn default() -> Self {
        Self {
            stage_name: default_stage_name(),
            logging_level: ApiLoggingLevel::default(),
            throttling_rate_limit: default_rate_limit(),
            throttling_burst_limit: default_burst_limit(),
            cache_size_gb: None,
        }
    }
}

/// What the operator observed and manages for a `HipaaEdge`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HipaaEdgeStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The URL users reach, `https://<domainName>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// CloudFront distribution id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution_id: Option<String>,
    /// CloudFront distribution domain name, e.g. `d111111abcdef8.cloudfront.net`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_front_domain: Option<String>,
    /// ARN of the ACM certificate (in us-east-1, as CloudFront requires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<String>,
    /// Route53 hosted zone id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_id: Option<String>,
    /// Name servers of the hosted zone, when the operator created it: delegate to these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name_servers: Vec<String>,
    /// Name of the static-content bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    /// API Gateway REST API id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_api_id: Option<String>,
    /// Invoke URL of the API stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_invoke_url: Option<String>,
    /// VPC Link id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_link_id: Option<String>,
}
