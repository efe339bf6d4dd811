//! The simulated account's state: every resource as a [`Record`], with its lifecycle phase
//! driven by the clock, plus the fault and consistency settings and the call counters.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::rng::XorShift;
use crate::cloud::{
    CallCounts, CallOutcome, Kind, KindSpec, LambdaFunctionSpec, Observed, Spec, State, TAG_NODE,
    TAG_OWNER,
};

pub(crate) const ACCOUNT: &str = "123456789012";

/// Where a resource is in its life. Phases with a deadline move on by themselves when the
/// clock passes it (see [`World::settle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Becomes `Available` at the instant.
    Pending(Instant),
    Available,
    /// Disappears at the instant.
    Deleting(Instant),
}

/// One resource as the simulated AWS stores it.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub kind: Kind,
    pub id: String,
    pub arn: Option<String>,
    /// The real current values, in the contract's shape.
    pub spec: Spec,
    pub tags: BTreeMap<String, String>,
    pub attributes: BTreeMap<String, String>,
    pub phase: Phase,
    pub created_at: Instant,
    /// Creation order, to pick the oldest of several tag matches.
    pub seq: u64,
    /// Client token and the spec first requested with it (for `IdempotentParameterMismatch`).
    pub token: Option<(String, Spec)>,
    /// How long after creation it became available, once it has (for benchmarks).
    pub ready_after: Option<std::time::Duration>,
}

impl Record {
    pub(crate) fn state(&self) -> State {
        match self.phase {
            Phase::Pending(_) => State::Pending,
            Phase::Available => State::Available,
            Phase::Deleting(_) => State::Deleting,
        }
    }

    /// The resource as its describe call reports it. A Lambda function's `code` is what
    /// its tags recorded, checked against its `CodeSha256` (as the AWS backend reads it).
    pub(crate) fn observed(&self) -> Observed {
        let mut spec = self.spec.clone();
        if let Some(function) = LambdaFunctionSpec::of_mut(&mut spec) {
            let sha = self
                .attributes
                .get("codeSha256")
                .cloned()
                .unwrap_or_default();
            function.code = LambdaFunctionSpec::recorded_code(&self.tags, &sha);
        }
        Observed {
            id: self.id.clone(),
            arn: self.arn.clone(),
            state: self.state(),
            spec,
            tags: self.tags.clone(),
            attributes: self.attributes.clone(),
        }
    }

    pub(crate) fn owned_by(&self, owner: &str) -> bool {
        self.tags.get(TAG_OWNER).map(String::as_str) == Some(owner)
    }

    pub(crate) fn is_node(&self, owner: &str, node: &str) -> bool {
        self.owned_by(owner) && self.tags.get(TAG_NODE).map(String::as_str) == Some(node)
    }

    /// The resource it lives in, as the kind registry names it (`Parent`): its kind and
    /// id.
    pub(crate) fn parent(&self) -> Option<(Kind, String)> {
        let parent = self.kind.info().parent?;
        Some((parent.kind, self.spec.field(parent.field)?))
    }

    /// The VPC the resource lives in directly (a VPC is its own); not through a subnet.
    pub(crate) fn vpc_id(&self) -> Option<String> {
        if self.kind == Kind::Vpc {
            return Some(self.id.clone());
        }
        match self.parent()? {
            (Kind::Vpc, vpc) => Some(vpc),
            _ => None,
        }
    }

    /// The subnet the resource lives in.
    pub(crate) fn subnet_id(&self) -> Option<String> {
        match self.parent()? {
            (Kind::Subnet, subnet) => Some(subnet),
            _ => None,
        }
    }
}

/// A network interface Lambda keeps in a subnet, with a function's security groups,
/// after the function left the VPC (deleted, or its VPC configuration changed): it holds
/// the subnet and the groups (their deletes are `DependencyViolation`) until `until`.
#[derive(Clone, Debug)]
pub(crate) struct LambdaEni {
    pub function: String,
    pub subnet_id: String,
    pub security_group_ids: Vec<String>,
    pub until: Instant,
}

pub(crate) struct World {
    pub(crate) records: BTreeMap<String, Record>,
    /// Lambda's network interfaces that outlive their function's use of them.
    pub(crate) lambda_enis: Vec<LambdaEni>,
    seq: u64,
    pub rng: XorShift,
    pub region: String,
    pub time_scale: f64,
    pub throttle_rate: f64,
    pub server_error_rate: f64,
    pub consistency_window: Duration,
    pub calls: CallCounts,
    /// Operations that fail with AccessDenied (a missing IAM permission), until allowed.
    pub denied: std::collections::BTreeSet<String>,
    /// Names of deleted resources AWS does not let be taken again yet (an SQS queue's for
    /// 60 s), by kind and name, with the instant they are free.
    pub tombstones: BTreeMap<(Kind, String), Instant>,
    /// Changes AWS allows once per interval (a table's TimeToLive: one an hour), by
    /// resource id and change, with the instant the next one is allowed.
    pub cooldowns: BTreeMap<(String, &'static str), Instant>,
}

impl World {
    pub(crate) fn new(config: &super::SimConfig, region: &str) -> Self {
        World {
            records: BTreeMap::new(),
            lambda_enis: Vec::new(),
            seq: 0,
            rng: XorShift::new(config.seed),
            region: region.to_string(),
            time_scale: config.time_scale.max(0.0),
            throttle_rate: config.throttle_rate,
            server_error_rate: config.server_error_rate,
            consistency_window: config.consistency_window,
            calls: CallCounts::new(),
            denied: Default::default(),
            tombstones: BTreeMap::new(),
            cooldowns: BTreeMap::new(),
        }
    }

