//! Packet capture into a pcap file, built in (DPDK's pdump needs multi-process EAL, which rvsd
//! does not run; docs/architecture.md, "Packet capture").
//!
//! The workers hold a [`Tap`] while a capture is on (`None` otherwise: one check per burst). A
//! matching frame's first `snaplen` bytes are copied with a timestamp into one preallocated
//! [`ArrayQueue`] of fixed-size records; a full queue counts the frame as dropped and the worker
//! goes on. The control side ([`Capture`]) drains the queue into the file with `pcap-file`, stops
//! at the bounds and has the workers drop the tap.
use std::fs::File;
use std::io::BufWriter;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam::queue::ArrayQueue;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use rvs_control::capture::{Bounds, CaptureStatus, Direction, Matcher, MAX_SNAPLEN};

/// Records the hand-over queue holds (about 2 KiB each: 4 MiB in all, allocated at capture start).
pub const QUEUE_RECORDS: usize = 2048;
/// How often the writer drains the queue.
const DRAIN_EVERY: Duration = Duration::from_millis(5);

/// One captured frame.
pub struct Record {
    /// Nanoseconds since the Unix epoch.
    ts_ns: u64,
    /// The frame's length on the wire.
    orig_len: u32,
    /// Bytes of `data` kept (at most the snaplen).
    len: u16,
    data: [u8; MAX_SNAPLEN as usize],
}

/// What a worker holds while a capture is on.
#[derive(Clone)]
pub struct Tap {
    /// The port's index in the config's port order.
    pub port: usize,
    pub rx: bool,
    pub tx: bool,
    pub matcher: Matcher,
    pub snaplen: usize,
    queue: Arc<ArrayQueue<Box<Record>>>,
    /// Spare records: the writer returns drained ones here, so no worker allocates.
    free: Arc<ArrayQueue<Box<Record>>>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap").field("port", &self.port).field("rx", &self.rx).field("tx", &self.tx).finish()
    }
}

/// Nanoseconds since the epoch, read once per burst while a tap is set.
pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

