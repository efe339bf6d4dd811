//! The network rows: NET-1..6, EC2-1..3, KMS-1, LOG-1 over a network stack's nodes.

use std::net::IpAddr;

use super::rows::{Absent, Row, any, kms1, log1, plural, scan, unobservable_any, who};
use super::{Context, ObservedNode};
use crate::api::ComplianceEntry;
use crate::cloud::{
    DefaultSecurityGroupSpec, FlowLogSpec, InstanceSpec, Kind, KindSpec, LogGroupSpec, Observed,
    RouteTableSpec, SecurityGroupSpec, SgRule, Spec, State, SubnetSpec, VpcSpec,
};

const WORLD: [&str; 2] = ["0.0.0.0/0", "::/0"];
const ADMIN_PORTS: [i32; 2] = [22, 3389];

/// Evaluates the network rows over `nodes`, one entry per row in the control table's
/// order: NET-1..NET-6, EC2-1, EC2-2, EC2-3 (only when the stack has application
/// instances, keys `instance/app…`), KMS-1, LOG-1.
pub fn evaluate_network(nodes: &[ObservedNode], ctx: &Context) -> Vec<ComplianceEntry> {
    let mut out = vec![
        net1(nodes),
        net2(nodes),
        net3(nodes),
        net4(nodes),
        net5(nodes),
        net6(nodes, ctx),
        ec2_1(nodes),
        ec2_2(nodes),
    ];
    if nodes
        .iter()
        .any(|n| n.kind == Kind::Instance && is_app_instance(&n.node))
    {
        out.push(ec2_3(nodes));
    }
    out.push(kms1(nodes));
    out.push(log1(nodes, ctx));
    out
}

fn private(key: &str) -> bool {
    key.contains("private")
}

fn is_app_instance(key: &str) -> bool {
    key.starts_with("instance/app")
}

/// `tcp 22`, `tcp 1024-65535`, `all traffic`.
fn render_rule(rule: &SgRule) -> String {
    if rule.protocol == "-1" {
        "all traffic".into()
    } else if rule.from_port == rule.to_port {
        format!("{} {}", rule.protocol, rule.from_port)
    } else {
        format!("{} {}-{}", rule.protocol, rule.from_port, rule.to_port)
    }
}

fn describe_ingress(rule: &SgRule) -> String {
    format!("ingress {} from {}", render_rule(rule), rule.source)
}

fn is_tcp(protocol: &str) -> bool {
    protocol == "tcp" || protocol == "6"
}

fn covers(rule: &SgRule, port: i32) -> bool {
    rule.protocol == "-1"
        || (is_tcp(&rule.protocol) && rule.from_port <= port && port <= rule.to_port)
}

/// Parses `addr/len` into (is IPv6, address bits, prefix length).
fn network(cidr: &str) -> Option<(bool, u128, u32)> {
    let (addr, len) = cidr.trim().split_once('/')?;
    let len: u32 = len.parse().ok()?;
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) if len <= 32 => Some((false, u128::from(u32::from(a)), len)),
        IpAddr::V6(a) if len <= 128 => Some((true, u128::from(a), len)),
        _ => None,
    }
}

/// `inner` is the same as or a subnet of `outer`.
pub(super) fn within(inner: &str, outer: &str) -> bool {
    if inner.trim() == outer.trim() {
        return true;
    }
    let (Some((v6_in, a_in, l_in)), Some((v6_out, a_out, l_out))) =
        (network(inner), network(outer))
    else {
        return false;
    };
    let bits = if v6_out { 128 } else { 32 };
    let shift = bits - l_out;
    v6_in == v6_out
        && l_in >= l_out
        && a_in.checked_shr(shift).unwrap_or(0) == a_out.checked_shr(shift).unwrap_or(0)
}

