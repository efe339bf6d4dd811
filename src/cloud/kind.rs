//! The kind registry: each AWS resource kind described once, as a [`KindInfo`] reached by
//! [`Kind::info`]. The engine (which kinds delete asynchronously or with their parent),
//! both backends (the simulator's describe and tag operations and parent lookups; the AWS
//! backend's not-found classification and its `owned` over [`Kind::ALL`]; both backends'
//! immutable-field checks) and the contract suite (what a second create does, how a kind
//! deletes) read it from here instead of keeping their own lists.
//!
//! Adding a kind: a variant here and its `KindInfo` entry in [`Kind::info`], a struct and
//! a variant in `spec.rs`, one file in `cloud/aws` and one in `cloud/sim`, one case in the
//! contract suite (`tests/it/contract.rs`). The dispatch matches are exhaustive, so a kind
//! missing from a backend or from the contract does not compile; the tests below check
//! that [`Kind::ALL`] lists every variant and that the entries are consistent.

use serde::{Deserialize, Serialize};

/// The AWS resource kinds the operator manages, in dependency order (a kind's resources
/// only reference kinds listed before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    KmsKey,
    LogGroup,
    IamRole,
    Vpc,
    /// The VPC's default security group, which must have no rules (NET-5). Never created
    /// or deleted: "create" and "update" revoke its rules.
    DefaultSecurityGroup,
    Subnet,
    InternetGateway,
    ElasticIp,
    NatGateway,
    RouteTable,
    SecurityGroup,
    Instance,
    FlowLog,
    SnsTopic,
    SqsQueue,
    DynamoDbTable,
    /// A Lambda function, deployed from a zip in S3; in the VPC when it names subnets.
    LambdaFunction,
    /// A function polling an SQS queue.
    EventSourceMapping,
}

/// How a kind's resources are deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteMode {
    /// Gone (for ownership) once the delete call returns. A KMS key counts as gone when
    /// its deletion is scheduled: it stays 7 days, no longer listed as owned.
    Sync,
    /// Goes through a deleting state first (NAT gateway `deleting`, instance
    /// `shutting-down`): until it is gone it holds what it depends on, and the engine
    /// waits for it over passes.
    Async,
    /// Never deleted on its own: AWS deletes it with its parent (the VPC's default
    /// security group goes with the VPC); its delete is a no-op without an API call.
    WithParent,
}

/// What a second create with the same request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// The create takes a client token: retried with the same token, it returns the
    /// first resource.
    ClientToken,
    /// The name is unique: a second create is refused (`…AlreadyExists`, `…Duplicate`).
    UniqueName,
    /// Never created: AWS makes it with its parent, and "create" finds and adopts it.
    Adopted,
    /// Neither: a second create makes a second resource. The engine looks a resource up
    /// by its ownership tags before any retried create, which is the only guard.
    Duplicates,
    /// The name is the token: a second create with the same name and the same request
    /// returns the first resource (SNS `CreateTopic`, SQS `CreateQueue`); the same name
    /// with other attributes is refused.
    SameRequest,
}

/// The resource another one lives in, named by one of its spec's fields (the JSON name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parent {
    pub kind: Kind,
    pub field: &'static str,
}

