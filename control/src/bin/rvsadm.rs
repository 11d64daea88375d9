//! rvsadm: ipvsadm for rvs. The logic lives in `rvs_control::adm`; this is the socket and stdio.
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

use rvs_control::adm::{self, AdmError, Transport};
use rvs_control::api::Request;
use serde_json::Value;

/// How long one answer may take (a restore is applied by every worker before rvsd answers).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Connects on the first request, so bad input never touches the socket.
struct Socket {
    path: String,
    conn: Option<(UnixStream, BufReader<UnixStream>)>,
}

impl Socket {
    fn connect(&mut self) -> Result<&mut (UnixStream, BufReader<UnixStream>), AdmError> {
        if self.conn.is_none() {
            let err = |e: std::io::Error| AdmError::Io(format!("cannot connect to {}: {e}", self.path));
            let s = UnixStream::connect(&self.path).map_err(err)?;
            s.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(err)?;
            s.set_write_timeout(Some(REPLY_TIMEOUT)).map_err(err)?;
            let r = BufReader::new(s.try_clone().map_err(err)?);
            self.conn = Some((s, r));
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }
}

impl Transport for Socket {
    fn call(&mut self, req: &Request) -> Result<Value, AdmError> {
        let path = self.path.clone();
        let io = move |what: &str, e: std::io::Error| AdmError::Io(format!("{what} {path}: {e}"));
        let mut line =
            serde_json::to_string(req).map_err(|e| AdmError::Io(format!("cannot encode request: {e}")))?;
        line.push('\n');
        let (w, r) = self.connect()?;
        w.write_all(line.as_bytes()).map_err(|e| io("cannot write to", e))?;
        let mut reply = String::new();
        let n = r.read_line(&mut reply).map_err(|e| io("no answer from", e))?;
        if n == 0 {
            return Err(AdmError::Io(format!("rvsd closed the connection on {}", self.path)));
        }
        serde_json::from_str(&reply).map_err(|e| AdmError::Daemon(format!("unexpected reply from rvsd: {e}")))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env_socket = std::env::var(adm::SOCKET_ENV).ok();
    let result = adm::parse_args(&args, env_socket.as_deref()).and_then(|inv| {
        let mut sock = Socket { path: inv.socket.clone(), conn: None };
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        adm::execute(&inv, &mut sock, &mut std::io::stdin().lock(), &mut out)?;
        out.flush().map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                AdmError::Closed
            } else {
                AdmError::Io(format!("cannot write output: {e}"))
            }
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(AdmError::Closed) => ExitCode::SUCCESS,
        // ipvsadm's own failures print bare (its `fail()` and `ipvs_strerror` lines): scripts
        // match on them. rvsadm's own trouble (socket, daemon replies) says who is talking.
        Err(e @ (AdmError::Usage(_) | AdmError::Ipvs { .. })) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code() as u8)
        }
        Err(e) => {
            eprintln!("rvsadm: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