/// NET-1: a flow log of the VPC captures ALL traffic into a KMS-encrypted log group.
fn net1(nodes: &[ObservedNode]) -> ComplianceEntry {
    let mut row = Row::new("NET-1");
    let vpcs = scan(nodes, &mut row, &[Kind::Vpc], any, Absent::Fails);
    let flows = scan(nodes, &mut row, &[Kind::FlowLog], any, Absent::Skipped);
    let flow_unobservable = unobservable_any(nodes, |n| n.kind == Kind::FlowLog);
    // Without a VPC node, any flow log in the stack counts for "the VPC".
    let targets: Vec<Option<(&str, &Observed)>> = if vpcs.declared == 0 {
        vec![None]
    } else {
        vpcs.found.iter().copied().map(Some).collect()
    };
    let mut passed = Vec::new();
    for target in targets {
        let vpc_label = target.map_or_else(|| "the VPC".to_string(), |(n, o)| who(n, o));
        let mut problems = Vec::new();
        let mut unknown = Vec::new();
        let mut ok = None;
        let mut candidates = 0;
        for &(node, o) in &flows.found {
            let Spec::FlowLog(FlowLogSpec {
                vpc_id,
                log_group_name,
                traffic_type,
                ..
            }) = &o.spec
            else {
                continue;
            };
            if target.is_some_and(|(_, v)| &v.id != vpc_id) {
                continue;
            }
            candidates += 1;
            let mut issues = Vec::new();
            let mut unverified = None;
            if traffic_type != "ALL" {
                issues.push(format!("traffic type {traffic_type} (needs ALL)"));
            }
            if o.state == State::Deleting {
                issues.push("being deleted".to_string());
            }
            match log_group(nodes, log_group_name) {
                LogGroupLookup::Found(lg_node, lg) => {
                    if let Spec::LogGroup(LogGroupSpec { kms_key_arn, .. }) = &lg.spec
                        && kms_key_arn.is_empty()
                    {
                        issues.push(format!(
                            "log group {log_group_name} ({lg_node}) has no KMS key"
                        ));
                    }
                }
                LogGroupLookup::Missing => {
                    issues.push(format!("log group {log_group_name} does not exist"))
                }
                LogGroupLookup::Unobservable(lg_nodes) => {
                    unverified = Some(format!(
                        "{}: log group {log_group_name} could not be verified ({} not observed)",
                        who(node, o),
                        lg_nodes.join(", ")
                    ));
                }
            }
            if !issues.is_empty() {
                problems.extend(issues.into_iter().map(|i| format!("{}: {i}", who(node, o))));
            } else if let Some(u) = unverified {
                unknown.push(u);
            } else {
                ok = Some(format!(
                    "{vpc_label}: flow log {} captures ALL traffic to encrypted log group {log_group_name}",
                    who(node, o)
                ));
            }
        }
        if let Some(ok) = ok {
            passed.push(ok);
        } else if candidates == 0 {
            // An unobservable flow log node may be this VPC's: Unknown is already recorded.
            if !flow_unobservable {
                row.fail(format!("{vpc_label}: no flow log for the VPC"));
            }
        } else {
            row.failed.extend(problems);
            row.unknown.extend(unknown);
        }
    }
    let passed = if passed.is_empty() {
        "no VPC to check".to_string()
    } else {
        passed.join("; ")
    };
    row.finish(passed)
}

enum LogGroupLookup<'a> {
    Found(&'a str, &'a Observed),
    Missing,
    /// Not among the observed log groups, and these log group nodes could not be observed.
    Unobservable(Vec<&'a str>),
}

fn log_group<'a>(nodes: &'a [ObservedNode], name: &str) -> LogGroupLookup<'a> {
    let mut unobservable = Vec::new();
    for n in nodes.iter().filter(|n| n.kind == Kind::LogGroup) {
        match &n.observed {
            Ok(Some(o)) if LogGroupSpec::of(&o.spec).is_some_and(|lg| lg.name == name) => {
                return LogGroupLookup::Found(&n.node, o);
            }
            Err(_) => unobservable.push(n.node.as_str()),
            _ => {}
        }
    }
    if unobservable.is_empty() {
        LogGroupLookup::Missing
    } else {
        LogGroupLookup::Unobservable(unobservable)
    }
}

/// NET-2: no private route table routes 0.0.0.0/0 (or ::/0) to an internet gateway.
fn net2(nodes: &[ObservedNode]) -> ComplianceEntry {
    let mut row = Row::new("NET-2");
    let tables = scan(nodes, &mut row, &[Kind::RouteTable], private, Absent::Fails);
    for &(node, o) in &tables.found {
        let Spec::RouteTable(RouteTableSpec { routes, .. }) = &o.spec else {
            continue;
        };
        for r in routes
            .iter()
            .filter(|r| WORLD.contains(&r.destination.trim()) && r.target.starts_with("igw-"))
        {
            row.fail(format!(
                "{}: route {} -> {}",
                who(node, o),
                r.destination,
                r.target
            ));
        }
    }
    let passed = match tables.declared {
        0 => "no private route tables in the stack".to_string(),
        n => format!(
            "{} without a default route to an internet gateway",
            plural(n, "private route table", "private route tables")
        ),
    };
    row.finish(passed)
}

