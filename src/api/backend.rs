//! `HipaaBackend`: the application tier inside a `HipaaNetwork` — application EC2
//! instances in the private subnets behind an internal NLB, and the RDS database
//! (seed items 6, 13, 14, 15).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonSpec, CommonStatus, LocalRef, SecretKeyRef};

/// Application instances behind an internal network load balancer and a Multi-AZ RDS
/// database, all in the private subnets of the referenced network. Instances require
/// IMDSv2, have no public IP and encrypted volumes; the database is encrypted with a
/// customer KMS key, not publicly accessible, forces TLS, keeps backups for at least
/// 7 days and has deletion protection.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hipaa.dev",
    version = "v1alpha1",
    kind = "HipaaBackend",
    namespaced,
    status = "HipaaBackendStatus",
    shortname = "hback",
    category = "hipaa",
    derive = "PartialEq",
    doc = "The application tier of a HIPAA-aligned stack: private EC2 behind an internal NLB, and RDS.",
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
        name = "DB Endpoint",
        type_ = "string",
        json_path = ".status.dbEndpoint",
        description = "RDS endpoint host:port"
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
        name = "NLB",
        type_ = "string",
        json_path = ".status.loadBalancerDnsName",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct HipaaBackendSpec {
    #[serde(flatten)]
    pub common: CommonSpec,

    /// The `HipaaNetwork` (same namespace) whose VPC and private subnets this backend runs
    /// in. The backend waits until that network is Ready.
    pub network_ref: LocalRef,

    /// The application instances.
    #[serde(default)]
    pub app: AppSpec,

    /// The internal network load balancer in front of the application instances; API
    /// Gateway reaches it through a VPC Link. Always internal, with deletion protection.
    #[serde(default)]
    pub load_balancer: LoadBalancerSpec,

    /// The RDS database.
    #[serde(default)]
    pub database: DatabaseSpec,
}

/// Application EC2 instances, spread over the private subnets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppSpec {
    /// EC2 instance type. Default `t3.small`.
    #[serde(default = "default_app_instance_type")]
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"), length(max = 32))]
    pub instance_type: String,

    /// AMI to boot. When absent the operator uses the region's latest Amazon Linux 2023 image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^ami-[0-9a-f]{8,17}$"))]
    pub image_id: Option<String>,

    /// Number of instances, 1 to 20, placed round-robin over the private subnets. Default 2.
    #[serde(default = "default_app_count")]
    #[schemars(range(min = 1, max = 20))]
    pub count: i32,

    /// TCP port the application listens on; the NLB forwards to it. Default 80.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,

    /// HTTP path the NLB health check requests. When absent the health check is a TCP
    /// connect to `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/[^\s]*$"), length(max = 1024))]
    pub health_check_path: Option<String>,

    /// Size of each instance's encrypted root volume in GiB, 8 to 16384. Default 20.
    #[serde(default = "default_app_volume")]
    #[schemars(range(min = 8, max = 16384))]
    pub root_volume_gib: i32,
}

fn default_app_instance_type() -> String {
    "t3.small".to_string()
}
fn default_app_count() -> i32 {
    2
}
fn default_port() -> i32 {
    80
}
fn default_app_volume() -> i32 {
    20
}

impl Default for AppSpec {
    fn default() -> Self {
        Self {
            instance_type: default_app_instance_type(),
            image_id: None,
            count: default_app_count(),
            port: default_port(),
            health_check_path: None,
            root_volume_gib: default_app_volume(),
        }
    }
}

/// The internal network load balancer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerSpec {
    /// TCP port of the NLB listener. Default 80.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

impl Default for LoadBalancerSpec {
    fn default() -> Self {
        Self {
            port: default_port(),
        }
    }
}

/// Database engines the operator can configure for forced TLS (`rds.force_ssl` or
/// `require_secure_transport`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseEngine {
    /// PostgreSQL (`rds.force_ssl=1`).
    #[default]
    Postgres,
    /// MySQL (`require_secure_transport=1`).
    Mysql,
    /// MariaDB (`require_secure_transport=1`).
    Mariadb,
}

