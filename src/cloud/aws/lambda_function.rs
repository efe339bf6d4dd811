//! Lambda functions, deployed from a zip in S3. The id is the function's NAME (unique per
//! region, what every Lambda call takes); `Observed::arn` is the function ARN.
//!
//! `CreateFunction` takes the whole configuration, the code (`S3Bucket`/`S3Key`/
//! `S3ObjectVersion` from the spec's `s3://` source) and the tags: the ownership tags and
//! `hipaa.dev/code` (the source). `TagResource` then records the `CodeSha256` Lambda
//! answered in `hipaa.dev/code-sha256`, and `PutFunctionConcurrency` reserves concurrency
//! (both accepted while the function is `Pending`). Observed `code` is the recorded source
//! while the function's `CodeSha256` is the recorded one, else `unknown (sha256 <hash>)`:
//! code deployed by other means is drift, and update redeploys from the spec's source
//! (`UpdateFunctionCode`, with the architecture) and records it again. A failure between
//! the deploy and the record leaves `unknown (…)`, which the next pass repairs the same
//! way.
//!
//! State: `Pending` while the function's state is `Pending` or an update's
//! `LastUpdateStatus` is `InProgress`; `Active` and `Inactive` are available. A function
//! whose creation failed (`Failed`) stays `Pending` with its `stateReason` attribute: it
//! has to be deleted and created again, which the operator does not do by itself.
//!
//! Update changes only what differs: `Put`/`DeleteFunctionConcurrency`, then one
//! `UpdateFunctionConfiguration` with the differing fields, then `UpdateFunctionCode`.
//! Lambda refuses a configuration or code update while the function is `Pending` or
//! `InProgress` (`ResourceConflictException`, classified retryable here): such a refused
//! change is left for the next pass, and the function is reported as it is (`Pending`).
//! So a change of both configuration and code takes two passes on AWS.
//!
//! Observe reads each function it can name (recorded id, else the desired name) with
//! `GetFunction` (configuration and tags) and `GetFunctionConcurrency`; a function found
//! by name is ours only if tagged with the owner. Lookups with neither, and `owned`, walk
//! `ListFunctions` and read the tags (`ListTags`) of the functions named `hipaa-…` (the
//! blueprint's prefix; the operator's IAM policy allows changes to no others). A function
//! whose environment Lambda cannot decrypt with the caller's permissions
//! (`Environment.Error`) is unobservable (an error), never taken for one without
//! variables.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_lambda::types::{
    Architecture, Environment, FunctionCode, FunctionConfiguration, LastUpdateStatus, Runtime,
    State as LambdaState, TracingConfig, TracingMode, VpcConfig,
};

use super::{AwsCloud, match_lookups, missing_tags};
use crate::cloud::{
    CloudError, Desired, Kind, KindSpec, LambdaFunctionSpec, Lookup, Observed, Owned, Owner,
    PUBLIC_ACCESS, S3Object, Spec, State, TAG_CODE, TAG_CODE_SHA256, TAG_NODE, TAG_OWNER,
};

/// Functions the operator names (`hipaa-<namespace>-<name>-<suffix>`).
const NAME_PREFIX: &str = "hipaa-";

/// Lambda's `ResourceConflictException` (an update in progress, a function still
/// `Pending`) and `ResourceInUseException` (a mapping `Creating` or `Updating`) ask to
/// come back later: retryable, waiting for the next pass. The backend's own files
/// translate the conflicts that mean "already exists" before this.
pub(super) fn retry_later(error: CloudError) -> CloudError {
    match error {
        CloudError::Terminal {
            operation,
            code,
            message,
        } if code == "ResourceConflictException" || code == "ResourceInUseException" => {
            CloudError::DependencyViolation {
                operation,
                message: format!("{code}: {message}"),
            }
        }
        other => other,
    }
}