    /// Moves every timed phase on to `now`: pending resources become available (a Lambda
    /// function's update completes), deleting ones disappear, Lambda's left-over network
    /// interfaces go.
    pub(crate) fn settle(&mut self, now: Instant) {
        let mut gone = Vec::new();
        for record in self.records.values_mut() {
            match record.phase {
                Phase::Pending(at) if at <= now => {
                    record.phase = Phase::Available;
                    // The first time only: a later update's pending phase is not creation.
                    record
                        .ready_after
                        .get_or_insert(at.saturating_duration_since(record.created_at));
                }
                Phase::Deleting(at) if at <= now => gone.push(record.id.clone()),
                _ => {}
            }
        }
        for id in gone {
            self.records.remove(&id);
        }
        self.tombstones.retain(|_, free_at| *free_at > now);
        let records = &self.records;
        self.cooldowns
            .retain(|(id, _), until| *until > now && records.contains_key(id));
        self.lambda_enis.retain(|eni| eni.until > now);
    }

    /// A real-AWS duration of `seconds`, scaled by `time_scale`.
    pub(crate) fn scaled(&self, seconds: f64) -> Duration {
        Duration::from_secs_f64((seconds * self.time_scale).max(0.0))
    }

    /// `seconds` ± `spread`, drawn from the seeded RNG, scaled.
    pub(crate) fn jittered(&mut self, seconds: f64, spread: f64) -> Duration {
        let s = self.rng.between(seconds - spread, seconds + spread);
        self.scaled(s)
    }

    /// A fresh `prefix` + 17 hex digits id, unique in the account.
    pub(crate) fn new_id(&mut self, prefix: &str) -> String {
        loop {
            let id = format!("{prefix}{}", self.rng.hex(17));
            if !self.records.contains_key(&id) {
                return id;
            }
        }
    }

    /// Stores a new resource, available at once unless `phase` says otherwise.
    pub(crate) fn insert(
        &mut self,
        kind: Kind,
        id: &str,
        spec: Spec,
        tags: BTreeMap<String, String>,
        now: Instant,
    ) {
        self.seq += 1;
        let record = Record {
            kind,
            id: id.to_string(),
            arn: None,
            spec,
            tags,
            attributes: BTreeMap::new(),
            phase: Phase::Available,
            created_at: now,
            seq: self.seq,
            token: None,
            ready_after: None,
        };
        self.records.insert(id.to_string(), record);
    }

    pub(crate) fn get(&self, kind: Kind, id: &str) -> Option<&Record> {
        self.records.get(id).filter(|r| r.kind == kind)
    }

    pub(crate) fn get_mut(&mut self, kind: Kind, id: &str) -> Option<&mut Record> {
        self.records.get_mut(id).filter(|r| r.kind == kind)
    }

    /// The spec of the resource `id` of `T`'s kind.
    pub(crate) fn spec<T: KindSpec>(&self, id: &str) -> Option<&T> {
        self.get(T::KIND, id).and_then(|r| T::of(&r.spec))
    }

    pub(crate) fn spec_mut<T: KindSpec>(&mut self, id: &str) -> Option<&mut T> {
        self.get_mut(T::KIND, id)
            .and_then(|r| T::of_mut(&mut r.spec))
    }

    /// Every resource of `T`'s kind with its spec.
    pub(crate) fn specs<T: KindSpec + 'static>(&self) -> impl Iterator<Item = (&Record, &T)> {
        self.of_kind(T::KIND)
            .filter_map(|r| T::of(&r.spec).map(|spec| (r, spec)))
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Record> {
        self.records.remove(id)
    }

    /// Every resource, any kind, in id order.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }

    pub(crate) fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Record> {
        self.records.values().filter(move |r| r.kind == kind)
    }

    /// Resources of `kind` inside `vpc` (directly, or through their subnet).
    pub(crate) fn in_vpc<'a>(
        &'a self,
        kind: Kind,
        vpc: &'a str,
    ) -> impl Iterator<Item = &'a Record> + 'a {
        self.of_kind(kind).filter(move |r| {
            r.vpc_id().as_deref() == Some(vpc)
                || r.subnet_id()
                    .and_then(|s| self.get(Kind::Subnet, &s))
                    .and_then(Record::vpc_id)
                    .as_deref()
                    == Some(vpc)
        })
    }

    /// The resource of `kind` created with client token `token`, if it still exists.
    pub(crate) fn by_token(&self, kind: Kind, token: &str) -> Option<&Record> {
        if token.is_empty() {
            return None;
        }
        self.of_kind(kind)
            .find(|r| r.token.as_ref().is_some_and(|(t, _)| t == token))
    }

    /// Past the consistency window: Describe* and tag searches can see it.
    pub(crate) fn visible(&self, record: &Record, now: Instant) -> bool {
        now.saturating_duration_since(record.created_at) >= self.consistency_window
    }

    pub(crate) fn count(&mut self, service: &str, operation: &str, outcome: CallOutcome) {
        *self
            .calls
            .entry((service.to_string(), operation.to_string(), outcome))
            .or_insert(0) += 1;
    }
}