/// Everything about a kind that code outside its two backend files needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindInfo {
    pub kind: Kind,
    /// `service:type`, as status, events and metrics name it.
    pub type_name: &'static str,
    /// The AWS service that owns it (calls are counted per service).
    pub service: &'static str,
    /// The call that describes the kind's resources: the simulator's observe makes
    /// exactly this one per kind and pass.
    pub describe: &'static str,
    /// The call that adds tags to an existing resource.
    pub tag_operation: &'static str,
    pub deletion: DeleteMode,
    pub idempotency: Idempotency,
    /// Error codes AWS answers when the resource (or a part of it) does not exist: the
    /// AWS backend classifies them as not found (a delete of the missing succeeds).
    pub not_found: &'static [&'static str],
    /// Spec fields (JSON names) AWS cannot change in place: a change needs a new
    /// resource, and both backends refuse it before any call. The first that differs is
    /// the one reported.
    pub immutable: &'static [&'static str],
    /// The resource it lives in (a subnet in its VPC, a NAT gateway in its subnet): the
    /// simulator's dependency rules follow it. An internet gateway is attached to a VPC,
    /// not inside it.
    pub parent: Option<Parent>,
    /// Every operation of `service` its AWS backend file calls (a unit test compares this
    /// with the file). The operator's IAM policy is generated from these lists.
    pub calls: &'static [&'static str],
    /// Operations of other services its AWS backend file calls, as `(service, operation)`
    /// (an SQS queue subscribes itself to its SNS topic). Part of the IAM policy and of
    /// the unit test's comparison like `calls`.
    pub also_calls: &'static [(&'static str, &'static str)],
    /// IAM actions AWS authorizes on the caller during those calls without their being
    /// calls of their own (`iam:PassRole` when a resource is handed a role; the KMS grants
    /// EC2 takes on the caller's behalf for an encrypted volume), each with the resource
    /// pattern it is needed on.
    pub requires: &'static [(&'static str, &'static str)],
    /// The resources its changing calls act on, as an IAM resource pattern: `*`, or an
    /// ARN pattern when the operator names the resources (IAM roles `hipaa-…`).
    pub resources: &'static str,
}

const fn ec2(
    kind: Kind,
    type_name: &'static str,
    describe: &'static str,
    not_found: &'static [&'static str],
    calls: &'static [&'static str],
) -> KindInfo {
    KindInfo {
        kind,
        type_name,
        service: "ec2",
        describe,
        tag_operation: "CreateTags",
        deletion: DeleteMode::Sync,
        idempotency: Idempotency::Duplicates,
        not_found,
        immutable: &[],
        parent: None,
        calls,
        also_calls: &[],
        requires: &[],
        resources: "*",
    }
}

/// The IAM roles the operator creates: their names start `hipaa-` (see
/// `blueprint::resource_name`).
pub const OPERATOR_ROLES: &str = "arn:aws:iam::*:role/hipaa-*";

/// The Lambda functions the operator creates: their names start `hipaa-` (see
/// `blueprint::resource_name`).
pub const OPERATOR_FUNCTIONS: &str = "arn:aws:lambda:*:*:function:hipaa-*";

/// Calls the operator makes that belong to no kind: the availability zones a network
/// spreads over, as `(service, operation)`.
pub const STACK_CALLS: &[(&str, &str)] = &[("ec2", "DescribeAvailabilityZones")];

const IN_VPC: Option<Parent> = Some(Parent {
    kind: Kind::Vpc,
    field: "vpcId",
});
const IN_SUBNET: Option<Parent> = Some(Parent {
    kind: Kind::Subnet,
    field: "subnetId",
});

const KMS_KEY: KindInfo = KindInfo {
    kind: Kind::KmsKey,
    type_name: "kms:key",
    service: "kms",
    describe: "DescribeKey",
    tag_operation: "TagResource",
    deletion: DeleteMode::Sync,
    idempotency: Idempotency::Duplicates,
    not_found: &["NotFoundException"],
    immutable: &[],
    parent: None,
    calls: &[
        "CancelKeyDeletion",
        "CreateKey",
        "DescribeKey",
        "DisableKeyRotation",
        "EnableKey",
        "EnableKeyRotation",
        "GetKeyPolicy",
        "GetKeyRotationStatus",
        "ListKeys",
        "ListResourceTags",
        "PutKeyPolicy",
        "ScheduleKeyDeletion",
        "TagResource",
        "UpdateKeyDescription",
    ],
    also_calls: &[],
    requires: &[],
    resources: "*",
};