/// `Ok(false)` when a call was refused because the resource is busy (see
/// [`retry_later`]): its change waits for the next pass.
pub(super) fn done_unless_busy<T>(result: Result<T, CloudError>) -> Result<Option<T>, CloudError> {
    match result.map_err(retry_later) {
        Ok(value) => Ok(Some(value)),
        Err(CloudError::DependencyViolation { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn to_map(tags: &BTreeMap<String, String>) -> HashMap<String, String> {
    tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn from_map(tags: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut items = items.to_vec();
    items.sort();
    items
}

/// A function as the engine sees it, from its configuration, tags and concurrency.
fn to_observed(
    config: &FunctionConfiguration,
    tags: BTreeMap<String, String>,
    reserved: i32,
) -> Result<Observed, CloudError> {
    let name = config.function_name().unwrap_or_default().to_string();
    if let Some(error) = config.environment().and_then(|e| e.error()) {
        return Err(CloudError::Terminal {
            operation: "GetFunction".into(),
            code: error.error_code().unwrap_or("EnvironmentError").to_string(),
            message: format!(
                "the environment of {name} cannot be read: {}",
                error.message().unwrap_or_default()
            ),
        });
    }
    let state = config.state().cloned().unwrap_or(LambdaState::Active);
    let updating = config.last_update_status() == Some(&LastUpdateStatus::InProgress);
    let engine_state = match state {
        LambdaState::Active | LambdaState::Inactive if !updating => State::Available,
        _ => State::Pending,
    };
    let sha = config.code_sha256().unwrap_or_default().to_string();
    let vpc = config.vpc_config();
    let mut attributes = BTreeMap::from([
        ("codeSha256".to_string(), sha.clone()),
        ("state".to_string(), state.as_str().to_string()),
    ]);
    if let Some(status) = config.last_update_status() {
        attributes.insert("lastUpdateStatus".into(), status.as_str().to_string());
    }
    if let Some(reason) = config.state_reason() {
        attributes.insert("stateReason".into(), reason.to_string());
    }
    let spec = LambdaFunctionSpec {
        name: name.clone(),
        role_arn: config.role().unwrap_or_default().to_string(),
        runtime: config
            .runtime()
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        handler: config.handler().unwrap_or_default().to_string(),
        architecture: config
            .architectures()
            .first()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| "x86_64".into()),
        memory_mib: config.memory_size().unwrap_or_default(),
        timeout_seconds: config.timeout().unwrap_or_default(),
        reserved_concurrency: reserved,
        subnet_ids: sorted(vpc.map(|v| v.subnet_ids()).unwrap_or_default()),
        security_group_ids: sorted(vpc.map(|v| v.security_group_ids()).unwrap_or_default()),
        environment: config
            .environment()
            .and_then(|e| e.variables())
            .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        kms_key_arn: config.kms_key_arn().unwrap_or_default().to_string(),
        tracing_mode: config
            .tracing_config()
            .and_then(|t| t.mode())
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| "PassThrough".into()),
        code: LambdaFunctionSpec::recorded_code(&tags, &sha),
    };
    Ok(Observed {
        id: name,
        arn: config.function_arn().map(String::from),
        state: engine_state,
        spec: Spec::LambdaFunction(spec),
        tags,
        attributes,
    })
}

/// `GetFunction` + `GetFunctionConcurrency`.
async fn read(cloud: &AwsCloud, name: &str) -> Result<Observed, CloudError> {
    let result = cloud.lambda.get_function().function_name(name).send().await;
    let output = cloud.done("lambda", "GetFunction", result)?;
    let config = output.configuration().ok_or_else(|| CloudError::NotFound {
        operation: "GetFunction".into(),
        message: format!("ResourceNotFoundException: no configuration for {name}"),
    })?;
    let result = cloud
        .lambda
        .get_function_concurrency()
        .function_name(name)
        .send()
        .await;
    let reserved = cloud
        .done("lambda", "GetFunctionConcurrency", result)?
        .reserved_concurrent_executions()
        .unwrap_or(0);
    let mut observed = to_observed(config, from_map(output.tags()), reserved)?;
    if let Some(how) = public_access(cloud, name).await? {
        observed.attributes.insert(PUBLIC_ACCESS.into(), how);
    }
    Ok(observed)
}

/// How the function can be invoked from outside the account, if it can (LAM-3):
/// `GetPolicy` (a statement allowing any principal without a condition) and
/// `GetFunctionUrlConfig` (a URL with `AuthType` `NONE`). Neither existing is the norm.
async fn public_access(cloud: &AwsCloud, name: &str) -> Result<Option<String>, CloudError> {
    let mut ways = Vec::new();
    let result = cloud.lambda.get_policy().function_name(name).send().await;
    match cloud.done("lambda", "GetPolicy", result) {
        Ok(output) => {
            if let Some(sid) = public_statement(output.policy().unwrap_or_default()) {
                ways.push(format!(
                    "resource policy statement {sid} allows any principal"
                ));
            }
        }
        Err(CloudError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let result = cloud
        .lambda
        .get_function_url_config()
        .function_name(name)
        .send()
        .await;
    match cloud.done("lambda", "GetFunctionUrlConfig", result) {
        Ok(output) if output.auth_type().as_str() == "NONE" => {
            ways.push(format!(
                "function URL {} without IAM auth",
                output.function_url()
            ));
        }
        Ok(_) | Err(CloudError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    Ok((!ways.is_empty()).then(|| ways.join("; ")))
}

/// The id of the first Allow statement of a resource policy whose principal is anyone
/// (`*` or `{"AWS": "*"}`) with no condition narrowing it.
fn public_statement(policy: &str) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_str(policy).ok()?;
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(items) => items.clone(),
        serde_json::Value::Null => vec![],
        one => vec![one.clone()],
    };
    statements.iter().find_map(|s| {
        let anyone = s["Principal"] == "*" || s["Principal"]["AWS"] == "*";
        let narrowed = s
            .get("Condition")
            .is_some_and(|c| c.as_object().is_some_and(|c| !c.is_empty()));
        (s["Effect"] == "Allow" && anyone && !narrowed)
            .then(|| s["Sid"].as_str().unwrap_or("(no Sid)").to_string())
    })
}

/// Functions named `hipaa-…` tagged with `owner`, with their tags: `ListFunctions` and
/// one `ListTags` each.
async fn tagged(
    cloud: &AwsCloud,
    owner: &Owner,
) -> Result<Vec<(String, BTreeMap<String, String>)>, CloudError> {
    let owner = owner.to_string();
    let functions = super::paginate(|marker| {
        let call = cloud.lambda.list_functions().set_marker(marker);
        async move {
            let page = cloud.done("lambda", "ListFunctions", call.send().await)?;
            let named: Vec<(String, String)> = page
                .functions()
                .iter()
                .filter_map(|f| {
                    Some((
                        f.function_name()?.to_string(),
                        f.function_arn()?.to_string(),
                    ))
                })
                .filter(|(name, _)| name.starts_with(NAME_PREFIX))
                .collect();
            Ok((named, page.next_marker().map(String::from)))
        }
    })
    .await?;
    let mut out = Vec::new();
    for (name, arn) in functions {
        let result = cloud.lambda.list_tags().resource(&arn).send().await;
        let tags = match cloud.done("lambda", "ListTags", result) {
            Ok(output) => from_map(output.tags()),
            // Deleted since the listing.
            Err(CloudError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        if tags.get(TAG_OWNER) == Some(&owner) {
            out.push((name, tags));
        }
    }
    Ok(out)
}

pub(crate) async fn observe(
    cloud: &AwsCloud,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>, CloudError> {
    let owner_tag = owner.to_string();
    let mut found: Vec<Observed> = Vec::new();
    let mut unnamed = false;
    for lookup in lookups {
        if let Some(id) = lookup.recorded_id.as_deref() {
            match read(cloud, id).await {
                Ok(function) => {
                    if !found.iter().any(|o| o.id == function.id) {
                        found.push(function);
                    }
                    continue;
                }
                Err(CloudError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let desired_name = lookup
            .desired
            .as_ref()
            .and_then(LambdaFunctionSpec::of)
            .map(|f| f.name.as_str())
            .filter(|name| !name.is_empty());
        match desired_name {
            Some(name) if !found.iter().any(|o| o.id == name) => match read(cloud, name).await {
                // Found by name: ours only if tagged with the owner.
                Ok(function) if function.tags.get(TAG_OWNER) == Some(&owner_tag) => {
                    found.push(function)
                }
                Ok(_) | Err(CloudError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            },
            Some(_) => {}
            None => unnamed = true,
        }
    }
    if unnamed {
        for (name, _) in tagged(cloud, owner).await? {
            if !found.iter().any(|o| o.id == name) {
                found.push(read(cloud, &name).await?);
            }
        }
    }
    Ok(match_lookups(lookups, found))
}

fn vpc_config(spec: &LambdaFunctionSpec) -> VpcConfig {
    VpcConfig::builder()
        .set_subnet_ids(Some(spec.subnet_ids.clone()))
        .set_security_group_ids(Some(spec.security_group_ids.clone()))
        .build()
}

fn environment(spec: &LambdaFunctionSpec) -> Environment {
    Environment::builder()
        .set_variables(Some(to_map(&spec.environment)))
        .build()
}

fn tracing(spec: &LambdaFunctionSpec) -> TracingConfig {
    TracingConfig::builder()
        .mode(TracingMode::from(spec.tracing_mode.as_str()))
        .build()
}

/// `TagResource`: the source and the hash just deployed.
async fn record_code(
    cloud: &AwsCloud,
    arn: &str,
    source: &str,
    sha: &str,
) -> Result<(), CloudError> {
    let result = cloud
        .lambda
        .tag_resource()
        .resource(arn)
        .tags(TAG_CODE, source)
        .tags(TAG_CODE_SHA256, sha)
        .send()
        .await;
    cloud.done("lambda", "TagResource", result).map(|_| ())
}

/// `PutFunctionConcurrency`, or `DeleteFunctionConcurrency` for 0.
async fn concurrency(cloud: &AwsCloud, name: &str, reserved: i32) -> Result<(), CloudError> {
    if reserved == 0 {
        let result = cloud
            .lambda
            .delete_function_concurrency()
            .function_name(name)
            .send()
            .await;
        cloud
            .done("lambda", "DeleteFunctionConcurrency", result)
            .map(|_| ())
    } else {
        let result = cloud
            .lambda
            .put_function_concurrency()
            .function_name(name)
            .reserved_concurrent_executions(reserved)
            .send()
            .await;
        cloud
            .done("lambda", "PutFunctionConcurrency", result)
            .map(|_| ())
    }
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &LambdaFunctionSpec,
) -> Result<Observed, CloudError> {
    let source = S3Object::parse("CreateFunction", &spec.code)?;
    let mut tags = to_map(&desired.tags);
    tags.insert(TAG_CODE.to_string(), spec.code.clone());
    let mut call = cloud
        .lambda
        .create_function()
        .function_name(&spec.name)
        .role(&spec.role_arn)
        .runtime(Runtime::from(spec.runtime.as_str()))
        .handler(&spec.handler)
        .architectures(Architecture::from(spec.architecture.as_str()))
        .memory_size(spec.memory_mib)
        .timeout(spec.timeout_seconds)
        .code(
            FunctionCode::builder()
                .s3_bucket(&source.bucket)
                .s3_key(&source.key)
                .set_s3_object_version(source.version.clone())
                .build(),
        )
        .environment(environment(spec))
        .tracing_config(tracing(spec))
        .set_tags(Some(tags));
    if !spec.subnet_ids.is_empty() || !spec.security_group_ids.is_empty() {
        call = call.vpc_config(vpc_config(spec));
    }
    if !spec.kms_key_arn.is_empty() {
        call = call.kms_key_arn(&spec.kms_key_arn);
    }
    let output = match cloud.done("lambda", "CreateFunction", call.send().await) {
        Ok(output) => output,
        // A taken name: refused, never retried as "in progress".
        Err(CloudError::Terminal {
            operation,
            code,
            message,
        }) if code == "ResourceConflictException" => {
            return Err(CloudError::Terminal {
                operation,
                code: "FunctionAlreadyExists".into(),
                message: format!("{code}: {message}"),
            });
        }
        Err(e) => return Err(retry_later(e)),
    };
    let arn = output.function_arn().unwrap_or_default().to_string();
    record_code(
        cloud,
        &arn,
        &spec.code,
        output.code_sha256().unwrap_or_default(),
    )
    .await?;
    if spec.reserved_concurrency != 0 {
        concurrency(cloud, &spec.name, spec.reserved_concurrency)
            .await
            .map_err(retry_later)?;
    }
    read(cloud, &spec.name).await
}

/// Concurrency, then the configuration, then the code (with the architecture), each only
/// when it differs; a configuration or code update refused as busy waits for the next
/// pass (see the module's notes).
pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &LambdaFunctionSpec,
    have: &LambdaFunctionSpec,
) -> Result<Observed, CloudError> {
    desired
        .spec
        .check_immutable("UpdateFunctionConfiguration", &observed.spec)?;
    let name = observed.id.as_str();
    let code_changes = want.code != have.code || want.architecture != have.architecture;
    let source = if code_changes {
        Some(S3Object::parse("UpdateFunctionCode", &want.code)?)
    } else {
        None
    };
    if want.reserved_concurrency != have.reserved_concurrency {
        concurrency(cloud, name, want.reserved_concurrency)
            .await
            .map_err(retry_later)?;
    }
    let mut call = cloud
        .lambda
        .update_function_configuration()
        .function_name(name);
    let mut changed = false;
    if want.role_arn != have.role_arn {
        call = call.role(&want.role_arn);
        changed = true;
    }
    if want.runtime != have.runtime {
        call = call.runtime(Runtime::from(want.runtime.as_str()));
        changed = true;
    }
    if want.handler != have.handler {
        call = call.handler(&want.handler);
        changed = true;
    }
    if want.memory_mib != have.memory_mib {
        call = call.memory_size(want.memory_mib);
        changed = true;
    }
    if want.timeout_seconds != have.timeout_seconds {
        call = call.timeout(want.timeout_seconds);
        changed = true;
    }
    if sorted(&want.subnet_ids) != sorted(&have.subnet_ids)
        || sorted(&want.security_group_ids) != sorted(&have.security_group_ids)
    {
        // Empty lists take the function out of the VPC.
        call = call.vpc_config(vpc_config(want));
        changed = true;
    }
    if want.environment != have.environment {
        call = call.environment(environment(want));
        changed = true;
    }
    if want.kms_key_arn != have.kms_key_arn {
        // An empty ARN goes back to Lambda's own key.
        call = call.kms_key_arn(&want.kms_key_arn);
        changed = true;
    }
    if want.tracing_mode != have.tracing_mode {
        call = call.tracing_config(tracing(want));
        changed = true;
    }
    if changed {
        let result = cloud.done("lambda", "UpdateFunctionConfiguration", call.send().await);
        done_unless_busy(result)?;
    }
    if let Some(source) = source {
        let result = cloud
            .lambda
            .update_function_code()
            .function_name(name)
            .s3_bucket(&source.bucket)
            .s3_key(&source.key)
            .set_s3_object_version(source.version.clone())
            .architectures(Architecture::from(want.architecture.as_str()))
            .send()
            .await;
        if let Some(output) = done_unless_busy(cloud.done("lambda", "UpdateFunctionCode", result))?
        {
            let arn = output
                .function_arn()
                .or(observed.arn.as_deref())
                .unwrap_or_default()
                .to_string();
            record_code(
                cloud,
                &arn,
                &want.code,
                output.code_sha256().unwrap_or_default(),
            )
            .await?;
        }
    }
    let missing = missing_tags(&desired.tags, &observed.tags);
    if !missing.is_empty()
        && let Some(arn) = observed.arn.as_deref()
    {
        let result = cloud
            .lambda
            .tag_resource()
            .resource(arn)
            .set_tags(Some(to_map(&missing)))
            .send()
            .await;
        cloud.done("lambda", "TagResource", result)?;
    }
    read(cloud, name).await
}

pub(crate) async fn delete(cloud: &AwsCloud, name: &str) -> Result<(), CloudError> {
    let result = cloud
        .lambda
        .delete_function()
        .function_name(name)
        .send()
        .await;
    cloud
        .done("lambda", "DeleteFunction", result)
        .map(|_| ())
        .map_err(retry_later)
}

pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    Ok(tagged(cloud, owner)
        .await?
        .into_iter()
        .map(|(name, tags)| Owned {
            kind: Kind::LambdaFunction,
            id: name,
            node: tags.get(TAG_NODE).cloned().unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_for_anyone_without_a_condition_is_public() {
        let policy =
            |statement: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#);
        // Each row: a resource policy statement, and whether it makes the function public.
        let rows = [
            (
                r#"{"Sid":"open","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"*"}"#,
                Some("open"),
            ),
            (
                r#"{"Sid":"aws","Effect":"Allow","Principal":{"AWS":"*"},"Action":"lambda:InvokeFunction","Resource":"*"}"#,
                Some("aws"),
            ),
            (
                r#"{"Sid":"sns","Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"*"}"#,
                None,
            ),
            (
                r#"{"Sid":"scoped","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"111122223333"}}}"#,
                None,
            ),
            (
                r#"{"Sid":"deny","Effect":"Deny","Principal":"*","Action":"lambda:InvokeFunction","Resource":"*"}"#,
                None,
            ),
        ];
        for (statement, want) in rows {
            assert_eq!(
                public_statement(&policy(statement)).as_deref(),
                want,
                "{statement}"
            );
        }
    }

    #[test]
    fn busy_answers_wait_for_the_next_pass_and_others_do_not() {
        let terminal = |code: &str| CloudError::Terminal {
            operation: "UpdateFunctionConfiguration".into(),
            code: code.into(),
            message: "m".into(),
        };
        // (code, retryable after translation): each row one answer.
        let rows = [
            ("ResourceConflictException", true),
            ("ResourceInUseException", true),
            ("InvalidParameterValueException", false),
            ("AccessDeniedException", false),
        ];
        for (code, retryable) in rows {
            assert_eq!(retry_later(terminal(code)).retryable(), retryable, "{code}");
            let busy = done_unless_busy::<()>(Err(terminal(code)));
            assert_eq!(busy.is_ok(), retryable, "{code}: {busy:?}");
        }
    }
}