impl Tap {
    /// Offers one frame: copied when it matches, counted as dropped when no record is free.
    #[inline]
    pub fn offer(&self, frame: &[u8], ts_ns: u64) {
        if !self.matcher.matches(frame) {
            return;
        }
        let Some(mut r) = self.free.pop() else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let n = frame.len().min(self.snaplen);
        r.data[..n].copy_from_slice(&frame[..n]);
        r.len = n as u16;
        r.orig_len = frame.len() as u32;
        r.ts_ns = ts_ns;
        if self.queue.push(r).is_err() {
            // Cannot happen: the two queues share QUEUE_RECORDS records. Counted all the same.
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
struct Progress {
    packets: AtomicU64,
    bytes: AtomicU64,
    running: AtomicBool,
    reason: Mutex<Option<String>>,
}

/// One capture: its tap (for the workers) and the writer thread.
pub struct Capture {
    pub tap: Tap,
    port_name: String,
    direction: Direction,
    file: String,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    writer: Option<JoinHandle<()>>,
}

impl Capture {
    /// Creates the file (its pcap header written) and starts the writer; `untap` runs when the
    /// capture finishes by itself (bounds reached, write error), to take the tap off the workers.
    pub fn start(
        port: usize,
        port_name: &str,
        direction: Direction,
        matcher: Matcher,
        bounds: Bounds,
        path: &str,
        untap: impl FnOnce() + Send + 'static,
    ) -> Result<Capture, String> {
        let file = File::create(path).map_err(|e| format!("capture: cannot create {path}: {e}"))?;
        let header =
            PcapHeader { snaplen: bounds.snaplen, datalink: DataLink::ETHERNET, ..PcapHeader::default() };
        let mut writer = PcapWriter::with_header(BufWriter::new(file), header)
            .map_err(|e| format!("capture: cannot write {path}: {e}"))?;
        let queue = Arc::new(ArrayQueue::new(QUEUE_RECORDS));
        let free = Arc::new(ArrayQueue::new(QUEUE_RECORDS));
        for _ in 0..QUEUE_RECORDS {
            let r = Box::new(Record { ts_ns: 0, orig_len: 0, len: 0, data: [0; MAX_SNAPLEN as usize] });
            let _ = free.push(r);
        }
        let tap = Tap {
            port,
            rx: direction.rx(),
            tx: direction.tx(),
            matcher,
            snaplen: bounds.snaplen as usize,
            queue: queue.clone(),
            free: free.clone(),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        let progress = Arc::new(Progress { running: AtomicBool::new(true), ..Progress::default() });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (progress, stop) = (progress.clone(), stop.clone());
            std::thread::Builder::new()
                .name("rvs-capture".into())
                .spawn(move || {
                    let reason = loop {
                        let stopping = stop.load(Ordering::Acquire);
                        let mut done = None;
                        while let Some(r) = queue.pop() {
                            if done.is_none() {
                                done = write(&mut writer, &r, &bounds, &progress);
                            }
                            let _ = free.push(r);
                        }
                        if let Some(why) = done {
                            break why;
                        }
                        if stopping {
                            break "stopped".to_owned();
                        }
                        std::thread::sleep(DRAIN_EVERY);
                    };
                    let reason = match writer.into_writer().into_inner() {
                        Ok(_) => reason,
                        Err(e) => format!("write error: {e}"),
                    };
                    tracing::info!(
                        packets = progress.packets.load(Ordering::Relaxed),
                        %reason,
                        "capture finished"
                    );
                    // The tap comes off before the capture reads as finished: a next capture
                    // cannot start in between and lose its tap to this one's removal.
                    if reason != "stopped" {
                        untap();
                    }
                    *progress.reason.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
                    progress.running.store(false, Ordering::Release);
                })
                .map_err(|e| format!("capture: cannot start the writer thread: {e}"))?
        };
        Ok(Capture {
            tap,
            port_name: port_name.to_owned(),
            direction,
            file: path.to_owned(),
            progress,
            stop,
            writer: Some(thread),
        })
    }

    pub fn running(&self) -> bool {
        self.progress.running.load(Ordering::Acquire)
    }

    /// Stops the writer (after it wrote what the queue holds) and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.writer.take() {
            let _ = t.join();
        }
    }

    pub fn status(&self) -> CaptureStatus {
        let p = &self.progress;
        CaptureStatus {
            state: if self.running() { "running" } else { "finished" }.into(),
            port: self.port_name.clone(),
            direction: self.direction,
            file: self.file.clone(),
            packets: p.packets.load(Ordering::Relaxed),
            bytes: p.bytes.load(Ordering::Relaxed),
            dropped: self.tap.dropped.load(Ordering::Relaxed),
            reason: p.reason.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// Writes one record unless a bound is reached; returns why the capture ends, if it does.
fn write(w: &mut PcapWriter<BufWriter<File>>, r: &Record, b: &Bounds, p: &Progress) -> Option<String> {
    let (packets, bytes) = (p.packets.load(Ordering::Relaxed), p.bytes.load(Ordering::Relaxed));
    if packets >= b.max_packets {
        return Some("max_packets".into());
    }
    if bytes + r.len as u64 > b.max_bytes {
        return Some("max_bytes".into());
    }
    let ts = Duration::from_nanos(r.ts_ns);
    let pkt = PcapPacket::new(ts, r.orig_len, &r.data[..r.len as usize]);
    if let Err(e) = w.write_packet(&pkt) {
        return Some(format!("write error: {e}"));
    }
    p.packets.store(packets + 1, Ordering::Relaxed);
    p.bytes.store(bytes + r.len as u64, Ordering::Relaxed);
    (packets + 1 >= b.max_packets).then(|| "max_packets".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;

    fn frame(len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[12] = 0x08;
        f[14] = 0x45;
        f[23] = 6;
        f[26..30].copy_from_slice(&[198, 18, 1, 100]);
        f[30..34].copy_from_slice(&[198, 18, 1, 11]);
        f
    }

    fn path(name: &str) -> String {
        std::env::temp_dir()
            .join(format!("rvs-capture-{}-{name}.pcap", std::process::id()))
            .display()
            .to_string()
    }

    fn wait(c: &Capture) {
        for _ in 0..400 {
            if !c.running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the capture did not finish");
    }

    fn read(p: &str) -> (u32, Vec<(u32, usize)>) {
        let mut r = PcapReader::new(File::open(p).unwrap()).unwrap();
        let snaplen = r.header().snaplen;
        let mut v = Vec::new();
        // Raw records: pcap-file 2.0's `next_packet` refuses orig_len > snaplen, which is what a
        // snaplen shorter than the frame gives and what tcpdump and Wireshark read as "truncated".
        while let Some(pkt) = r.next_raw_packet() {
            let pkt = pkt.unwrap();
            assert_eq!(pkt.incl_len as usize, pkt.data.len());
            v.push((pkt.orig_len, pkt.data.len()));
        }
        (snaplen, v)
    }

    fn start(name: &str, matcher: Matcher, b: Bounds) -> (Capture, String, Arc<AtomicBool>) {
        let p = path(name);
        let untapped = Arc::new(AtomicBool::new(false));
        let u = untapped.clone();
        let c = Capture::start(0, "server", Direction::Both, matcher, b, &p, move || {
            u.store(true, Ordering::SeqCst)
        })
        .unwrap();
        (c, p, untapped)
    }

    #[test]
    fn stops_at_max_packets_with_snaplen_and_removes_the_tap() {
        let b = Bounds { max_packets: 5, max_bytes: 1 << 20, snaplen: 60 };
        let (c, p, untapped) = start("packets", Matcher::default(), b);
        for _ in 0..8 {
            c.tap.offer(&frame(100), now_ns());
        }
        wait(&c);
        let s = c.status();
        assert_eq!((s.packets, s.bytes, s.dropped, s.reason.as_deref()), (5, 300, 0, Some("max_packets")));
        assert!(untapped.load(Ordering::SeqCst), "the workers are told to drop the tap");
        let (snaplen, pkts) = read(&p);
        assert_eq!(snaplen, 60);
        assert_eq!(pkts, vec![(100, 60); 5]);
        let _ = std::fs::remove_file(p);
    }

    #[test]
    fn stops_before_max_bytes_and_filters() {
        let b = Bounds { max_packets: 100, max_bytes: 250, snaplen: 2048 };
        let m = Matcher { host: Some([198, 18, 1, 11]), port: None, proto: Some(6) };
        let (c, p, _) = start("bytes", m, b);
        let mut other = frame(100);
        other[30] = 10;
        c.tap.offer(&other, now_ns());
        for _ in 0..4 {
            c.tap.offer(&frame(100), now_ns());
        }
        wait(&c);
        let s = c.status();
        assert_eq!((s.packets, s.bytes, s.reason.as_deref()), (2, 200, Some("max_bytes")));
        assert_eq!(read(&p).1, vec![(100, 100); 2], "the other host's frame is not captured");
        let _ = std::fs::remove_file(p);
    }

    #[test]
    fn a_full_queue_counts_drops_and_never_blocks() {
        let b = Bounds { max_packets: 10_000_000, max_bytes: 1 << 30, snaplen: 64 };
        let (mut c, p, untapped) = start("full", Matcher::default(), b);
        // Offer until the queue has overflowed at least once. A fixed count is not enough: the
        // writer drains every 5 ms, and when this thread is descheduled long enough it keeps up.
        // Bounded: the writer cannot drain 1024 queues' worth while this loop runs unpreempted.
        let mut n = 0usize;
        while n < QUEUE_RECORDS * 1024 && (n < QUEUE_RECORDS * 16 || c.status().dropped == 0) {
            for _ in 0..256 {
                c.tap.offer(&frame(64), now_ns());
            }
            n += 256;
        }
        c.stop();
        let s = c.status();
        assert!(s.dropped > 0, "{s:?}");
        assert_eq!(s.packets + s.dropped, n as u64, "{s:?}");
        assert_eq!(s.reason.as_deref(), Some("stopped"));
        assert!(!untapped.load(Ordering::SeqCst), "capture_stop removes the tap itself");
        assert_eq!(read(&p).1.len() as u64, s.packets);
        let _ = std::fs::remove_file(p);
    }
}