const LOG_GROUP: KindInfo = KindInfo {
    kind: Kind::LogGroup,
    type_name: "logs:log-group",
    service: "logs",
    describe: "DescribeLogGroups",
    tag_operation: "TagResource",
    deletion: DeleteMode::Sync,
    idempotency: Idempotency::UniqueName,
    not_found: &["ResourceNotFoundException"],
    immutable: &["name"],
    parent: None,
    calls: &[
        "AssociateKmsKey",
        "CreateLogGroup",
        "DeleteLogGroup",
        "DeleteRetentionPolicy",
        "DescribeLogGroups",
        "DisassociateKmsKey",
        "ListTagsForResource",
        "PutRetentionPolicy",
        "TagResource",
    ],
    also_calls: &[],
    requires: &[],
    resources: "*",
};

const IAM_ROLE: KindInfo = KindInfo {
    kind: Kind::IamRole,
    type_name: "iam:role",
    service: "iam",
    describe: "GetRole",
    tag_operation: "TagRole",
    deletion: DeleteMode::Sync,
    idempotency: Idempotency::UniqueName,
    not_found: &["NoSuchEntity"],
    immutable: &["name"],
    parent: None,
    calls: &[
        "CreateRole",
        "DeleteRole",
        "DeleteRolePolicy",
        "GetRole",
        "GetRolePolicy",
        "ListRolePolicies",
        "ListRoleTags",
        "ListRoles",
        "PutRolePolicy",
        "TagRole",
        "UpdateAssumeRolePolicy",
    ],
    also_calls: &[],
    requires: &[],
    resources: OPERATOR_ROLES,
};

const VPC: KindInfo = KindInfo {
    immutable: &["cidrBlock"],
    ..ec2(
        Kind::Vpc,
        "ec2:vpc",
        "DescribeVpcs",
        &["InvalidVpcID.NotFound"],
        &[
            "CreateTags",
            "CreateVpc",
            "DeleteVpc",
            "DescribeVpcAttribute",
            "DescribeVpcs",
            "ModifyVpcAttribute",
        ],
    )
};

const DEFAULT_SECURITY_GROUP: KindInfo = KindInfo {
    deletion: DeleteMode::WithParent,
    idempotency: Idempotency::Adopted,
    immutable: &["vpcId"],
    parent: IN_VPC,
    ..ec2(
        Kind::DefaultSecurityGroup,
        "ec2:default-security-group",
        "DescribeSecurityGroups",
        &["InvalidGroup.NotFound"],
        &[
            "AuthorizeSecurityGroupEgress",
            "AuthorizeSecurityGroupIngress",
            "CreateTags",
            "DescribeSecurityGroups",
            "RevokeSecurityGroupEgress",
            "RevokeSecurityGroupIngress",
        ],
    )
};

const SUBNET: KindInfo = KindInfo {
    immutable: &["vpcId", "cidrBlock", "availabilityZone"],
    parent: IN_VPC,
    ..ec2(
        Kind::Subnet,
        "ec2:subnet",
        "DescribeSubnets",
        &["InvalidSubnetID.NotFound"],
        &[
            "CreateSubnet",
            "CreateTags",
            "DeleteSubnet",
            "DescribeSubnets",
            "ModifySubnetAttribute",
        ],
    )
};

const INTERNET_GATEWAY: KindInfo = ec2(
    Kind::InternetGateway,
    "ec2:internet-gateway",
    "DescribeInternetGateways",
    &["InvalidInternetGatewayID.NotFound"],
    &[
        "AttachInternetGateway",
        "CreateInternetGateway",
        "CreateTags",
        "DeleteInternetGateway",
        "DescribeInternetGateways",
        "DetachInternetGateway",
    ],
);

const ELASTIC_IP: KindInfo = ec2(
    Kind::ElasticIp,
    "ec2:elastic-ip",
    "DescribeAddresses",
    &["InvalidAllocationID.NotFound"],
    &[
        "AllocateAddress",
        "CreateTags",
        "DescribeAddresses",
        "ReleaseAddress",
    ],
);

