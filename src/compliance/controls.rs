//! The HIPAA control table: every row's id, resource, control, citation and the
//! equivalent checks of prowler and AWS Config (for auditors' cross-reference).
//! `docs/hipaa-controls.md` is rendered from it (a test keeps the two equal); only the
//! citation is used at run time.

/// One row of the control table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Control {
    /// Row id, e.g. `NET-1`.
    pub id: &'static str,
    /// What the row is about, e.g. `private route tables`.
    pub resource: &'static str,
    /// The machine-checkable control.
    pub control: &'static str,
    /// The HIPAA Security Rule citation, e.g. `45 CFR 164.312(b)`.
    pub citation: &'static str,
    /// The equivalent prowler check, `""` when it has none.
    pub prowler: &'static str,
    /// The equivalent AWS Config managed rule, `""` when it has none.
    pub aws_config: &'static str,
    /// What the operator does so that the row passes.
    pub operator: &'static str,
}

/// Every row of the control table, in order.
pub const CONTROLS: &[Control] = &[
    Control {
        id: "NET-1",
        resource: "VPC",
        control: "flow logs enabled (ALL traffic) to an encrypted log group",
        citation: "45 CFR 164.312(b)",
        prowler: "vpc_flow_logs_enabled",
        operator: "creates a flow log of ALL traffic to a KMS-encrypted log group, with a role allowed only to write it",
        aws_config: "vpc-flow-logs-enabled",
    },
    Control {
        id: "NET-2",
        resource: "private route tables",
        control: "no 0.0.0.0/0 route to the internet gateway (egress only via NAT)",
        citation: "45 CFR 164.312(e)(1)",
        prowler: "",
        operator: "routes private subnets' 0.0.0.0/0 only to a NAT gateway; an internet-gateway route added there is drift and removed",
        aws_config: "no-unrestricted-route-to-igw",
    },
    Control {
        id: "NET-3",
        resource: "private subnets",
        control: "MapPublicIpOnLaunch = false",
        citation: "45 CFR 164.312(a)(1)",
        prowler: "vpc_subnet_no_public_ip_by_default",
        operator: "creates private subnets without public IPs on launch; turning it on is drift and reverted",
        aws_config: "subnet-auto-assign-public-ip-disabled",
    },
    Control {
        id: "NET-4",
        resource: "security groups",
        control: "no 0.0.0.0/0 or ::/0 ingress to 22 or 3389",
        citation: "45 CFR 164.312(e)(1)",
        prowler: "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22",
        operator: "refuses 0.0.0.0/0 and ::/0 SSH CIDRs at admission; a world-open rule added on AWS is drift and revoked",
        aws_config: "restricted-ssh",
    },
    Control {
        id: "NET-5",
        resource: "default security group",
        control: "no rules",
        citation: "45 CFR 164.312(e)(1)",
        prowler: "ec2_securitygroup_default_restrict_traffic",
        operator: "revokes every rule of the VPC's default security group, and again whenever one reappears",
        aws_config: "vpc-default-security-group-closed",
    },
    Control {
        id: "NET-6",
        resource: "tiered security groups",
        control: "bastion 22 only from declared CIDRs; app only from the NLB/VPC CIDR; RDS only from app and bastion SGs",
        citation: "45 CFR 164.312(a)(1)",
        prowler: "ec2_securitygroup_allow_ingress_from_internet_to_all_ports",
        operator: "gives each tier only its declared sources (bastion: declared CIDRs; app: VPC CIDR; database: app and bastion groups)",
        aws_config: "vpc-sg-open-only-to-authorized-ports",
    },
    Control {
        id: "EC2-1",
        resource: "instances",
        control: "IMDSv2 required (HttpTokens=required)",
        citation: "45 CFR 164.312(a)(1)",
        prowler: "ec2_instance_imdsv2_enabled",
        operator: "launches instances with HttpTokens=required; a change is drift and reverted",
        aws_config: "ec2-imdsv2-check",
    },
    Control {
        id: "EC2-2",
        resource: "instances",
        control: "EBS volumes encrypted",
        citation: "45 CFR 164.312(a)(2)(iv)",
        prowler: "ec2_ebs_volume_encryption",
        operator: "encrypts root volumes with the stack's KMS key",
        aws_config: "encrypted-volumes",
    },
    Control {
        id: "EC2-3",
        resource: "application instances",
        control: "no public IP",
        citation: "45 CFR 164.312(a)(1)",
        prowler: "ec2_instance_public_ip",
        operator: "launches application instances without a public IP in private subnets",
        aws_config: "ec2-instance-no-public-ip",
    },
    Control {
        id: "NLB-1",
        resource: "NLB",
        control: "internal scheme",
        citation: "45 CFR 164.312(e)(1)",
        prowler: "elbv2_internet_facing",
        operator: "creates the load balancer with the internal scheme",
        aws_config: "",
    },
    Control {
        id: "NLB-2",
        resource: "NLB",
        control: "deletion protection",
        citation: "45 CFR 164.308(a)(7)(i)",
        prowler: "elbv2_deletion_protection",
        operator: "turns deletion protection on, off only just before its own delete",
        aws_config: "elb-deletion-protection-enabled",
    },
    Control {
        id: "API-1",
        resource: "API Gateway stage",
        control: "execution logging on, data trace off",
        citation: "45 CFR 164.312(b)",
        prowler: "apigateway_restapi_logging_enabled",
        operator: "enables execution logging (ERROR/INFO) with data trace off on the stage",
        aws_config: "api-gw-execution-logging-enabled",
    },
    Control {
        id: "API-2",
        resource: "API Gateway stage",
        control: "access logging to an encrypted log group",
        citation: "45 CFR 164.312(b)",
        prowler: "",
        operator: "sends access logs to a KMS-encrypted log group",
        aws_config: "",
    },
    Control {
        id: "API-3",
        resource: "API Gateway stage",
        control: "X-Ray tracing",
        citation: "45 CFR 164.312(b)",
        prowler: "apigateway_restapi_tracing_enabled",
        operator: "enables X-Ray tracing on the stage",
        aws_config: "api-gw-xray-enabled",
    },
    Control {
        id: "API-4",
        resource: "API Gateway stage",
        control: "cache, if on, encrypted",
        citation: "45 CFR 164.312(a)(2)(iv)",
        prowler: "apigateway_restapi_cache_encrypted",
        operator: "encrypts the stage cache when the spec turns it on",
        aws_config: "api-gw-cache-enabled-and-encrypted",
    },
    Control {
        id: "CF-1",
        resource: "CloudFront",
        control: "viewers https-only or redirect-to-https",
        citation: "45 CFR 164.312(e)(1)",
        prowler: "cloudfront_distributions_https_enabled",
        operator: "accepts only redirect-to-https or https-only viewer policies (schema enum)",
        aws_config: "cloudfront-viewer-policy-https",
    },
    Control {
        id: "CF-2",
        resource: "CloudFront",
        control: "minimum viewer TLS TLSv1.2_2021 or newer, ACM certificate, SNI",
        citation: "45 CFR 164.312(e)(1)",
        prowler: "",
        operator: "sets the ACM certificate, SNI and TLSv1.2_2021 or the spec's newer minimum",
        aws_config: "cloudfront-security-policy-check",
    },
    Control {
        id: "CF-3",
        resource: "CloudFront",
        control: "origins https-only, no SSLv3/TLS1.0/1.1",
        citation: "45 CFR 164.312(e)(1)",
        prowler: "cloudfront_distributions_using_deprecated_ssl_protocols",
        operator: "sends to origins over HTTPS only with TLSv1.2",
        aws_config: "cloudfront-no-deprecated-ssl-protocols",
    },
    Control {
        id: "CF-4",
        resource: "CloudFront",
        control: "access logging",
        citation: "45 CFR 164.312(b)",
        prowler: "cloudfront_distributions_logging_enabled",
        operator: "enables access logging to the log bucket",
        aws_config: "cloudfront-accesslogs-enabled",
    },
    Control {
        id: "CF-5",
        resource: "CloudFront",
        control: "S3 origin through origin access control",
        citation: "45 CFR 164.312(a)(1)",
        prowler: "cloudfront_distributions_s3_origin_access_control",
        operator: "reads the S3 origin through an origin access control, the bucket policy scoped to the distribution",
        aws_config: "cloudfront-s3-origin-access-control-enabled",
    },
    Control {
        id: "ACM-1",
        resource: "certificate",
        control: "issued, not expiring within 30 days",
        citation: "45 CFR 164.312(e)(1)",
        prowler: "acm_certificates_expiration_check",
        operator: "requests the certificate with DNS validation and writes the validation records; reports expiry within 30 days",
        aws_config: "acm-certificate-expiration-check",
    },
    Control {
        id: "S3-1",
        resource: "buckets",
        control: "block public access (all four), ACLs disabled",
        citation: "45 CFR 164.312(a)(1)",
        prowler: "s3_bucket_level_public_access_block",
        operator: "blocks all four public access settings and enforces bucket-owner object ownership (ACLs disabled)",
        aws_config: "s3-bucket-level-public-access-prohibited",
    },
    Control {
        id: "S3-2",
        resource: "buckets",
        control: "default encryption SSE-KMS",
        citation: "45 CFR 164.312(a)(2)(iv)",
        prowler: "s3_bucket_kms_encryption",
        operator: "sets default encryption SSE-KMS with a customer key and bucket keys",
        aws_config: "s3-default-encryption-kms",
    },
    Control {
        id: "S3-3",
        resource: "buckets",
        control: "versioning",
        citation: "45 CFR 164.308(a)(7)(ii)(A)",
        prowler: "s3_bucket_object_versioning",
        operator: "enables versioning",
        aws_config: "s3-bucket-versioning-enabled",
    },
    Control {
        id: "S3-4",
        resource: "buckets",
        control: "server access logging",
        citation: "45 CFR 164.312(b)",
        prowler: "s3_bucket_server_access_logging_enabled",
        operator: "enables server access logging to the log bucket",
        aws_config: "s3-bucket-logging-enabled",
    },
    Control {
        id: "S3-5",
        resource: "buckets",
        control: "policy denies aws:SecureTransport=false",
        citation: "45 CFR 164.312(e)(1)",
        prowler: "s3_bucket_secure_transport_policy",
        operator: "writes a bucket policy denying requests without TLS",
        aws_config: "s3-bucket-ssl-requests-only",
    },
    Control {
        id: "R53-1",
        resource: "public hosted zone",
        control: "query logging",
        citation: "45 CFR 164.312(b)",
        prowler: "route53_public_hosted_zones_cloudwatch_logging_enabled",
        operator: "enables DNS query logging for a zone it creates, with the resource policy Route53 needs",
        aws_config: "",
    },
    Control {
        id: "RDS-1",
        resource: "DB instance",
        control: "storage encrypted with a customer KMS key",
        citation: "45 CFR 164.312(a)(2)(iv)",
        prowler: "rds_instance_storage_encrypted",
        operator: "creates the instance encrypted with the stack's customer KMS key",
        aws_config: "rds-storage-encrypted",
    },
    Control {
        id: "RDS-2",
        resource: "DB instance",
        control: "not publicly accessible",
        citation: "45 CFR 164.312(a)(1)",
        prowler: "rds_instance_no_public_access",
        operator: "creates the instance not publicly accessible, in private subnets",
        aws_config: "rds-instance-public-access-check",
    },
    Control {
        id: "RDS-3",
        resource: "DB instance",
        control: "backup retention >= 7 days",
        citation: "45 CFR 164.308(a)(7)(ii)(A)",
        prowler: "rds_instance_backup_enabled (tests > 0 only)",
        operator: "keeps backup retention between 7 and 35 days (schema bounds)",
        aws_config: "db-instance-backup-enabled",
    },
    Control {
        id: "RDS-4",
        resource: "DB instance",
        control: "Multi-AZ",
        citation: "45 CFR 164.308(a)(7)(i)",
        prowler: "rds_instance_multi_az",
        operator: "creates the instance Multi-AZ, always",
        aws_config: "rds-multi-az-support",
    },
    Control {
        id: "RDS-5",
        resource: "DB instance",
        control: "deletion protection",
        citation: "45 CFR 164.308(a)(7)(i)",
        prowler: "rds_instance_deletion_protection",
        operator: "turns deletion protection on, off only just before its own delete",
        aws_config: "rds-instance-deletion-protection-enabled",
    },
    Control {
        id: "RDS-6",
        resource: "DB instance",
        control: "TLS forced (rds.force_ssl=1 / require_secure_transport=1)",
        citation: "45 CFR 164.312(e)(1)",
        prowler: "rds_instance_transport_encrypted",
        operator: "uses a parameter group forcing TLS (rds.force_ssl / require_secure_transport)",
        aws_config: "",
    },
    Control {
        id: "RDS-7",
        resource: "DB instance",
        control: "log exports to CloudWatch, auto minor version upgrade, IAM auth",
        citation: "45 CFR 164.312(b)",
        prowler: "rds_instance_integration_cloudwatch_logs",
        operator: "exports database logs to CloudWatch, turns on auto minor version upgrade and IAM authentication",
        aws_config: "rds-logging-enabled",
    },
    Control {
        id: "LAM-1",
        resource: "functions",
        control: "in VPC private subnets",
        citation: "45 CFR 164.312(a)(1)",
        prowler: "awslambda_function_inside_vpc",
        operator: "runs functions in the network's private subnets with a no-ingress security group",
        aws_config: "lambda-inside-vpc",
    },
    Control {
        id: "LAM-2",
        resource: "functions",
        control: "environment encrypted with a customer KMS key, no secrets in variables",
        citation: "45 CFR 164.312(a)(2)(iv)",
        prowler: "awslambda_function_env_vars_not_encrypted_with_cmk",
        operator: "encrypts function environments with the stack's key; secret-looking variable names are refused at admission",
        aws_config: "",
    },
    Control {
        id: "LAM-3",
        resource: "functions",
        control: "not public, no public function URL",
        citation: "45 CFR 164.312(a)(1)",
        prowler: "awslambda_function_not_publicly_accessible",
        operator: "grants no public invoke permission and creates no function URL",
        aws_config: "lambda-function-public-access-prohibited",
    },
    Control {
        id: "LAM-4",
        resource: "functions",
        control: "reserved concurrency set, tracing active",
        citation: "45 CFR 164.312(b)",
        prowler: "",
        operator: "sets reserved concurrency and active X-Ray tracing",
        aws_config: "lambda-concurrency-check",
    },
    Control {
        id: "SNS-1",
        resource: "topic",
        control: "SSE with a customer KMS key, not public",
        citation: "45 CFR 164.312(a)(2)(iv)",
        prowler: "sns_topics_kms_encryption_at_rest_enabled",
        operator: "encrypts the topic with the stack's key; its policy admits only the account's principals",
        aws_config: "sns-encrypted-kms",
    },
    Control {
        id: "SQS-1",
        resource: "queues",
        control: "SSE with a customer KMS key, not public",
        citation: "45 CFR 164.312(a)(2)(iv)",
        prowler: "sqs_queues_server_side_encryption_enabled",
        operator: "encrypts both queues with the stack's key; the queue policy lets only the topic send",
        aws_config: "",
    },
    Control {
        id: "SQS-2",
        resource: "queue",
        control: "redrive policy to a dead-letter queue",
        citation: "45 CFR 164.308(a)(7)(ii)(B)",
        prowler: "",
        operator: "sets a redrive policy to the dead-letter queue after maxReceiveCount receives",
        aws_config: "",
    },
    Control {
        id: "DDB-1",
        resource: "table",
        control: "point-in-time recovery",
        citation: "45 CFR 164.308(a)(7)(ii)(A)",
        prowler: "dynamodb_tables_pitr_enabled",
        operator: "enables point-in-time recovery",
        aws_config: "dynamodb-pitr-enabled",
    },
    Control {
        id: "DDB-2",
        resource: "table",
        control: "SSE with a customer KMS key",
        citation: "45 CFR 164.312(a)(2)(iv)",
        prowler: "dynamodb_tables_kms_cmk_encryption_enabled",
        operator: "encrypts the table with the stack's customer KMS key",
        aws_config: "dynamodb-table-encrypted-kms",
    },
    Control {
        id: "DDB-3",
        resource: "table",
        control: "deletion protection",
        citation: "45 CFR 164.308(a)(7)(i)",
        prowler: "dynamodb_table_deletion_protection_enabled",
        operator: "turns deletion protection on",
        aws_config: "dynamodb-table-deletion-protection-enabled",
    },
    Control {
        id: "KMS-1",
        resource: "keys",
        control: "rotation enabled, not pending deletion",
        citation: "45 CFR 164.312(a)(2)(iv)",
        prowler: "kms_cmk_rotation_enabled",
        operator: "creates one customer key per stack with rotation on (or uses the key the spec names)",
        aws_config: "cmk-backing-key-rotation-enabled",
    },
    Control {
        id: "LOG-1",
        resource: "log groups",
        control: "retention set (>= 365 days by default, configurable) and KMS-encrypted",
        citation: "45 CFR 164.312(b)",
        prowler: "cloudwatch_log_group_retention_policy_specific_days_enabled",
        operator: "sets retention (365 days by default, never below the operator's floor) and the stack's KMS key on every log group",
        aws_config: "cw-loggroup-retention-period-check",
    },
];

