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
                    .unwrap_or_else(|| "?".into())
            }
        };
        *counts.entry((service, operation)).or_default() += 1;
    }
    counts
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