/// NET-3: private subnets do not map public IPs on launch.
fn net3(nodes: &[ObservedNode]) -> ComplianceEntry {
    let mut row = Row::new("NET-3");
    let subnets = scan(nodes, &mut row, &[Kind::Subnet], private, Absent::Fails);
    for &(node, o) in &subnets.found {
        if let Spec::Subnet(SubnetSpec {
            map_public_ip_on_launch: true,
            ..
        }) = &o.spec
        {
            row.fail(format!("{}: map_public_ip_on_launch true", who(node, o)));
        }
    }
    let passed = match subnets.declared {
        0 => "no private subnets in the stack".to_string(),
        n => format!(
            "{} with map_public_ip_on_launch false",
            plural(n, "private subnet", "private subnets")
        ),
    };
    row.finish(passed)
}

/// NET-4: no security group admits 22 or 3389 from 0.0.0.0/0 or ::/0.
fn net4(nodes: &[ObservedNode]) -> ComplianceEntry {
    let mut row = Row::new("NET-4");
    let groups = scan(
        nodes,
        &mut row,
        &[Kind::SecurityGroup, Kind::DefaultSecurityGroup],
        any,
        Absent::Skipped,
    );
    for &(node, o) in &groups.found {
        let (Spec::SecurityGroup(SecurityGroupSpec { ingress, .. })
        | Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec { ingress, .. })) = &o.spec
        else {
            continue;
        };
        for rule in ingress {
            if WORLD.contains(&rule.source.trim()) && ADMIN_PORTS.iter().any(|&p| covers(rule, p)) {
                row.fail(format!("{}: {}", who(node, o), describe_ingress(rule)));
            }
        }
    }
    let passed = format!(
        "{}: no ingress to 22 or 3389 from 0.0.0.0/0 or ::/0",
        plural(groups.found.len(), "security group", "security groups")
    );
    row.finish(passed)
}

