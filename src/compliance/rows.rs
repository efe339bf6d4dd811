//! What every kind's rows share: a row's findings and result, scanning a row's nodes
//! (unobservable and missing ones recorded), and the rows every stack has (KMS-1, LOG-1).

use super::{Context, ObservedNode, citation};
use crate::api::{ComplianceEntry, ControlResult};
use crate::cloud::{Kind, KmsKeySpec, LogGroupSpec, Observed, Spec};

/// At most this many findings are spelled out in one detail; the rest are counted.
const MAX_FINDINGS: usize = 8;
/// Observe errors are cut to this many characters in a detail.
const MAX_ERROR_CHARS: usize = 160;

/// Findings of one row while it is evaluated.
pub(super) struct Row {
    id: &'static str,
    pub(super) failed: Vec<String>,
    pub(super) unknown: Vec<String>,
}

impl Row {
    pub(super) fn new(id: &'static str) -> Self {
        Row {
            id,
            failed: Vec::new(),
            unknown: Vec::new(),
        }
    }

    pub(super) fn fail(&mut self, finding: String) {
        self.failed.push(finding);
    }

    /// Failed beats Unknown beats Passed; `passed` is the detail of a pass.
    pub(super) fn finish(self, passed: String) -> ComplianceEntry {
        let (result, detail) = if !self.failed.is_empty() {
            let mut detail = list(&self.failed);
            if !self.unknown.is_empty() {
                detail.push_str("; also ");
                detail.push_str(&list(&self.unknown));
            }
            (ControlResult::Failed, detail)
        } else if !self.unknown.is_empty() {
            (ControlResult::Unknown, list(&self.unknown))
        } else {
            (ControlResult::Passed, passed)
        };
        ComplianceEntry {
            id: self.id.into(),
            citation: citation(self.id).into(),
            result,
            detail,
        }
    }
}

pub(super) fn list(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(MAX_FINDINGS)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > MAX_FINDINGS {
        text.push_str(&format!("; and {} more", items.len() - MAX_FINDINGS));
    }
    text
}

pub(super) fn unobservable(node: &str, err: &str) -> String {
    let first = err.lines().next().unwrap_or_default();
    let mut short: String = first.chars().take(MAX_ERROR_CHARS).collect();
    if short.len() < first.len() {
        short.push('…');
    }
    format!("{node}: could not be observed ({short})")
}

/// How a row treats a declared node whose resource does not exist.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Absent {
    /// The row requires it: `Failed`, "does not exist".
    Fails,
    /// A missing resource cannot violate the row.
    Skipped,
}

/// The nodes a row reads, after recording unobservable (and, per `absent`, missing) ones.
pub(super) struct Scan<'a> {
    pub(super) found: Vec<(&'a str, &'a Observed)>,
    /// How many nodes matched, whatever their observation.
    pub(super) declared: usize,
}

pub(super) fn scan<'a>(
    nodes: &'a [ObservedNode],
    row: &mut Row,
    kinds: &[Kind],
    select: impl Fn(&str) -> bool,
    absent: Absent,
) -> Scan<'a> {
    let mut found = Vec::new();
    let mut declared = 0;
    for n in nodes
        .iter()
        .filter(|n| kinds.contains(&n.kind) && select(&n.node))
    {
        declared += 1;
        match &n.observed {
            Err(err) => row.unknown.push(unobservable(&n.node, err)),
            Ok(None) if absent == Absent::Fails => row.fail(format!("{}: does not exist", n.node)),
            Ok(None) => {}
            Ok(Some(o)) if o.spec.kind() != n.kind => row.unknown.push(format!(
                "{} ({}): observed as {}, expected {}",
                n.node,
                o.id,
                o.spec.kind().type_name(),
                n.kind.type_name()
            )),
            Ok(Some(o)) => found.push((n.node.as_str(), o)),
        }
    }
    Scan { found, declared }
}

pub(super) fn unobservable_any(
    nodes: &[ObservedNode],
    select: impl Fn(&ObservedNode) -> bool,
) -> bool {
    nodes.iter().any(|n| select(n) && n.observed.is_err())
}

pub(super) fn any(_: &str) -> bool {
    true
}

pub(super) fn who(node: &str, o: &Observed) -> String {
    format!("{node} ({})", o.id)
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// KMS-1: every key rotates and is not pending deletion.
pub(super) fn kms1(nodes: &[ObservedNode]) -> ComplianceEntry {
    let mut row = Row::new("KMS-1");
    let keys = scan(nodes, &mut row, &[Kind::KmsKey], any, Absent::Fails);
    for &(node, o) in &keys.found {
        let Spec::KmsKey(KmsKeySpec {
            rotation_enabled,
            pending_deletion,
            ..
        }) = &o.spec
        else {
            continue;
        };
        if !rotation_enabled {
            row.fail(format!("{}: rotation disabled", who(node, o)));
        }
        if *pending_deletion {
            row.fail(format!("{}: pending deletion", who(node, o)));
        }
    }
    let passed = match keys.declared {
        0 => "no KMS keys in the stack".to_string(),
        n => format!(
            "{} with rotation enabled, not pending deletion",
            plural(n, "KMS key", "KMS keys")
        ),
    };
    row.finish(passed)
}

/// LOG-1: every log group retains at least the minimum (0 = never expire) and is
/// KMS-encrypted.
pub(super) fn log1(nodes: &[ObservedNode], ctx: &Context) -> ComplianceEntry {
    let mut row = Row::new("LOG-1");
    let groups = scan(nodes, &mut row, &[Kind::LogGroup], any, Absent::Fails);
    let min = ctx.min_log_retention_days;
    for &(node, o) in &groups.found {
        let Spec::LogGroup(LogGroupSpec {
            retention_days,
            kms_key_arn,
            ..
        }) = &o.spec
        else {
            continue;
        };
        if *retention_days != 0 && *retention_days < min {
            row.fail(format!(
                "{}: retention {retention_days} days (minimum {min})",
                who(node, o)
            ));
        }
        if kms_key_arn.is_empty() {
            row.fail(format!("{}: no KMS key", who(node, o)));
        }
    }
    let passed = match groups.declared {
        0 => "no log groups in the stack".to_string(),
        n => format!(
            "{} retained >= {min} days and KMS-encrypted",
            plural(n, "log group", "log groups")
        ),
    };
    row.finish(passed)
}