const NAT_GATEWAY: KindInfo = KindInfo {
    deletion: DeleteMode::Async,
    idempotency: Idempotency::ClientToken,
    immutable: &["subnetId", "allocationId"],
    parent: IN_SUBNET,
    ..ec2(
        Kind::NatGateway,
        "ec2:nat-gateway",
        "DescribeNatGateways",
        &["NatGatewayNotFound", "InvalidNatGatewayID.NotFound"],
        &[
            "CreateNatGateway",
            "CreateTags",
            "DeleteNatGateway",
            "DescribeNatGateways",
        ],
    )
};

const ROUTE_TABLE: KindInfo = KindInfo {
    idempotency: Idempotency::ClientToken,
    immutable: &["vpcId"],
    parent: IN_VPC,
    ..ec2(
        Kind::RouteTable,
        "ec2:route-table",
        "DescribeRouteTables",
        &[
            "InvalidRouteTableID.NotFound",
            "InvalidAssociationID.NotFound",
            "InvalidRoute.NotFound",
        ],
        &[
            "AssociateRouteTable",
            "CreateRoute",
            "CreateRouteTable",
            "CreateTags",
            "DeleteRoute",
            "DeleteRouteTable",
            "DescribeRouteTables",
            "DisassociateRouteTable",
            "ReplaceRoute",
            "ReplaceRouteTableAssociation",
        ],
    )
};

const SECURITY_GROUP: KindInfo = KindInfo {
    idempotency: Idempotency::UniqueName,
    immutable: &["vpcId", "name", "description"],
    parent: IN_VPC,
    ..ec2(
        Kind::SecurityGroup,
        "ec2:security-group",
        "DescribeSecurityGroups",
        &["InvalidGroup.NotFound"],
        &[
            "AuthorizeSecurityGroupEgress",
            "AuthorizeSecurityGroupIngress",
            "CreateSecurityGroup",
            "CreateTags",
            "DeleteSecurityGroup",
            "DescribeSecurityGroups",
            "RevokeSecurityGroupEgress",
            "RevokeSecurityGroupIngress",
        ],
    )
};

const INSTANCE: KindInfo = KindInfo {
    deletion: DeleteMode::Async,
    idempotency: Idempotency::ClientToken,
    // Only the security groups and the metadata options change in place.
    immutable: &[
        "subnetId",
        "instanceType",
        "imageId",
        "rootVolumeGib",
        "rootVolumeEncrypted",
        "rootVolumeKmsKeyArn",
        "associatePublicIp",
        "keyName",
    ],
    parent: IN_SUBNET,
    // The root volume is encrypted with the stack's key: EC2 creates a grant on it and
    // has data keys made and decrypted with the caller's permissions.
    requires: &[
        ("kms:CreateGrant", "*"),
        ("kms:Decrypt", "*"),
        ("kms:GenerateDataKeyWithoutPlaintext", "*"),
        ("kms:ReEncryptFrom", "*"),
        ("kms:ReEncryptTo", "*"),
    ],
    ..ec2(
        Kind::Instance,
        "ec2:instance",
        "DescribeInstances",
        &["InvalidInstanceID.NotFound"],
        &[
            "CreateTags",
            "DescribeInstances",
            "DescribeVolumes",
            "ModifyInstanceAttribute",
            "ModifyInstanceMetadataOptions",
            "RunInstances",
            "TerminateInstances",
        ],
    )
};

const FLOW_LOG: KindInfo = KindInfo {
    idempotency: Idempotency::ClientToken,
    // AWS cannot modify a flow log.
    immutable: &["vpcId", "logGroupName", "roleArn", "trafficType"],
    // The flow log is handed the role it writes to the log group with.
    requires: &[("iam:PassRole", OPERATOR_ROLES)],
    parent: IN_VPC,
    ..ec2(
        Kind::FlowLog,
        "ec2:flow-log",
        "DescribeFlowLogs",
        &["InvalidFlowLogId.NotFound"],
        &[
            "CreateFlowLogs",
            "CreateTags",
            "DeleteFlowLogs",
            "DescribeFlowLogs",
        ],
    )
};