/// `docs/hipaa-controls.md`: the control table as Markdown, with which custom-resource
/// kind reports each row (`reported_by(id)`, `None`: no kind reports it yet).
pub fn render_markdown(reported_by: impl Fn(&str) -> Option<&'static str>) -> String {
    let cell = |text: &str| {
        if text.is_empty() {
            "–".to_string()
        } else {
            text.replace('|', "\\|")
        }
    };
    let mut out = String::from(
        "# HIPAA controls the operator enforces and reports\n\
         \n\
         <!-- Rendered from src/compliance/controls.rs by the test \
         `compliance::controls::tests::the_controls_document_is_current`; \
         regenerate with `UPDATE_DOCS=1 cargo test --lib the_controls_document_is_current`. -->\n\
         \n\
         Each row is a machine-checkable control over observed AWS state. The operator \
         builds resources that pass every row by default, reports each row it evaluates \
         in the custom resource's `status.compliance` (id, citation, result \
         `Passed|Failed|Unknown`, detail) and as the metric \
         `hipaa_operator_compliance_failed_controls{namespace,name,kind,control}` \
         (present while failed), and sets the `Compliant` condition from them. A row \
         whose resource could not be observed (the API was unavailable or denied) is \
         `Unknown`, never `Passed`. Citations are to the HIPAA Security Rule, 45 CFR \
         Part 164; the prowler and AWS Config columns name the equivalent public checks \
         so auditors can cross-reference. Rows marked *kind not reconciled yet* say what the \
         operator will do once that kind's controller lands; today it neither builds nor \
         reports them.\n\
         \n\
         | id | resource | control | what the operator does | citation | prowler check | AWS Config rule | reported by |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for c in CONTROLS {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.id,
            cell(c.resource),
            cell(c.control),
            cell(c.operator),
            c.citation,
            cell(c.prowler),
            cell(c.aws_config),
            reported_by(c.id).unwrap_or("– (*kind not reconciled yet*)"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind whose compliance rows include `id`.
    fn reported_by(id: &str) -> Option<&'static str> {
        crate::compliance::NETWORK_CONTROLS
            .contains(&id)
            .then_some("HipaaNetwork")
    }

    #[test]
    fn the_controls_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/hipaa-controls.md");
        let rendered = render_markdown(reported_by);
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &rendered).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == rendered,
            "docs/hipaa-controls.md is stale: run UPDATE_DOCS=1 cargo test --lib the_controls_document_is_current"
        );
    }

    #[test]
    fn every_control_id_the_code_reports_is_in_the_table() {
        for id in crate::compliance::NETWORK_CONTROLS {
            assert!(
                CONTROLS.iter().any(|c| c.id == id),
                "{id} is not documented"
            );
        }
        // Every id a compliance module names in a row.
        let sources = [include_str!("network.rs")];
        for source in sources {
            for (at, _) in source.match_indices("Row::new(\"") {
                let id: String = source[at + 10..]
                    .chars()
                    .take_while(|c| *c != '"')
                    .collect();
                assert!(
                    CONTROLS.iter().any(|c| c.id == id),
                    "{id} is not documented"
                );
            }
        }
    }

    #[test]
    fn ids_are_unique_and_every_row_is_cited() {
        let mut ids: Vec<&str> = CONTROLS.iter().map(|c| c.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CONTROLS.len(), "duplicate control id");
        for c in CONTROLS {
            assert!(
                c.citation.starts_with("45 CFR 164."),
                "{}: {}",
                c.id,
                c.citation
            );
        }
    }
}
