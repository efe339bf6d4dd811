//! The control table of HIPAA-CONTROLS.md: every row's id, resource, control and
//! citation. Only the citation is used at run time; the rest documents the row.

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
}

/// Every row of HIPAA-CONTROLS.md, in the table's order.
pub const CONTROLS: &[Control] = &[
    Control {
        id: "NET-1",
        resource: "VPC",
        control: "flow logs enabled (ALL traffic) to an encrypted log group",
        citation: "45 CFR 164.312(b)",
    },
    Control {
        id: "NET-2",
        resource: "private route tables",
        control: "no 0.0.0.0/0 route to the internet gateway (egress only via NAT)",
        citation: "45 CFR 164.312(e)(1)",
    },
    Control {
        id: "NET-3",
        resource: "private subnets",
        control: "MapPublicIpOnLaunch = false",
        citation: "45 CFR 164.312(a)(1)",
    },
    Control {
        id: "NET-4",
        resource: "security groups",
        control: "no 0.0.0.0/0 or ::/0 ingress to 22 or 3389",
        citation: "45 CFR 164.312(e)(1)",
    },
    Control {
        id: "NET-5",
        resource: "default security group",
        control: "no rules",
        citation: "45 CFR 164.312(e)(1)",
    },
    Control {
        id: "NET-6",
        resource: "tiered security groups",
        control: "bastion 22 only from declared CIDRs; app only from the NLB/VPC CIDR; RDS only from app and bastion SGs",
        citation: "45 CFR 164.312(a)(1)",
    },
    Control {
        id: "EC2-1",
        resource: "instances",
        control: "IMDSv2 required (HttpTokens=required)",
        citation: "45 CFR 164.312(a)(1)",
    },
    Control {
        id: "EC2-2",
        resource: "instances",
        control: "EBS volumes encrypted",
        citation: "45 CFR 164.312(a)(2)(iv)",
    },
    Control {
        id: "EC2-3",
        resource: "application instances",
        control: "no public IP",
        citation: "45 CFR 164.312(a)(1)",
    },
    Control {
        id: "NLB-1",
        resource: "NLB",
        control: "internal scheme",
        citation: "45 CFR 164.312(e)(1)",
    },
    Control {
        id: "NLB-2",
        resource: "NLB",
        control: "deletion protection",
        citation: "45 CFR 164.308(a)(7)(i)",
    },
    Control {
        id: "API-1",
        resource: "API Gateway stage",
        control: "execution logging on, data trace off",
        citation: "45 CFR 164.312(b)",
    },
    Control {
        id: "API-2",
        resource: "API Gateway stage",
        control: "access logging to an encrypted log group",
        citation: "45 CFR 164.312(b)",
    },
    Control {
        id: "API-3",
        resource: "API Gateway stage",
        control: "X-Ray tracing",
        citation: "45 CFR 164.312(b)",
    },
    Control {
        id: "API-4",
        resource: "API Gateway stage",
        control: "cache, if on, encrypted",
        citation: "45 CFR 164.312(a)(2)(iv)",
    },
    Control {
        id: "CF-1",
        resource: "CloudFront",
        control: "viewers https-only or redirect-to-https",
        citation: "45 CFR 164.312(e)(1)",
    },
    Control {
        id: "CF-2",
        resource: "CloudFront",
        control: "minimum viewer TLS TLSv1.2_2021 or newer, ACM certificate, SNI",
        citation: "45 CFR 164.312(e)(1)",
    },
    Control {
        id: "CF-3",
        resource: "CloudFront",
        control: "origins https-only, no SSLv3/TLS1.0/1.1",
        citation: "45 CFR 164.312(e)(1)",
    },
    Control {
        id: "CF-4",
        resource: "CloudFront",
        control: "access logging",
        citation: "45 CFR 164.312(b)",
    },
    Control {
        id: "CF-5",
        resource: "CloudFront",
        control: "S3 origin through origin access control",
        citation: "45 CFR 164.312(a)(1)",
    },
    Control {
        id: "ACM-1",
        resource: "certificate",
        control: "issued, not expiring within 30 days",
        citation: "45 CFR 164.312(e)(1)",
    },
    Control {
        id: "S3-1",
        resource: "buckets",
        control: "block public access (all four), ACLs disabled",
        citation: "45 CFR 164.312(a)(1)",
    },
    Control {
        id: "S3-2",
        resource: "buckets",
        control: "default encryption SSE-KMS",
        citation: "45 CFR 164.312(a)(2)(iv)",
    },
    Control {
        id: "S3-3",
        resource: "buckets",
        control: "versioning",
        citation: "45 CFR 164.308(a)(7)(ii)(A)",
    },
    Control {
        id: "S3-4",
        resource: "buckets",
        control: "server access logging",
        citation: "45 CFR 164.312(b)",
    },
    Control {
        id: "S3-5",
        resource: "buckets",
        control: "policy denies aws:SecureTransport=false",
        citation: "45 CFR 164.312(e)(1)",
    },
    Control {
        id: "R53-1",
        resource: "public hosted zone",
        control: "query logging",
        citation: "45 CFR 164.312(b)",
    },
    Control {
        id: "RDS-1",
        resource: "DB instance",
        control: "storage encrypted with a customer KMS key",
        citation: "45 CFR 164.312(a)(2)(iv)",
    },
    Control {
        id: "RDS-2",
        resource: "DB instance",
        control: "not publicly accessible",
        citation: "45 CFR 164.312(a)(1)",
    },
    Control {
        id: "RDS-3",
        resource: "DB instance",
        control: "backup retention >= 7 days",
        citation: "45 CFR 164.308(a)(7)(ii)(A)",
    },
    Control {
        id: "RDS-4",
        resource: "DB instance",
        control: "Multi-AZ",
        citation: "45 CFR 164.308(a)(7)(i)",
    },
    Control {
        id: "RDS-5",
        resource: "DB instance",
        control: "deletion protection",
        citation: "45 CFR 164.308(a)(7)(i)",
    },
    Control {
        id: "RDS-6",
        resource: "DB instance",
        control: "TLS forced (rds.force_ssl=1 / require_secure_transport=1)",
        citation: "45 CFR 164.312(e)(1)",
    },
    Control {
        id: "RDS-7",
        resource: "DB instance",
        control: "log exports to CloudWatch, auto minor version upgrade, IAM auth",
        citation: "45 CFR 164.312(b)",
    },
    Control {
        id: "LAM-1",
        resource: "functions",
        control: "in VPC private subnets",
        citation: "45 CFR 164.312(a)(1)",
    },
    Control {
        id: "LAM-2",
        resource: "functions",
        control: "environment encrypted with a customer KMS key, no secrets in variables",
        citation: "45 CFR 164.312(a)(2)(iv)",
    },
    Control {
        id: "LAM-3",
        resource: "functions",
        control: "not public, no public function URL",
        citation: "45 CFR 164.312(a)(1)",
    },
    Control {
        id: "LAM-4",
        resource: "functions",
        control: "reserved concurrency set, tracing active",
        citation: "45 CFR 164.312(b)",
    },
    Control {
        id: "SNS-1",
        resource: "topic",
        control: "SSE with a customer KMS key, not public",
        citation: "45 CFR 164.312(a)(2)(iv)",
    },
    Control {
        id: "SQS-1",
        resource: "queues",
        control: "SSE with a customer KMS key, not public",
        citation: "45 CFR 164.312(a)(2)(iv)",
    },
    Control {
        id: "SQS-2",
        resource: "queue",
        control: "redrive policy to a dead-letter queue",
        citation: "45 CFR 164.308(a)(7)(ii)(B)",
    },
    Control {
        id: "DDB-1",
        resource: "table",
        control: "point-in-time recovery",
        citation: "45 CFR 164.308(a)(7)(ii)(A)",
    },
    Control {
        id: "DDB-2",
        resource: "table",
        control: "SSE with a customer KMS key",
        citation: "45 CFR 164.312(a)(2)(iv)",
    },
    Control {
        id: "DDB-3",
        resource: "table",
        control: "deletion protection",
        citation: "45 CFR 164.308(a)(7)(i)",
    },
    Control {
        id: "KMS-1",
        resource: "keys",
        control: "rotation enabled, not pending deletion",
        citation: "45 CFR 164.312(a)(2)(iv)",
    },
    Control {
        id: "LOG-1",
        resource: "log groups",
        control: "retention set (>= 365 days by default, configurable) and KMS-encrypted",
        citation: "45 CFR 164.312(b)",
    },
];