/// SNS topics: the id is the ARN; names are unique per region and account, and
/// `CreateTopic` with a taken name returns that topic when the request matches.
const SNS_TOPIC: KindInfo = KindInfo {
    kind: Kind::SnsTopic,
    type_name: "sns:topic",
    service: "sns",
    describe: "GetTopicAttributes",
    tag_operation: "TagResource",
    deletion: DeleteMode::Sync,
    idempotency: Idempotency::SameRequest,
    not_found: &["NotFound"],
    immutable: &["name"],
    parent: None,
    calls: &[
        "CreateTopic",
        "DeleteTopic",
        "GetTopicAttributes",
        "ListTagsForResource",
        "ListTopics",
        "SetTopicAttributes",
        "TagResource",
    ],
    also_calls: &[],
    requires: &[],
    resources: "*",
};

/// SQS queues: the id is the URL; names are unique per region and account, and
/// `CreateQueue` with a taken name returns that queue when the attributes it carries
/// match. A queue subscribes itself to its topic, so it calls SNS too.
const SQS_QUEUE: KindInfo = KindInfo {
    kind: Kind::SqsQueue,
    type_name: "sqs:queue",
    service: "sqs",
    describe: "GetQueueAttributes",
    tag_operation: "TagQueue",
    deletion: DeleteMode::Sync,
    idempotency: Idempotency::SameRequest,
    // The query protocol's code, and the JSON protocol's.
    not_found: &[
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    ],
    immutable: &["name"],
    parent: None,
    calls: &[
        "CreateQueue",
        "DeleteQueue",
        "GetQueueAttributes",
        "GetQueueUrl",
        "ListQueueTags",
        "ListQueues",
        "SetQueueAttributes",
        "TagQueue",
    ],
    also_calls: &[
        ("sns", "ListSubscriptions"),
        ("sns", "ListSubscriptionsByTopic"),
        ("sns", "Subscribe"),
        ("sns", "Unsubscribe"),
    ],
    requires: &[],
    resources: "*",
};

/// DynamoDB tables: the id is the name. `CREATING` (pending) before `ACTIVE`, `DELETING`
/// before gone; a taken name is refused with `ResourceInUseException`.
const DYNAMODB_TABLE: KindInfo = KindInfo {
    kind: Kind::DynamoDbTable,
    type_name: "dynamodb:table",
    service: "dynamodb",
    describe: "DescribeTable",
    tag_operation: "TagResource",
    deletion: DeleteMode::Async,
    idempotency: Idempotency::UniqueName,
    // DescribeContinuousBackups and UpdateContinuousBackups answer the second.
    not_found: &["ResourceNotFoundException", "TableNotFoundException"],
    immutable: &["name", "partitionKey", "sortKey"],
    parent: None,
    calls: &[
        "CreateTable",
        "DeleteTable",
        "DescribeContinuousBackups",
        "DescribeTable",
        "DescribeTimeToLive",
        "ListTables",
        "ListTagsOfResource",
        "TagResource",
        "UpdateContinuousBackups",
        "UpdateTable",
        "UpdateTimeToLive",
    ],
    also_calls: &[],
    requires: &[],
    resources: "*",
};