/// The RDS DB instance: Multi-AZ, storage encrypted with the stack's KMS key, not
/// publicly accessible, TLS forced, deletion protection, CloudWatch log exports,
/// IAM authentication and automatic minor version upgrades. These are not options.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.maxAllocatedStorageGib) || self.maxAllocatedStorageGib >= self.allocatedStorageGib")
    .message("maxAllocatedStorageGib must be at least allocatedStorageGib")
    .field_path(".maxAllocatedStorageGib"))]
pub struct DatabaseSpec {
    /// `postgres` (default), `mysql` or `mariadb`. Immutable: changing engines is a
    /// migration, not an update.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("engine is immutable"))]
    pub engine: DatabaseEngine,

    /// Engine version, e.g. `16.4`. When absent RDS picks its default for the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+){0,2}$"), length(max = 16))]
    pub engine_version: Option<String>,

    /// DB instance class. Default `db.t3.medium`.
    #[serde(default = "default_instance_class")]
    #[schemars(regex(pattern = r"^db\.[a-z0-9-]+\.[a-z0-9]+$"), length(max = 32))]
    pub instance_class: String,

    /// Allocated storage in GiB, 20 to 65536 (gp3). Default 50.
    #[serde(default = "default_storage")]
    #[schemars(range(min = 20, max = 65536))]
    pub allocated_storage_gib: i32,

    /// Upper limit for storage autoscaling in GiB, at least `allocatedStorageGib`. When
    /// absent storage does not autoscale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 20, max = 65536))]
    pub max_allocated_storage_gib: Option<i32>,

    /// Days automated backups are kept, 7 to 35 (HIPAA control RDS-3). Default 7.
    #[serde(default = "default_backup_retention")]
    #[schemars(range(min = 7, max = 35))]
    pub backup_retention_days: i32,

    /// Name of the database created on the instance. Default `app`.
    #[serde(default = "default_database_name")]
    #[schemars(regex(pattern = r"^[A-Za-z][A-Za-z0-9_]*$"), length(min = 1, max = 63))]
    pub database_name: String,

    /// Master user name. Default `hipaa_admin`.
    #[serde(default = "default_master_username")]
    #[schemars(regex(pattern = r"^[A-Za-z][A-Za-z0-9_]*$"), length(min = 1, max = 16))]
    pub master_username: String,

    /// A Secret key holding the master password. When absent (recommended) RDS generates
    /// the password and keeps it in Secrets Manager, encrypted with the stack's KMS key;
    /// the operator never reads or logs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_password_secret_ref: Option<SecretKeyRef>,
}

fn default_instance_class() -> String {
    "db.t3.medium".to_string()
}
fn default_storage() -> i32 {
    50
}
fn default_backup_retention() -> i32 {
    7
}
fn default_database_name() -> String {
    "app".to_string()
}
fn default_master_username() -> String {
    "hipaa_admin".to_string()
}

impl Default for DatabaseSpec {
    fn default() -> Self {
        Self {
            engine: DatabaseEngine::default(),
            engine_version: None,
            instance_class: default_instance_class(),
            allocated_storage_gib: default_storage(),
            max_allocated_storage_gib: None,
            backup_retention_days: default_backup_retention(),
            database_name: default_database_name(),
            master_username: default_master_username(),
            master_password_secret_ref: None,
        }
    }
}

/// What the operator observed and manages for a `HipaaBackend`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HipaaBackendStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Application instance ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_instance_ids: Vec<String>,
    /// Security group of the application instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_security_group_id: Option<String>,
    /// ARN of the internal network load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_arn: Option<String>,
    /// DNS name of the internal network load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_dns_name: Option<String>,
    /// ARN of the target group holding the application instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
    /// RDS DB instance identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_instance_id: Option<String>,
    /// RDS endpoint as `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_endpoint: Option<String>,
    /// Security group of the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_security_group_id: Option<String>,
    /// ARN of the Secrets Manager secret RDS keeps the master password in (the ARN only,
    /// never the password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_master_user_secret_arn: Option<String>,
}
