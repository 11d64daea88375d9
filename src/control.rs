//! The daemon's control thread: the API server wired to the daemon's state.
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

use rvs_control::api::{Reply, Request, Response, WorkerStats, API_VERSION};
use rvs_control::config::ControlConfig;
use rvs_control::server;
use rvs_dataplane::stats::Stats;

#[derive(Debug)]
pub struct Control {
    thread: JoinHandle<()>,
    path: String,
}

impl Control {
    pub fn join(self) {
        let _ = self.thread.join();
        let _ = std::fs::remove_file(&self.path);
    }
}

pub fn spawn(cfg: &ControlConfig, stats: Vec<Arc<Stats>>, stop: Arc<AtomicBool>) -> std::io::Result<Control> {
    let listener = server::bind(&cfg.socket)?;
    let handler = Arc::new(move |req: Request| -> Response {
        match req {
            Request::Version => Response::ok(Reply::Version {
                api: API_VERSION,
                daemon: env!("CARGO_PKG_VERSION").to_owned(),
            }),
            Request::Stats => Response::ok(Reply::Stats {
                workers: stats
                    .iter()
                    .enumerate()
                    .map(|(i, s)| WorkerStats { worker: i as u16, counters: s.nonzero() })
                    .collect(),
            }),
        }
    });
    let thread = std::thread::Builder::new()
        .name("rvs-control".into())
        .spawn(move || server::serve(listener, handler, stop))?;
    tracing::info!(socket = %cfg.socket, "control API listening");
    Ok(Control { thread, path: cfg.socket.clone() })
}
