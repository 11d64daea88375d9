//! API types: newline-delimited JSON over the Unix socket, one request object per line, one
//! response object per line. Usable by a person with `socat - UNIX-CONNECT:/run/rvs/rvsd.sock`.
//!
//! Every request names its `op`; every response carries `ok` and either the result or `error`.
//! See docs/api.md for each operation with an example.
use serde::{Deserialize, Serialize};

/// The API version this build speaks; reported by `version`.
pub const API_VERSION: u32 = 1;

/// Largest request line accepted; longer lines get an error and the connection is closed.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Daemon and API version.
    Version,
    /// Per-worker counters (events and drops by reason).
    Stats,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStats {
    pub worker: u16,
    /// Non-zero counters by name; drops are named `drop.<reason>`.
    pub counters: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    Version { api: u32, daemon: String },
    Stats { workers: Vec<WorkerStats> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default, flatten)]
    pub reply: Option<Reply>,
}

impl Response {
    pub fn ok(reply: Reply) -> Response {
        Response { ok: true, error: None, reply: Some(reply) }
    }

    pub fn error(msg: impl Into<String>) -> Response {
        Response { ok: false, error: Some(msg.into()), reply: None }
    }

    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"ok":false,"error":"internal: unserialisable response"}"#.into());
        s.push('\n');
        s
    }
}

/// Parses one request line; the error is a message for the client.
pub fn parse_request(line: &str) -> Result<Request, String> {
    serde_json::from_str(line.trim()).map_err(|e| format!("bad request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_errors_are_messages() {
        assert_eq!(parse_request(r#"{"op":"stats"}"#), Ok(Request::Stats));
        assert_eq!(parse_request("{\"op\":\"version\"}\n"), Ok(Request::Version));
        assert!(parse_request(r#"{"op":"explode"}"#).unwrap_err().contains("bad request"));
        assert!(parse_request("{not json").is_err());
        assert!(parse_request("").is_err());
    }

    #[test]
    fn responses_are_single_lines() {
        let r = Response::ok(Reply::Version { api: API_VERSION, daemon: "0.1.0".into() });
        let line = r.to_line();
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.contains(r#""ok":true"#) && line.contains(r#""api":1"#));
        assert!(Response::error("nope").to_line().contains(r#""error":"nope""#));
    }
}
