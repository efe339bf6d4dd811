//! moto's server for the tests: the shared one `.ci/with-moto` starts (`MOTO_ENDPOINT`),
//! a private one a test starts for itself (when it reads moto's request log, which other
//! tests running at the same time would add to), and the request log read as
//! (service, operation) counts.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

/// The shared moto server.
pub fn endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").expect(
        "moto is required: run the tests through .ci/with-moto, which starts moto's server and sets MOTO_ENDPOINT",
    )
}

/// A plain HTTP request to a moto server's control API (`/moto-api/...`).
pub fn api(endpoint: &str, method: &str, path: &str) -> String {
    let host = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).expect("moto answers");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    // The body may be chunked.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        return out;
    }
    body.to_string()
}

/// A plain HTTP/1.1 request to a moto server, as `service` (moto routes a request by the
/// service its SigV4 credential scope names; it does not check signatures): (status,
/// body). For fixtures the operator has no kind for (an S3 object, an SQS queue).
pub fn request(
    endpoint: &str,
    service: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let host = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).expect("moto answers");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// (service, operation) -> count, from a recording (one JSON request per line).
pub fn recorded_counts(recording: &str) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for line in recording.lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value = serde_json::from_str(line).expect("a recorded request");
        let headers = &entry["headers"];
        let auth = headers["Authorization"].as_str().unwrap_or_default();
        // Credential=KEY/DATE/REGION/SERVICE/aws4_request
        let service = auth.split('/').nth(3).unwrap_or("?").to_string();
        let operation = match headers["X-Amz-Target"].as_str() {
            Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
            None => {
                let raw = entry["body"].as_str().unwrap_or_default();
                // moto base64-encodes bodies it does not store as text.
                let body = if entry["body_encoded"] == serde_json::Value::Bool(true) {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD
                        .decode(raw)
                        .unwrap_or_default()
                } else {
                    raw.as_bytes().to_vec()
                };
                form_urlencoded::parse(&body)
                    .find(|(k, _)| k == "Action")
                    .map(|(_, v)| v.into_owned())
                    .or_else(|| {
                        rest_operation(
                            &service,
                            entry["method"].as_str().unwrap_or_default(),
                            entry["url"].as_str().unwrap_or_default(),
                        )
                        .map(String::from)
                    })
                    .unwrap_or_else(|| "?".into())
            }
        };
        *counts.entry((service, operation)).or_default() += 1;
    }
    counts
}

/// The operation of a REST request, which names it in neither a header nor the body
/// (Lambda's API), from its method and path (the API version first, `{…}` one segment of
/// a name, ARN or UUID).
fn rest_operation(service: &str, method: &str, url: &str) -> Option<&'static str> {
    const LAMBDA: &[(&str, &str, &str)] = &[
        ("GET", "functions", "ListFunctions"),
        ("POST", "functions", "CreateFunction"),
        ("GET", "functions/{}", "GetFunction"),
        ("DELETE", "functions/{}", "DeleteFunction"),
        (
            "PUT",
            "functions/{}/configuration",
            "UpdateFunctionConfiguration",
        ),
        ("PUT", "functions/{}/code", "UpdateFunctionCode"),
        ("GET", "functions/{}/policy", "GetPolicy"),
        ("GET", "functions/{}/url", "GetFunctionUrlConfig"),
        ("GET", "functions/{}/concurrency", "GetFunctionConcurrency"),
        ("PUT", "functions/{}/concurrency", "PutFunctionConcurrency"),
        (
            "DELETE",
            "functions/{}/concurrency",
            "DeleteFunctionConcurrency",
        ),
        ("GET", "tags/{}", "ListTags"),
        ("POST", "tags/{}", "TagResource"),
        ("GET", "event-source-mappings", "ListEventSourceMappings"),
        ("POST", "event-source-mappings", "CreateEventSourceMapping"),
        ("GET", "event-source-mappings/{}", "GetEventSourceMapping"),
        (
            "PUT",
            "event-source-mappings/{}",
            "UpdateEventSourceMapping",
        ),
        (
            "DELETE",
            "event-source-mappings/{}",
            "DeleteEventSourceMapping",
        ),
    ];
    let routes = match service {
        "lambda" => LAMBDA,
        _ => return None,
    };
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |at| &rest[at..]),
        None => url,
    };
    let path = path.split('?').next().unwrap_or_default();
    // Without the API version (`/2015-03-31/…`).
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).skip(1).collect();
    routes.iter().find_map(|(m, pattern, operation)| {
        let pattern: Vec<&str> = pattern.split('/').collect();
        let matches = *m == method
            && pattern.len() == segments.len()
            && pattern
                .iter()
                .zip(&segments)
                .all(|(p, s)| *p == "{}" || p == s);
        matches.then_some(*operation)
    })
}

