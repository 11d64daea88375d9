//! The rvsadm binary end to end against the real socket server with a scripted handler.
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use rvs_control::api::{ErrorCode, RealInfo, Refusal, Reply, Request, Response, ServiceInfo};
use rvs_control::server;
use rvs_control::{Forward, Proto, Sched};

fn rvsadm(socket: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rvsadm"))
        .args(args)
        .env("RVSADM_SOCKET", socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn cli_against_a_live_socket() {
    let dir = std::env::temp_dir().join(format!("rvsadm-cli-{}", std::process::id()));
    let sock = dir.join("rvsd.sock").to_string_lossy().into_owned();
    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let listener = server::bind(&sock, None).unwrap();
    let log = seen.clone();
    let handler = Arc::new(move |req: Request| {
        log.lock().unwrap().push(req.clone());
        match req {
            Request::ListServices => Response::ok(Reply::Services {
                services: vec![ServiceInfo {
                    proto: Proto::Tcp,
                    vip: "198.18.0.100:80".into(),
                    sched: Sched::Rr,
                    persistence: Some(300),
                    toa: false,
                    synproxy: false,
                    proxy_protocol: rvs_control::ProxyProtocol::Off,
                    inhibit_on_failure: false,
                    laddrs: vec!["198.18.1.100".into()],
                    reals: vec![RealInfo {
                        addr: "198.18.1.11:80".into(),
                        weight: 1,
                        forward: Forward::Fullnat,
                        u_threshold: 0,
                        l_threshold: 0,
                        active_conns: 2,
                        inactive_conns: 1,
                        health: "up".into(),
                    }],
                }],
            }),
            Request::DeleteService { .. } => Response::refused(Refusal::new(
                ErrorCode::NoSuchService,
                "no such service: tcp 198.18.0.1:80",
            )),
            Request::AddReal { .. } => Response::error("services[0].reals[1].forward: not supported"),
            Request::GetTimeouts => Response::ok(Reply::Timeouts { tcp: 900, tcpfin: 120, udp: 300 }),
            Request::Save => Response::ok(Reply::Config { config: String::new() }),
            Request::SyncStart { .. } | Request::SyncStatus => Response::ok(Reply::Sync {
                daemons: vec![rvs_control::api::SyncDaemonInfo {
                    role: rvs_control::api::SyncRoleName::Master,
                    interface: "eth0".into(),
                    syncid: 3,
                    maxlen: 1472,
                    group: "224.0.0.81".into(),
                    port: 8848,
                    ttl: 1,
                    peer: None,
                }],
                counters: vec![],
            }),
            Request::SyncStop { .. } => Response::error("no backup sync daemon is running"),
            _ => Response::ok(Reply::Applied { epoch: 1 }),
        }
    });
    let (l, s) = (listener, stop.clone());
    let t = std::thread::spawn(move || server::serve(l, handler, s));

    let o = rvsadm(&sock, &["-Ln"], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "IP Virtual Server version 1.2.1 (size=4096)\n\
         Prot LocalAddress:Port Scheduler Flags\n\
         \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  198.18.0.100:80 rr persistent 300\n\
         \x20 -> 198.18.1.11:80               FullNat 1      2          1         \n"
    );

    // -S | -R round trip through the socket
    let saved = rvsadm(&sock, &["-S", "-n"], "");
    assert!(saved.status.success());
    let o = rvsadm(&sock, &["-R"], &text(&saved.stdout));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(matches!(seen.lock().unwrap().last(), Some(Request::Restore { .. })));

    // refused changes: ipvsadm's ipvs_strerror text, bare, exit 255 (process_options returns -1)
    let o = rvsadm(&sock, &["-D", "-t", "198.18.0.1:80"], "");
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(text(&o.stderr), "No such service\n");
    // a refusal ipvsadm has no text for: rvsd's one line
    let o = rvsadm(&sock, &["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.12"], "");
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(text(&o.stderr), "services[0].reals[1].forward: not supported\n");
    // -L of a missing service: list_service's exit(1)
    let o = rvsadm(&sock, &["-Ln", "-t", "198.18.0.9:80"], "");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stderr), "No such service\n");
    // the sync daemon: --start-daemon prints nothing, -L --daemon is list_daemon's line, a refused
    // --stop-daemon is rvsd's one line
    let o = rvsadm(&sock, &["--start-daemon", "master", "--mcast-interface", "eth0", "--syncid", "3"], "");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "");
    assert!(matches!(
        seen.lock().unwrap().last(),
        Some(Request::SyncStart { interface: Some(i), syncid: Some(3), .. }) if i == "eth0"
    ));
    let o = rvsadm(&sock, &["-L", "--daemon"], "");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        text(&o.stdout),
        "master sync daemon (mcast=eth0, syncid=3, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
    );
    // A refused daemon command: the reason alone and exit 255, as ipvsadm prints its strerror.
    let o = rvsadm(&sock, &["--stop-daemon", "backup"], "");
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(text(&o.stderr), "no backup sync daemon is running\n");

    // bad input: one line, exit 2, nothing sent
    let before = seen.lock().unwrap().len();
    let o = rvsadm(&sock, &["-a", "-t", "198.18.0.100:80", "-r", "198.18.1.11", "-w", "70000"], "");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(text(&o.stderr).lines().count(), 1);
    assert!(text(&o.stderr).starts_with("illegal weight specified"));
    assert_eq!(seen.lock().unwrap().len(), before);

    // no daemon
    let gone = dir.join("nothing.sock").to_string_lossy().into_owned();
    let o = rvsadm(&gone, &["-Ln"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).starts_with(&format!("rvsadm: cannot connect to {gone}: ")),
        "{}",
        text(&o.stderr)
    );

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    t.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