const LAMBDA_FUNCTION: KindInfo = KindInfo {
    kind: Kind::LambdaFunction,
    type_name: "lambda:function",
    service: "lambda",
    describe: "GetFunction",
    tag_operation: "TagResource",
    deletion: DeleteMode::Sync,
    // A taken name: ResourceConflictException "Function already exist", reported as
    // `FunctionAlreadyExists`.
    idempotency: Idempotency::UniqueName,
    not_found: &["ResourceNotFoundException"],
    immutable: &["name"],
    // In the VPC through its subnets (any number of them), not inside one resource.
    parent: None,
    calls: &[
        "CreateFunction",
        "DeleteFunction",
        "DeleteFunctionConcurrency",
        "GetFunction",
        "GetFunctionConcurrency",
        "GetFunctionUrlConfig",
        "GetPolicy",
        "ListFunctions",
        "ListTags",
        "PutFunctionConcurrency",
        "TagResource",
        "UpdateFunctionCode",
        "UpdateFunctionConfiguration",
    ],
    also_calls: &[],
    requires: &[
        // The function is handed its execution role.
        ("iam:PassRole", OPERATOR_ROLES),
        // Lambda reads the code from S3 with the caller's permissions. Reads are never
        // scoped in the generated policy, so this allows every object; the bucket is not
        // known here (narrow it by hand where code lives in one bucket).
        ("s3:GetObject", "*"),
        ("s3:GetObjectVersion", "*"),
        // A VPC function: Lambda checks the subnets and groups with the caller's
        // permissions (the execution role creates the network interfaces).
        ("ec2:DescribeSecurityGroups", "*"),
        ("ec2:DescribeSubnets", "*"),
        ("ec2:DescribeVpcs", "*"),
        // The environment is encrypted with the stack's key: Lambda takes a grant and
        // encrypts with the caller's permissions, and decrypts it for GetFunction.
        ("kms:CreateGrant", "*"),
        ("kms:Decrypt", "*"),
        ("kms:Encrypt", "*"),
    ],
    resources: OPERATOR_FUNCTIONS,
};

const EVENT_SOURCE_MAPPING: KindInfo = KindInfo {
    kind: Kind::EventSourceMapping,
    type_name: "lambda:event-source-mapping",
    service: "lambda",
    describe: "GetEventSourceMapping",
    tag_operation: "TagResource",
    // `Deleting` first, then gone.
    deletion: DeleteMode::Async,
    // One mapping per function and queue: a second is refused (ResourceConflictException,
    // reported as `EventSourceMappingAlreadyExists`).
    idempotency: Idempotency::UniqueName,
    not_found: &["ResourceNotFoundException"],
    immutable: &["functionName", "eventSourceArn"],
    // It names its function but does not live in it: DeleteFunction leaves the
    // function's mappings (they are deleted on their own).
    parent: None,
    calls: &[
        "CreateEventSourceMapping",
        "DeleteEventSourceMapping",
        "GetEventSourceMapping",
        "ListEventSourceMappings",
        "ListTags",
        "TagResource",
        "UpdateEventSourceMapping",
    ],
    also_calls: &[],
    // The mapping's function polls the queue with its own role; creating the mapping
    // checks nothing on the caller besides these calls.
    requires: &[],
    // Mappings have generated ids (UUIDs): no name to scope by.
    resources: "*",
};

impl Kind {
    /// Every kind, in declaration (dependency) order.
    pub const ALL: [Kind; 18] = [
        Kind::KmsKey,
        Kind::LogGroup,
        Kind::IamRole,
        Kind::Vpc,
        Kind::DefaultSecurityGroup,
        Kind::Subnet,
        Kind::InternetGateway,
        Kind::ElasticIp,
        Kind::NatGateway,
        Kind::RouteTable,
        Kind::SecurityGroup,
        Kind::Instance,
        Kind::FlowLog,
        Kind::SnsTopic,
        Kind::SqsQueue,
        Kind::DynamoDbTable,
        Kind::LambdaFunction,
        Kind::EventSourceMapping,
    ];