/// NET-5: the VPC's default security group has no rules.
fn net5(nodes: &[ObservedNode]) -> ComplianceEntry {
    let mut row = Row::new("NET-5");
    let groups = scan(
        nodes,
        &mut row,
        &[Kind::DefaultSecurityGroup],
        any,
        Absent::Fails,
    );
    if groups.declared == 0 {
        row.unknown
            .push("the VPC's default security group was not observed".into());
    }
    for &(node, o) in &groups.found {
        let Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
            ingress, egress, ..
        }) = &o.spec
        else {
            continue;
        };
        for (direction, rules) in [("ingress", ingress), ("egress", egress)] {
            if let Some(first) = rules.first() {
                row.fail(format!(
                    "{}: {} (first: {} {} {})",
                    who(node, o),
                    plural(
                        rules.len(),
                        &format!("{direction} rule"),
                        &format!("{direction} rules")
                    ),
                    render_rule(first),
                    if direction == "ingress" { "from" } else { "to" },
                    first.source,
                ));
            }
        }
    }
    let passed = groups
        .found
        .iter()
        .map(|&(node, o)| {
            format!(
                "default security group {} has no ingress or egress rules",
                who(node, o)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    row.finish(passed)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tier {
    Bastion,
    App,
    Db,
}

fn tier(key: &str) -> Option<Tier> {
    if key.contains("bastion") {
        Some(Tier::Bastion)
    } else if key.starts_with("sg/app") {
        Some(Tier::App)
    } else if key.starts_with("sg/db") {
        Some(Tier::Db)
    } else {
        None
    }
}

/// NET-6: bastion only tcp 22 from the declared CIDRs; app only from the VPC CIDR; db only
/// from the app and bastion security groups.
fn net6(nodes: &[ObservedNode], ctx: &Context) -> ComplianceEntry {
    let mut row = Row::new("NET-6");
    let groups = scan(
        nodes,
        &mut row,
        &[Kind::SecurityGroup],
        |k| tier(k).is_some(),
        Absent::Fails,
    );
    let fronts = |t: Option<Tier>| matches!(t, Some(Tier::Bastion | Tier::App));
    let front_ids: Vec<&str> = groups
        .found
        .iter()
        .filter(|(n, _)| fronts(tier(n)))
        .map(|(_, o)| o.id.as_str())
        .collect();
    let front_node = |n: &ObservedNode| n.kind == Kind::SecurityGroup && fronts(tier(&n.node));
    let fronts_declared = nodes.iter().filter(|n| front_node(n)).count();
    let fronts_unobservable = unobservable_any(nodes, front_node);
    let vpc_cidrs: Vec<String> = if ctx.vpc_cidr.trim().is_empty() {
        nodes
            .iter()
            .filter_map(|n| match &n.observed {
                Ok(Some(Observed {
                    spec: Spec::Vpc(VpcSpec { cidr_block, .. }),
                    ..
                })) => Some(cidr_block.clone()),
                _ => None,
            })
            .collect()
    } else {
        vec![ctx.vpc_cidr.clone()]
    };

    let mut counts = [0usize; 3];
    for &(node, o) in &groups.found {
        let Spec::SecurityGroup(SecurityGroupSpec { ingress, .. }) = &o.spec else {
            continue;
        };
        let Some(t) = tier(node) else { continue };
        counts[t as usize] += 1;
        for rule in ingress {
            let what = format!("{}: {}", who(node, o), describe_ingress(rule));
            match t {
                Tier::Bastion => {
                    let ssh_only =
                        is_tcp(&rule.protocol) && rule.from_port == 22 && rule.to_port == 22;
                    if !ssh_only {
                        row.fail(format!("{what} (bastion allows only tcp 22)"));
                    } else if !ctx
                        .allowed_ssh_cidrs
                        .iter()
                        .any(|c| within(&rule.source, c))
                    {
                        row.fail(format!("{what} (not a declared SSH CIDR)"));
                    }
                }
                Tier::App => {
                    if vpc_cidrs.is_empty() && network(&rule.source).is_some() {
                        row.unknown.push(format!("{what}: the VPC CIDR is unknown"));
                    } else if !vpc_cidrs.iter().any(|c| within(&rule.source, c)) {
                        row.fail(format!("{what} (outside the VPC CIDR)"));
                    }
                }
                Tier::Db => {
                    if !rule.source.starts_with("sg-") {
                        row.fail(format!("{what} (only the app and bastion security groups)"));
                    } else if fronts_declared > 0 && !front_ids.contains(&rule.source.as_str()) {
                        if fronts_unobservable {
                            row.unknown.push(format!(
                                "{what}: the app/bastion security groups could not be observed"
                            ));
                        } else {
                            row.fail(format!("{what} (not the app or bastion security group)"));
                        }
                    }
                }
            }
        }
    }
    let passed = if groups.declared == 0 {
        "no bastion, app or db security groups in the stack".to_string()
    } else {
        let [bastion, app, db] = counts;
        let mut parts = Vec::new();
        if bastion > 0 {
            parts.push("bastion: tcp 22 only from declared CIDRs");
        }
        if app > 0 {
            parts.push("app: only from the VPC CIDR");
        }
        if db > 0 {
            parts.push("db: only from the app and bastion security groups");
        }
        parts.join("; ")
    };
    row.finish(passed)
}

/// The instances matching `select`, each checked by `violation`.
fn instances(
    id: &'static str,
    nodes: &[ObservedNode],
    select: impl Fn(&str) -> bool,
    violation: impl Fn(&Observed) -> Vec<String>,
    what: &str,
) -> ComplianceEntry {
    let mut row = Row::new(id);
    let found = scan(nodes, &mut row, &[Kind::Instance], select, Absent::Fails);
    for &(node, o) in &found.found {
        for v in violation(o) {
            row.fail(format!("{}: {v}", who(node, o)));
        }
    }
    let passed = match found.declared {
        0 => "no instances in the stack".to_string(),
        n => format!("{} {what}", plural(n, "instance", "instances")),
    };
    row.finish(passed)
}

/// EC2-1: every instance requires IMDSv2.
fn ec2_1(nodes: &[ObservedNode]) -> ComplianceEntry {
    let check = |o: &Observed| match &o.spec {
        Spec::Instance(InstanceSpec {
            imds_v2_required: false,
            ..
        }) => vec!["IMDSv2 not required (HttpTokens=optional)".into()],
        _ => vec![],
    };
    instances("EC2-1", nodes, any, check, "require IMDSv2")
}

/// EC2-2: every instance's root volume is encrypted.
fn ec2_2(nodes: &[ObservedNode]) -> ComplianceEntry {
    let check = |o: &Observed| match &o.spec {
        Spec::Instance(InstanceSpec {
            root_volume_encrypted: false,
            ..
        }) => vec!["root volume not encrypted".into()],
        _ => vec![],
    };
    instances("EC2-2", nodes, any, check, "with encrypted root volumes")
}

/// EC2-3: application instances have no public IP.
fn ec2_3(nodes: &[ObservedNode]) -> ComplianceEntry {
    let check = |o: &Observed| {
        let mut out = Vec::new();
        if let Spec::Instance(InstanceSpec {
            associate_public_ip: true,
            ..
        }) = &o.spec
        {
            out.push("associate_public_ip true".to_string());
        }
        if let Some(ip) = o.attributes.get("publicIp").filter(|ip| !ip.is_empty()) {
            out.push(format!("public IP {ip}"));
        }
        out
    };
    instances(
        "EC2-3",
        nodes,
        is_app_instance,
        check,
        "(application) without a public IP",
    )
}
