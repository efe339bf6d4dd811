//! The operator's Prometheus metrics. Every label value is bounded: kinds, resource types,
//! control ids, result categories and AWS operation names come from fixed tables, and
//! `namespace`/`name` from the custom resources themselves (removed when one is deleted).
//! No label ever carries an error's text.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::cloud::CallCounts;

/// All metric families, registered in one registry.
pub struct Metrics {
    registry: Registry,
    pub reconcile_total: IntCounterVec,
    pub reconcile_duration: HistogramVec,
    pub drift_detected_total: IntCounterVec,
    pub resources_drifted: IntGaugeVec,
    pub compliance_failed_controls: IntGaugeVec,
    pub aws_api_calls_total: IntCounterVec,
    pub managed_resources: IntGaugeVec,
    pub leader: IntGauge,
    /// AWS call counts already added to `aws_api_calls_total`, per provider instance
    /// (providers count cumulatively; the counter gets the difference).
    exported_calls: Mutex<BTreeMap<String, CallCounts>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let reconcile_total = IntCounterVec::new(
            Opts::new(
                "hipaa_operator_reconcile_total",
                "Reconciles by kind and result (success, pending, or an error category).",
            ),
            &["kind", "result"],
        )
        .expect("valid metric");
        let reconcile_duration = HistogramVec::new(
            HistogramOpts::new(
                "hipaa_operator_reconcile_duration_seconds",
                "Duration of one reconcile (one engine pass and the status write).",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["kind"],
        )
        .expect("valid metric");
        let drift_detected_total = IntCounterVec::new(
            Opts::new(
                "hipaa_operator_drift_detected_total",
                "Drifted fields found on AWS (each counted once, when first seen).",
            ),
            &["kind", "resource_type"],
        )
        .expect("valid metric");
        let resources_drifted = IntGaugeVec::new(
            Opts::new(
                "hipaa_operator_resources_drifted",
                "AWS resources of a custom resource that differ from its spec now (not remediated).",
            ),
            &["namespace", "name", "kind"],
        )
        .expect("valid metric");
        let compliance_failed_controls = IntGaugeVec::new(
            Opts::new(
                "hipaa_operator_compliance_failed_controls",
                "1 for each HIPAA control a custom resource currently fails.",
            ),
            &["namespace", "name", "kind", "control"],
        )
        .expect("valid metric");
        let aws_api_calls_total = IntCounterVec::new(
            Opts::new(
                "hipaa_operator_aws_api_calls_total",
                "AWS API calls by service, operation and outcome (ok, throttled, client_error, server_error).",
            ),
            &["service", "operation", "outcome"],
        )
        .expect("valid metric");
        let managed_resources = IntGaugeVec::new(
            Opts::new(
                "hipaa_operator_managed_resources",
                "AWS resources the operator manages, by custom resource kind.",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let leader = IntGauge::new(
            "hipaa_operator_leader",
            "1 while this replica holds the leader lease (or runs without leader election).",
        )
        .expect("valid metric");
        for collector in [
            Box::new(reconcile_total.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(reconcile_duration.clone()),
            Box::new(drift_detected_total.clone()),
            Box::new(resources_drifted.clone()),
            Box::new(compliance_failed_controls.clone()),
            Box::new(aws_api_calls_total.clone()),
            Box::new(managed_resources.clone()),
            Box::new(leader.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            reconcile_total,
            reconcile_duration,
            drift_detected_total,
            resources_drifted,
            compliance_failed_controls,
            aws_api_calls_total,
            managed_resources,
            leader,
            exported_calls: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds to `aws_api_calls_total` what a provider counted since the last export.
    /// `source` names the provider instance (e.g. its region).
    pub fn export_calls(&self, source: &str, counts: &CallCounts) {
        let mut exported = self
            .exported_calls
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let seen = exported.entry(source.to_string()).or_default();
        for (key, &count) in counts {
            let before = seen.get(key).copied().unwrap_or(0);
            if count > before {
                let (service, operation, outcome) = key;
                self.aws_api_calls_total
                    .with_label_values(&[service.as_str(), operation.as_str(), outcome.as_str()])
                    .inc_by(count - before);
                seen.insert(key.clone(), count);
            }
        }
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding of gathered metrics");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::CallOutcome;

    fn counts(rows: &[(&str, &str, CallOutcome, u64)]) -> CallCounts {
        rows.iter()
            .map(|(s, o, out, n)| ((s.to_string(), o.to_string(), *out), *n))
            .collect()
    }

    #[test]
    fn cumulative_provider_counts_are_exported_once() {
        let metrics = Metrics::new();
        metrics.export_calls(
            "sim/us-east-1",
            &counts(&[("ec2", "CreateVpc", CallOutcome::Ok, 2)]),
        );
        // The provider's count grew by one: the counter grows by one, not by three.
        metrics.export_calls(
            "sim/us-east-1",
            &counts(&[("ec2", "CreateVpc", CallOutcome::Ok, 3)]),
        );
        let value = metrics
            .aws_api_calls_total
            .with_label_values(&["ec2", "CreateVpc", "ok"])
            .get();
        assert_eq!(value, 3);
        // Another provider's counts add to the same label set.
        metrics.export_calls(
            "sim/eu-west-1",
            &counts(&[("ec2", "CreateVpc", CallOutcome::Ok, 1)]),
        );
        assert_eq!(
            metrics
                .aws_api_calls_total
                .with_label_values(&["ec2", "CreateVpc", "ok"])
                .get(),
            4
        );
    }

    #[test]
    fn render_names_every_family_with_its_prefix() {
        let metrics = Metrics::new();
        metrics
            .reconcile_total
            .with_label_values(&["HipaaNetwork", "success"])
            .inc();
        metrics.leader.set(1);
        let text = metrics.render();
        assert!(text.contains(
            "hipaa_operator_reconcile_total{kind=\"HipaaNetwork\",result=\"success\"} 1"
        ));
        assert!(text.contains("hipaa_operator_leader 1"));
    }
}