    /// The kind's registry entry.
    pub const fn info(self) -> &'static KindInfo {
        match self {
            Kind::KmsKey => &KMS_KEY,
            Kind::LogGroup => &LOG_GROUP,
            Kind::IamRole => &IAM_ROLE,
            Kind::Vpc => &VPC,
            Kind::DefaultSecurityGroup => &DEFAULT_SECURITY_GROUP,
            Kind::Subnet => &SUBNET,
            Kind::InternetGateway => &INTERNET_GATEWAY,
            Kind::ElasticIp => &ELASTIC_IP,
            Kind::NatGateway => &NAT_GATEWAY,
            Kind::RouteTable => &ROUTE_TABLE,
            Kind::SecurityGroup => &SECURITY_GROUP,
            Kind::Instance => &INSTANCE,
            Kind::FlowLog => &FLOW_LOG,
            Kind::SnsTopic => &SNS_TOPIC,
            Kind::SqsQueue => &SQS_QUEUE,
            Kind::DynamoDbTable => &DYNAMODB_TABLE,
            Kind::LambdaFunction => &LAMBDA_FUNCTION,
            Kind::EventSourceMapping => &EVENT_SOURCE_MAPPING,
        }
    }

    /// `service:type`, as status and metrics name it.
    pub fn type_name(self) -> &'static str {
        self.info().type_name
    }

    /// The AWS service that owns the kind (for call counting).
    pub fn service(self) -> &'static str {
        self.info().service
    }

    /// The first kind (in [`Kind::ALL`] order) whose not-found codes include `code`, if
    /// any. Services share some codes (`ResourceNotFoundException`: CloudWatch Logs,
    /// DynamoDB and Lambda), so the kind is one of those that list it.
    pub fn of_not_found_code(code: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.info().not_found.contains(&code))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde::Deserialize;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error, U32Deserializer};

    use super::*;
    use crate::cloud::Spec;

    /// Every variant of `Kind`, by variant index (what serde's derive numbers them by): a
    /// variant added to the enum but not to `Kind::ALL` is found here.
    fn variants() -> Vec<Kind> {
        (0u32..)
            .map_while(|index| {
                let deserializer: U32Deserializer<Error> = index.into_deserializer();
                Kind::deserialize(deserializer).ok()
            })
            .collect()
    }

    #[test]
    fn all_lists_every_variant_once_in_declaration_order() {
        let variants = variants();
        assert!(variants.len() > 1, "the enumeration works: {variants:?}");
        assert_eq!(Kind::ALL.to_vec(), variants);
    }

    #[test]
    fn every_entry_describes_its_own_kind_consistently() {
        let mut type_names = BTreeSet::new();
        for kind in Kind::ALL {
            let info = kind.info();
            assert_eq!(info.kind, kind, "{kind:?}: the match reaches its own entry");
            assert!(
                type_names.insert(info.type_name),
                "{kind:?}: unique type name"
            );
            assert_eq!(
                info.type_name.split_once(':').map(|(s, _)| s),
                Some(info.service),
                "{kind:?}: the type name is service:type"
            );
            assert!(!info.not_found.is_empty(), "{kind:?}: a not-found code");
            for code in info.not_found {
                let listing: Vec<Kind> = Kind::ALL
                    .into_iter()
                    .filter(|k| k.info().not_found.contains(code))
                    .collect();
                // Found, as one of the kinds listing it (services share codes).
                assert_eq!(
                    Kind::of_not_found_code(code),
                    listing.first().copied(),
                    "{kind:?}: {code}"
                );
                assert!(listing.contains(&kind), "{kind:?}: {code}");
            }
            assert!(
                info.describe.starts_with("Describe") || info.describe.starts_with("Get"),
                "{kind:?}: {} reads",
                info.describe
            );
        }
    }

    #[test]
    fn immutable_and_parent_fields_are_fields_of_the_kind() {
        for kind in Kind::ALL {
            let fields: Vec<String> = Spec::example(kind)
                .fields()
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            for field in kind.info().immutable {
                assert!(fields.iter().any(|f| f == field), "{kind:?}: {field}");
            }
            if let Some(parent) = kind.info().parent {
                assert!(
                    fields.iter().any(|f| f == parent.field),
                    "{kind:?}: {parent:?}"
                );
                assert!(parent.kind < kind, "{kind:?}: parents come first");
            }
        }
    }
}
