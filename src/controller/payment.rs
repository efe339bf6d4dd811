//! PaymentPipeline as a [`Stack`]: it references its HipaaNetwork (the functions run in
//! the network's private subnets and VPC), builds the pipeline blueprint, reports the
//! pipeline's HIPAA rows, and gives users the queue URLs, topic, functions, mapping,
//! table and key.

use crate::api::{
    CommonSpec, CommonStatus, ComplianceEntry, HipaaNetwork, PaymentPipeline, PaymentPipelineStatus,
};
use crate::blueprint::payment::NetworkOutputs;
use crate::blueprint::{self, BlueprintError, Graph};
use crate::cloud::Owner;
use crate::compliance::{self, ObservedNode};
use crate::engine::Outcome;

use super::references::resource_of;
use super::stack::{Referenced, Stack, Target};

impl Stack for PaymentPipeline {
    const KIND: &'static str = "PaymentPipeline";
    const TARGET: Option<Target> = Some(Target {
        kind: "HipaaNetwork",
        field: "networkRef",
        resource: resource_of::<HipaaNetwork>,
        placeholder: super::network::planned_outputs,
    });
    const CONTROLS: &'static [&'static str] = &compliance::PAYMENT_CONTROLS;
    type Status = PaymentPipelineStatus;

    fn common_spec(&self) -> &CommonSpec {
        &self.spec.common
    }

    fn status(&self) -> Option<&PaymentPipelineStatus> {
        self.status.as_ref()
    }

    fn common_status(status: &PaymentPipelineStatus) -> &CommonStatus {
        &status.common
    }

    fn with_common(status: PaymentPipelineStatus, common: CommonStatus) -> PaymentPipelineStatus {
        PaymentPipelineStatus { common, ..status }
    }

    fn reference(&self) -> Option<&str> {
        Some(&self.spec.network_ref.name)
    }

    fn blueprint(
        &self,
        owner: &Owner,
        target: Option<&Referenced>,
    ) -> Result<Graph, BlueprintError> {
        let network = network_outputs(target)?;
        blueprint::payment::build(owner, &self.spec, &network)
    }

    fn compliance(
        &self,
        nodes: &[ObservedNode],
        min_log_retention_days: i32,
        target: Option<&Referenced>,
    ) -> Vec<ComplianceEntry> {
        compliance::evaluate_payment(
            nodes,
            &compliance::Context {
                min_log_retention_days,
                private_subnet_ids: target
                    .map(|network| network.outputs("privateSubnetIds"))
                    .unwrap_or_default(),
                ..compliance::Context::default()
            },
        )
    }

    fn status_after(&self, common: CommonStatus, _: &Outcome) -> PaymentPipelineStatus {
        let find = |node: &str| common.resources.iter().find(|r| r.node == node);
        let id = |node: &str| find(node).and_then(|r| r.id.clone());
        let arn = |node: &str| find(node).and_then(|r| r.arn.clone());
        PaymentPipelineStatus {
            queue_url: id("sqs/queue"),
            dead_letter_queue_url: id("sqs/dead-letter"),
            topic_arn: id("sns/topic"),
            payment_function_arn: arn("lambda/payment"),
            poller_function_arn: arn("lambda/poller"),
            event_source_mapping_id: id("lambda/poller/queue-mapping"),
            table_name: id("dynamodb/table"),
            table_arn: arn("dynamodb/table"),
            kms_key_arn: self
                .spec
                .common
                .kms_key_arn
                .clone()
                .or_else(|| arn("kms/key")),
            common,
        }
    }
}

/// The network's VPC and private subnets, from its Ready status.
fn network_outputs(target: Option<&Referenced>) -> Result<NetworkOutputs, BlueprintError> {
    let missing = |what: &str| BlueprintError {
        field: "spec.networkRef".into(),
        message: format!("the network reports no {what}"),
    };
    let network = target.ok_or_else(|| missing("status"))?;
    Ok(NetworkOutputs {
        vpc_id: network
            .output("vpcId")
            .ok_or_else(|| missing("vpcId"))?
            .to_string(),
        private_subnet_ids: network.outputs("privateSubnetIds"),
    })
}