/// A moto server of one test's own, recording every request it serves.
pub struct PrivateMoto {
    child: std::process::Child,
    pub endpoint: String,
    recording: PathBuf,
}

impl PrivateMoto {
    /// Starts `MOTO_SERVER` (the binary `.ci/with-moto` installs) on a free port.
    pub fn start() -> PrivateMoto {
        let server = std::env::var("MOTO_SERVER")
            .expect("MOTO_SERVER: run the tests through .ci/with-moto, which installs moto");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let recording =
            std::env::temp_dir().join(format!("moto-recording-{}", uuid::Uuid::new_v4().simple()));
        let child = std::process::Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "moto_server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        PrivateMoto {
            child,
            endpoint,
            recording,
        }
    }

    pub fn start_recording(&self) {
        api(&self.endpoint, "POST", "/moto-api/recorder/start-recording");
    }

    pub fn stop_recording(&self) {
        api(&self.endpoint, "POST", "/moto-api/recorder/stop-recording");
    }

    /// What was recorded so far, as counts.
    pub fn recorded(&self) -> BTreeMap<(String, String), u64> {
        recorded_counts(&std::fs::read_to_string(&self.recording).unwrap_or_default())
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.recording);
    }
}

#[test]
fn lambdas_rest_operations_are_named_from_method_and_path() {
    // (method, url, operation): each row one route; moto records the full URL.
    let rows = [
        (
            "GET",
            "http://127.0.0.1:5000/2015-03-31/functions/",
            Some("ListFunctions"),
        ),
        (
            "GET",
            "/2015-03-31/functions/hipaa-a-poller",
            Some("GetFunction"),
        ),
        (
            "PUT",
            "/2015-03-31/functions/hipaa-a-poller/configuration",
            Some("UpdateFunctionConfiguration"),
        ),
        (
            "GET",
            "/2019-09-30/functions/hipaa-a-poller/concurrency",
            Some("GetFunctionConcurrency"),
        ),
        (
            "POST",
            "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Ahipaa-a",
            Some("TagResource"),
        ),
        (
            "GET",
            "/2015-03-31/event-source-mappings/?FunctionName=hipaa-a&EventSourceArn=x",
            Some("ListEventSourceMappings"),
        ),
        (
            "DELETE",
            "/2015-03-31/event-source-mappings/6d9f1c2e-0000-4000-8000-000000000000",
            Some("DeleteEventSourceMapping"),
        ),
        (
            "GET",
            "/2015-03-31/functions/hipaa-a-poller/policy",
            Some("GetPolicy"),
        ),
        (
            "GET",
            "/2021-10-31/functions/hipaa-a-poller/url",
            Some("GetFunctionUrlConfig"),
        ),
        ("PATCH", "/2015-03-31/functions/x", None),
    ];
    for (method, url, operation) in rows {
        assert_eq!(
            rest_operation("lambda", method, url),
            operation,
            "{method} {url}"
        );
    }
    assert_eq!(rest_operation("ec2", "GET", "/2015-03-31/functions"), None);
}

/// (service, operation) -> count, from the shared moto server's request log.
pub fn shared_recorded_counts() -> BTreeMap<(String, String), u64> {
    recorded_counts(&api(
        &endpoint(),
        "GET",
        "/moto-api/recorder/download-recording",
    ))
}

/// The operator's call counts as (service, operation) -> count, outcomes summed.
pub fn operator_counts(
    calls: &hipaa_operator::cloud::CallCounts,
) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for ((service, operation, _), n) in calls {
        *counts
            .entry((service.clone(), operation.clone()))
            .or_default() += n;
    }
    counts
}

/// How many of `counts` change something (everything but Describe/List/Get).
pub fn mutating(counts: &BTreeMap<(String, String), u64>) -> u64 {
    counts
        .iter()
        .filter(|((_, op), _)| hipaa_operator::cloud::audit::is_mutating(op))
        .map(|(_, n)| n)
        .sum()
}

/// Prints `counts` under `title`, one operation a line (the figures in BENCHMARKS.md).
pub fn print_counts(title: &str, counts: &BTreeMap<(String, String), u64>) {
    println!(
        "{title}: {} calls, {} mutating",
        counts.values().sum::<u64>(),
        mutating(counts)
    );
    for ((service, operation), n) in counts {
        println!("  {service}:{operation:<36} {n:>4}");
    }
}
