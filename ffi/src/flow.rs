//! NIC flow rules (rte_flow) that steer a LIP's replies to the worker owning the local port, from
//! the dataplane's plan ([`rvs_dataplane::steer::FlowRuleSpec`]).
//!
//! Invariants:
//! - A spec becomes exactly: attr {ingress, group 0, priority 0}; pattern ETH (any) / IPV4 or IPV6
//!   (dst address, full mask; the spec's family) / TCP or UDP (dst port spec + mask, other fields
//!   unmasked) / END; actions QUEUE (the spec's queue) / END. Spec values are big-endian, as on the
//!   wire. Both families share one rule type ([`RteRule<A>`], [`FlowHandle<A>`], IPv4 by default):
//!   only the L3 item differs.
//! - [`RteRule`] owns every structure its pointers refer to, in one heap block that never moves, so
//!   the arrays handed to DPDK are valid for as long as the `RteRule` lives.
//! - A [`FlowHandle`] is an installed rule. It keeps its port from being stopped or closed (like a
//!   queue handle) and destroys the rule when dropped; [`Port::flow_destroy`] does the same and
//!   reports the error. [`Port::flow_flush`] is refused while any handle lives, since it would leave
//!   them dangling.
//! - DPDK serialises rte_flow calls per port for PMDs that are not thread-safe, so these calls may
//!   come from any thread (the control thread); none of them belongs on a worker's fast path.
use std::ffi::{c_void, CStr};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ptr::{self, addr_of};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rvs_dataplane::flow::{Addr, Proto};
use rvs_dataplane::steer::FlowRuleSpec;

use crate::error::{rte_errno, strerror, Errno, Error, Result};
use crate::port::{Port, Shared};
use crate::sys;

/// Pattern slots: ETH, IPV4 or IPV6, L4, END.
const PATTERN_LEN: usize = 4;
/// Action slots: QUEUE, END.
const ACTIONS_LEN: usize = 2;

/// An address family flow rules can match: its rte_flow L3 item.
pub trait RuleAddr: Addr + std::fmt::Display {
    /// `RTE_FLOW_ITEM_TYPE_IPV4` or `RTE_FLOW_ITEM_TYPE_IPV6`.
    const ITEM: sys::rte_flow_item_type;
}

impl RuleAddr for Ipv4Addr {
    const ITEM: sys::rte_flow_item_type = sys::RTE_FLOW_ITEM_TYPE_IPV4;
}

impl RuleAddr for Ipv6Addr {
    const ITEM: sys::rte_flow_item_type = sys::RTE_FLOW_ITEM_TYPE_IPV6;
}

/// The C structures of one rule. Self-referential through raw pointers: only ever lives boxed.
/// Both L3 items are there (as both L4 ones); the pattern points at the spec's family's.
struct RuleC {
    attr: sys::rte_flow_attr,
    /// [spec, mask]
    ipv4: [sys::rte_flow_item_ipv4; 2],
    ipv6: [sys::rte_flow_item_ipv6; 2],
    tcp: [sys::rte_flow_item_tcp; 2],
    udp: [sys::rte_flow_item_udp; 2],
    queue: sys::rte_flow_action_queue,
    pattern: [sys::rte_flow_item; PATTERN_LEN],
    actions: [sys::rte_flow_action; ACTIONS_LEN],
}

/// A [`FlowRuleSpec`] as DPDK's attr / pattern / actions arrays.
pub struct RteRule<A: RuleAddr = Ipv4Addr> {
    spec: FlowRuleSpec<A>,
    c: Box<RuleC>,
}

impl<A: RuleAddr> std::fmt::Debug for RteRule<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RteRule").field("spec", &self.spec).finish_non_exhaustive()
    }
}

impl<A: RuleAddr> RteRule<A> {
    pub fn new(spec: &FlowRuleSpec<A>) -> RteRule<A> {
        let mut attr = sys::rte_flow_attr::default();
        attr.set_ingress(1);

        // The LIP in network order (IPv4 is zero-extended by to_u128: its low 32 bits).
        let lip = spec.lip.to_u128();
        let mut ipv4 = [sys::rte_flow_item_ipv4::default(); 2];
        let mut ipv6 = [sys::rte_flow_item_ipv6::default(); 2];
        if A::ITEM == sys::RTE_FLOW_ITEM_TYPE_IPV6 {
            ipv6[0].hdr.dst_addr = lip.to_be_bytes();
            ipv6[1].hdr.dst_addr = [0xff; 16];
        } else {
            // dst_addr is rte_be32_t: the wire bytes kept as they are.
            ipv4[0].hdr.dst_addr = u32::from_ne_bytes((lip as u32).to_be_bytes());
            ipv4[1].hdr.dst_addr = u32::MAX;
        }

        let mut tcp = [sys::rte_flow_item_tcp::default(); 2];
        let mut udp = [sys::rte_flow_item_udp::default(); 2];
        let (port_spec, port_mask) = (spec.port_value.to_be(), spec.port_mask.to_be());
        match spec.proto {
            Proto::Tcp => {
                tcp[0].hdr.dst_port = port_spec;
                tcp[1].hdr.dst_port = port_mask;
            }
            Proto::Udp => {
                udp[0].hdr.dst_port = port_spec;
                udp[1].hdr.dst_port = port_mask;
            }
        }

        let mut c = Box::new(RuleC {
            attr,
            ipv4,
            ipv6,
            tcp,
            udp,
            queue: sys::rte_flow_action_queue { index: spec.queue },
            pattern: [sys::rte_flow_item::default(); PATTERN_LEN],
            actions: [sys::rte_flow_action::default(); ACTIONS_LEN],
        });
        // Pointers into the box: stable for its lifetime, whatever happens to the RteRule value.
        let item = |type_, spec: *const c_void, mask: *const c_void| sys::rte_flow_item {
            type_,
            spec,
            last: ptr::null(),
            mask,
        };
        let (l4_type, l4_spec, l4_mask): (_, *const c_void, *const c_void) = match spec.proto {
            Proto::Tcp => (sys::RTE_FLOW_ITEM_TYPE_TCP, addr_of!(c.tcp[0]).cast(), addr_of!(c.tcp[1]).cast()),
            Proto::Udp => (sys::RTE_FLOW_ITEM_TYPE_UDP, addr_of!(c.udp[0]).cast(), addr_of!(c.udp[1]).cast()),
        };
        let (l3_spec, l3_mask): (*const c_void, *const c_void) = if A::ITEM == sys::RTE_FLOW_ITEM_TYPE_IPV6 {
            (addr_of!(c.ipv6[0]).cast(), addr_of!(c.ipv6[1]).cast())
        } else {
            (addr_of!(c.ipv4[0]).cast(), addr_of!(c.ipv4[1]).cast())
        };
        c.pattern = [
            // No spec: any Ethernet frame (the LIP is what identifies our replies).
            item(sys::RTE_FLOW_ITEM_TYPE_ETH, ptr::null(), ptr::null()),
            item(A::ITEM, l3_spec, l3_mask),
            item(l4_type, l4_spec, l4_mask),
            item(sys::RTE_FLOW_ITEM_TYPE_END, ptr::null(), ptr::null()),
        ];
        c.actions = [
            sys::rte_flow_action { type_: sys::RTE_FLOW_ACTION_TYPE_QUEUE, conf: addr_of!(c.queue).cast() },
            sys::rte_flow_action { type_: sys::RTE_FLOW_ACTION_TYPE_END, conf: ptr::null() },
        ];
        RteRule { spec: *spec, c }
    }

    pub fn spec(&self) -> &FlowRuleSpec<A> {
        &self.spec
    }

    pub fn attr(&self) -> &sys::rte_flow_attr {
        &self.c.attr
    }

    /// ETH / IPV4-or-IPV6 / TCP-or-UDP / END.
    pub fn pattern(&self) -> &[sys::rte_flow_item; PATTERN_LEN] {
        &self.c.pattern
    }

    /// QUEUE / END.
    pub fn actions(&self) -> &[sys::rte_flow_action; ACTIONS_LEN] {
        &self.c.actions
    }

    /// Which part of the rule a driver's `rte_flow_error.cause` points at, if it is one of ours.
    fn describe_cause(&self, cause: *const c_void) -> Option<String> {
        if cause.is_null() {
            return None;
        }
        let c = &*self.c;
        if ptr::eq(cause, addr_of!(c.attr).cast()) {
            return Some("attr".into());
        }
        for (i, it) in c.pattern.iter().enumerate() {
            let field = if ptr::eq(cause, ptr::from_ref(it).cast()) {
                ""
            } else if !it.spec.is_null() && ptr::eq(cause, it.spec) {
                " spec"
            } else if !it.mask.is_null() && ptr::eq(cause, it.mask) {
                " mask"
            } else {
                continue;
            };
            return Some(format!("item {i} ({}){field}", item_name(it.type_)));
        }
        for (i, a) in c.actions.iter().enumerate() {
            if ptr::eq(cause, ptr::from_ref(a).cast()) || (!a.conf.is_null() && ptr::eq(cause, a.conf)) {
                return Some(format!("action {i} ({})", action_name(a.type_)));
            }
        }
        None
    }

    /// The safe layer's error for a failed rte_flow call on this rule: the op, the errno, and the
    /// driver's message with what it blamed, naming the port and the rule.
    fn error(&self, op: &'static str, port: u16, code: i32, err: &sys::rte_flow_error) -> Error {
        let msg = if err.message.is_null() {
            None
        } else {
            // SAFETY: rte_flow_error_set stores a NUL-terminated string that PMDs and ethdev take from
            // static storage (or rte_strerror's per-thread buffer); it is read right after the call
            // on the calling thread, before anything could overwrite it.
            Some(unsafe { CStr::from_ptr(err.message) }.to_string_lossy().into_owned())
        };
        let mut text = format!("port {port}, rule `{}`: {}", self.spec, error_kind(err.type_));
        if let Some(cause) = self.describe_cause(err.cause) {
            text.push_str(&format!(" at {cause}"));
        }
        let errno_text = strerror(code);
        match msg {
            // ethdev's own answers (no flow ops: ENOSYS) use the errno text as the message.
            Some(m) if m != errno_text => text.push_str(&format!(": {m} ({errno_text})")),
            _ => text.push_str(&format!(": {errno_text}")),
        }
        Error::new(op, Errno::from_raw(code), text)
    }
}

fn item_name(t: sys::rte_flow_item_type) -> &'static str {
    match t {
        sys::RTE_FLOW_ITEM_TYPE_END => "end",
        sys::RTE_FLOW_ITEM_TYPE_ETH => "eth",
        sys::RTE_FLOW_ITEM_TYPE_IPV4 => "ipv4",
        sys::RTE_FLOW_ITEM_TYPE_IPV6 => "ipv6",
        sys::RTE_FLOW_ITEM_TYPE_TCP => "tcp",
        sys::RTE_FLOW_ITEM_TYPE_UDP => "udp",
        _ => "?",
    }
}

fn action_name(t: sys::rte_flow_action_type) -> &'static str {
    match t {
        sys::RTE_FLOW_ACTION_TYPE_END => "end",
        sys::RTE_FLOW_ACTION_TYPE_QUEUE => "queue",
        _ => "?",
    }
}

/// What `rte_flow_error.type_` says the driver objected to.
fn error_kind(t: sys::rte_flow_error_type) -> &'static str {
    match t {
        sys::RTE_FLOW_ERROR_TYPE_NONE => "no error type",
        sys::RTE_FLOW_ERROR_TYPE_UNSPECIFIED => "unspecified",
        sys::RTE_FLOW_ERROR_TYPE_HANDLE => "flow handle",
        sys::RTE_FLOW_ERROR_TYPE_ATTR_GROUP => "attr group",
        sys::RTE_FLOW_ERROR_TYPE_ATTR_PRIORITY => "attr priority",
        sys::RTE_FLOW_ERROR_TYPE_ATTR_INGRESS => "attr ingress",
        sys::RTE_FLOW_ERROR_TYPE_ATTR_EGRESS => "attr egress",
        sys::RTE_FLOW_ERROR_TYPE_ATTR_TRANSFER => "attr transfer",
        sys::RTE_FLOW_ERROR_TYPE_ATTR => "attr",
        sys::RTE_FLOW_ERROR_TYPE_ITEM_NUM => "pattern length",
        sys::RTE_FLOW_ERROR_TYPE_ITEM_SPEC => "item spec",
        sys::RTE_FLOW_ERROR_TYPE_ITEM_LAST => "item last",
        sys::RTE_FLOW_ERROR_TYPE_ITEM_MASK => "item mask",
        sys::RTE_FLOW_ERROR_TYPE_ITEM => "item",
        sys::RTE_FLOW_ERROR_TYPE_ACTION_NUM => "action count",
        sys::RTE_FLOW_ERROR_TYPE_ACTION_CONF => "action conf",
        sys::RTE_FLOW_ERROR_TYPE_ACTION => "action",
        sys::RTE_FLOW_ERROR_TYPE_STATE => "state",
        _ => "unknown error type",
    }
}

/// An installed flow rule. Dropping it destroys the rule (errors ignored: use
/// [`Port::flow_destroy`] to see them).
#[derive(Debug)]
pub struct FlowHandle<A: RuleAddr = Ipv4Addr> {
    port: Arc<Shared>,
    flow: *mut sys::rte_flow,
    spec: FlowRuleSpec<A>,
}

// SAFETY: the handle is an opaque token for a rule on a port; ethdev serialises rte_flow_destroy
// per port (flow_ops mutex for PMDs that are not thread-safe), so destroying it from another thread
// is sound. It is not Sync: nothing can be done through a shared reference.
unsafe impl<A: RuleAddr> Send for FlowHandle<A> {}

impl<A: RuleAddr> FlowHandle<A> {
    pub fn spec(&self) -> &FlowRuleSpec<A> {
        &self.spec
    }

    pub fn port_id(&self) -> u16 {
        self.port.id
    }

    /// Destroys the rule; afterwards `self.flow` is null so Drop does nothing.
    fn destroy(&mut self) -> Result<()> {
        if self.flow.is_null() {
            return Ok(());
        }
        let mut err = sys::rte_flow_error::default();
        // SAFETY: `flow` came from rte_flow_create on this port and has not been destroyed (it is
        // nulled right after); the port cannot have been closed while this handle holds `port`.
        let ret = unsafe { sys::rte_flow_destroy(self.port.id, self.flow, &mut err) };
        self.flow = ptr::null_mut();
        self.port.flows.fetch_sub(1, Ordering::SeqCst);
        if ret < 0 {
            let rule = RteRule::new(&self.spec);
            return Err(rule.error("rte_flow_destroy", self.port.id, ret, &err));
        }
        Ok(())
    }
}

impl<A: RuleAddr> Drop for FlowHandle<A> {
    fn drop(&mut self) {
        // Nothing to report to from a destructor; the explicit path is Port::flow_destroy.
        let _ = self.destroy();
    }
}

impl Port {
    /// Asks the driver whether it would accept `spec` (`rte_flow_validate`); installs nothing.
    /// Call on a configured port (drivers check the queue index against the RX queues).
    pub fn flow_validate<A: RuleAddr>(&self, spec: &FlowRuleSpec<A>) -> Result<()> {
        let rule = RteRule::new(spec);
        let mut err = sys::rte_flow_error::default();
        // SAFETY: attr/pattern/actions point into `rule`, alive for the call; err is a valid out pointer.
        let ret = unsafe {
            sys::rte_flow_validate(
                self.id(),
                rule.attr(),
                rule.pattern().as_ptr(),
                rule.actions().as_ptr(),
                &mut err,
            )
        };
        if ret < 0 {
            return Err(rule.error("rte_flow_validate", self.id(), ret, &err));
        }
        Ok(())
    }

    /// Installs `spec` (`rte_flow_create`).
    pub fn flow_create<A: RuleAddr>(&self, spec: &FlowRuleSpec<A>) -> Result<FlowHandle<A>> {
        let rule = RteRule::new(spec);
        let mut err = sys::rte_flow_error::default();
        // SAFETY: as in flow_validate; DPDK copies what it keeps, so `rule` may go after the call.
        let flow = unsafe {
            sys::rte_flow_create(
                self.id(),
                rule.attr(),
                rule.pattern().as_ptr(),
                rule.actions().as_ptr(),
                &mut err,
            )
        };
        if flow.is_null() {
            let code = rte_errno();
            // A driver that fails without setting rte_errno still must not look like success.
            let code = if code == 0 { Errno::Io.raw() } else { code };
            return Err(rule.error("rte_flow_create", self.id(), code, &err));
        }
        self.shared.flows.fetch_add(1, Ordering::SeqCst);
        Ok(FlowHandle { port: self.shared.clone(), flow, spec: *spec })
    }

    /// Removes an installed rule (`rte_flow_destroy`), reporting the driver's error. The handle is
    /// consumed either way; a rule the driver failed to remove is left to [`Port::flow_flush`].
    pub fn flow_destroy<A: RuleAddr>(&self, mut handle: FlowHandle<A>) -> Result<()> {
        if !Arc::ptr_eq(&handle.port, &self.shared) {
            return Err(Error::new(
                "rte_flow_destroy",
                Errno::Invalid,
                format!(
                    "rule `{}` belongs to port {}, not to port {} ({})",
                    handle.spec,
                    handle.port.id,
                    self.id(),
                    self.name()
                ),
            ));
        }
        handle.destroy()
    }

    /// Removes every rule on the port (`rte_flow_flush`), e.g. rules left by an earlier process on
    /// a NIC that keeps them. Refused while this process holds any [`FlowHandle`] for the port.
    pub fn flow_flush(&self) -> Result<()> {
        let live = self.shared.flows.load(Ordering::SeqCst);
        if live > 0 {
            return Err(Error::new(
                "rte_flow_flush",
                Errno::Busy,
                format!(
                    "port {} ({}): {live} flow handles are live; destroy them instead",
                    self.id(),
                    self.name()
                ),
            ));
        }
        let mut err = sys::rte_flow_error::default();
        // SAFETY: valid port id and out pointer; no handle refers to a rule this could free.
        let ret = unsafe { sys::rte_flow_flush(self.id(), &mut err) };
        if ret < 0 {
            let msg = if err.message.is_null() {
                String::new()
            } else {
                // SAFETY: as in RteRule::error.
                format!("{}: ", unsafe { CStr::from_ptr(err.message) }.to_string_lossy())
            };
            return Err(Error::new(
                "rte_flow_flush",
                Errno::from_raw(ret),
                format!("port {} ({}): {msg}{}", self.id(), self.name(), strerror(ret)),
            ));
        }
        Ok(())
    }
}

/// Start-up gate: `Ok` when `port` accepts `sample` — validated, then installed and destroyed at
/// once, so nothing stays installed — else the driver's answer. PMDs without rte_flow answer
/// `NotImplemented` (ENOSYS); PMDs with it but unable to match or to steer answer `NotSupported` or
/// `Invalid` with a message naming the refused part.
///
/// Validation alone is not authoritative: net_tap's validate accepts the rule and its create then
/// refuses the partial port mask (TC flower matches whole ports only), so the gate installs once.
/// Call it on a configured port before it is started (no traffic can meet the trial rule), with a
/// rule whose queue is not 0 (e.g. the first rule for queue 1) so that a driver checking the queue
/// index against the configured RX queues is asked the real question.
pub fn steering_supported<A: RuleAddr>(port: &Port, sample: &FlowRuleSpec<A>) -> Result<()> {
    port.flow_validate(sample)?;
    let trial = port.flow_create(sample)?;
    port.flow_destroy(trial)
}

#[cfg(test)]
mod tests {
    use rvs_dataplane::steer::rules_for;

    use super::*;

    fn spec(proto: Proto) -> FlowRuleSpec {
        FlowRuleSpec {
            lip: Ipv4Addr::new(198, 18, 1, 2),
            proto,
            port_mask: 0x0007,
            port_value: 0x0005,
            queue: 5,
        }
    }

    /// The bytes of a packed header struct (no padding, so every byte is initialised).
    fn bytes<T: Copy>(t: &T) -> &[u8] {
        // SAFETY: only called on DPDK's packed header structs below, which have no padding (the
        // IPv6 item is its packed 40-byte header then a 4-byte bitfield word: 44 bytes); the
        // slice borrows `t` and covers exactly its size.
        unsafe { std::slice::from_raw_parts(ptr::from_ref(t).cast::<u8>(), std::mem::size_of::<T>()) }
    }

    /// A header of `len` zero bytes with `at..at+val.len()` set to `val`.
    fn with(len: usize, at: usize, val: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; len];
        v[at..at + val.len()].copy_from_slice(val);
        v
    }

    #[test]
    fn attr_is_plain_ingress() {
        let r = RteRule::new(&spec(Proto::Tcp));
        let a = r.attr();
        assert_eq!((a.ingress(), a.egress(), a.transfer(), a.group, a.priority), (1, 0, 0, 0, 0));
    }

    #[test]
    fn tcp_rule_bytes() {
        let r = RteRule::new(&spec(Proto::Tcp));
        let p = r.pattern();
        let types: Vec<_> = p.iter().map(|i| i.type_).collect();
        assert_eq!(
            types,
            [
                sys::RTE_FLOW_ITEM_TYPE_ETH,
                sys::RTE_FLOW_ITEM_TYPE_IPV4,
                sys::RTE_FLOW_ITEM_TYPE_TCP,
                sys::RTE_FLOW_ITEM_TYPE_END
            ]
        );
        assert!(p[0].spec.is_null() && p[0].mask.is_null() && p[0].last.is_null(), "eth matches any frame");
        assert!(p[3].spec.is_null() && p[3].mask.is_null());
        assert!(p.iter().all(|i| i.last.is_null()), "no ranges");

        // SAFETY: RteRule::new points IPV4 spec/mask at rte_flow_item_ipv4 values inside the box.
        let (ip_spec, ip_mask) = unsafe {
            (&*p[1].spec.cast::<sys::rte_flow_item_ipv4>(), &*p[1].mask.cast::<sys::rte_flow_item_ipv4>())
        };
        // IPv4 header: dst address at bytes 16..20, in network order; nothing else matched.
        assert_eq!(std::mem::size_of::<sys::rte_flow_item_ipv4>(), 20);
        assert_eq!(bytes(ip_spec), with(20, 16, &[198, 18, 1, 2]));
        assert_eq!(bytes(ip_mask), with(20, 16, &[0xff; 4]));

        // SAFETY: TCP spec/mask point at rte_flow_item_tcp values inside the box.
        let (tcp_spec, tcp_mask) = unsafe {
            (&*p[2].spec.cast::<sys::rte_flow_item_tcp>(), &*p[2].mask.cast::<sys::rte_flow_item_tcp>())
        };
        // TCP header: dst port at bytes 2..4, big-endian; source port and the rest unmasked.
        assert_eq!(std::mem::size_of::<sys::rte_flow_item_tcp>(), 20);
        assert_eq!(bytes(tcp_spec), with(20, 2, &[0x00, 0x05]));
        assert_eq!(bytes(tcp_mask), with(20, 2, &[0x00, 0x07]));

        let acts = r.actions();
        assert_eq!(acts[0].type_, sys::RTE_FLOW_ACTION_TYPE_QUEUE);
        assert_eq!(acts[1].type_, sys::RTE_FLOW_ACTION_TYPE_END);
        assert!(acts[1].conf.is_null());
        // SAFETY: the QUEUE action's conf points at the rte_flow_action_queue inside the box.
        let q = unsafe { &*acts[0].conf.cast::<sys::rte_flow_action_queue>() };
        assert_eq!(q.index, 5);
    }

    #[test]
    fn udp_rule_bytes_and_big_endian_ports() {
        let s = FlowRuleSpec {
            lip: Ipv4Addr::new(198, 19, 255, 1),
            proto: Proto::Udp,
            port_mask: 0x003f,
            port_value: 0x0021,
            queue: 33,
        };
        let r = RteRule::new(&s);
        let p = r.pattern();
        assert_eq!(p[2].type_, sys::RTE_FLOW_ITEM_TYPE_UDP);
        // SAFETY: UDP spec/mask point at rte_flow_item_udp values inside the box.
        let (spec, mask) = unsafe {
            (&*p[2].spec.cast::<sys::rte_flow_item_udp>(), &*p[2].mask.cast::<sys::rte_flow_item_udp>())
        };
        assert_eq!(std::mem::size_of::<sys::rte_flow_item_udp>(), 8);
        assert_eq!(bytes(spec), with(8, 2, &[0x00, 0x21]));
        assert_eq!(bytes(mask), with(8, 2, &[0x00, 0x3f]));
        // SAFETY: as in tcp_rule_bytes.
        let ip = unsafe { &*p[1].spec.cast::<sys::rte_flow_item_ipv4>() };
        assert_eq!(bytes(ip), with(20, 16, &[198, 19, 255, 1]));
        // SAFETY: as in tcp_rule_bytes.
        let q = unsafe { &*r.actions()[0].conf.cast::<sys::rte_flow_action_queue>() };
        assert_eq!(q.index, 33);
        // A port whose bytes differ tells big- from little-endian apart.
        let r = RteRule::new(&FlowRuleSpec { port_mask: 0x1ff, port_value: 0x102, ..s });
        // SAFETY: as above.
        let (spec, mask) = unsafe {
            (
                &*r.pattern()[2].spec.cast::<sys::rte_flow_item_udp>(),
                &*r.pattern()[2].mask.cast::<sys::rte_flow_item_udp>(),
            )
        };
        assert_eq!(&bytes(spec)[2..4], &[0x01, 0x02]);
        assert_eq!(&bytes(mask)[2..4], &[0x01, 0xff]);
    }

    fn spec6(proto: Proto) -> FlowRuleSpec<Ipv6Addr> {
        FlowRuleSpec {
            lip: "2001:2:0:1::a0b:c0d".parse().unwrap(),
            proto,
            port_mask: 0x0003,
            port_value: 0x0002,
            queue: 2,
        }
    }

    /// The IPV6 item of an IPv6 rule: (spec, mask).
    fn ipv6_item(r: &RteRule<Ipv6Addr>) -> (&sys::rte_flow_item_ipv6, &sys::rte_flow_item_ipv6) {
        let p = r.pattern();
        assert_eq!(p[1].type_, sys::RTE_FLOW_ITEM_TYPE_IPV6);
        // SAFETY: RteRule::new points an IPV6 item's spec/mask at rte_flow_item_ipv6 values inside
        // the box, which lives as long as `r`.
        unsafe {
            (&*p[1].spec.cast::<sys::rte_flow_item_ipv6>(), &*p[1].mask.cast::<sys::rte_flow_item_ipv6>())
        }
    }

    const LIP6_BYTES: [u8; 16] = [0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0x01, 0, 0, 0, 0, 0x0a, 0x0b, 0x0c, 0x0d];

    #[test]
    fn ipv6_tcp_rule_bytes() {
        let r = RteRule::new(&spec6(Proto::Tcp));
        let p = r.pattern();
        let types: Vec<_> = p.iter().map(|i| i.type_).collect();
        assert_eq!(
            types,
            [
                sys::RTE_FLOW_ITEM_TYPE_ETH,
                sys::RTE_FLOW_ITEM_TYPE_IPV6,
                sys::RTE_FLOW_ITEM_TYPE_TCP,
                sys::RTE_FLOW_ITEM_TYPE_END
            ]
        );
        assert!(p[0].spec.is_null() && p[0].mask.is_null(), "eth matches any frame");
        assert!(p[3].spec.is_null() && p[3].mask.is_null());
        assert!(p.iter().all(|i| i.last.is_null()), "no ranges");
        let a = r.attr();
        assert_eq!((a.ingress(), a.egress(), a.transfer(), a.group, a.priority), (1, 0, 0, 0, 0));

        // rte_flow_item_ipv6: the 40-byte IPv6 header, then 4 bytes of extension-header flags
        // (has_hop_ext, ...), all left 0 = not matched. dst address at bytes 24..40, network order.
        let (ip_spec, ip_mask) = ipv6_item(&r);
        assert_eq!(std::mem::size_of::<sys::rte_flow_item_ipv6>(), 44);
        assert_eq!(bytes(ip_spec), with(44, 24, &LIP6_BYTES));
        assert_eq!(bytes(ip_mask), with(44, 24, &[0xff; 16]));

        // SAFETY: TCP spec/mask point at rte_flow_item_tcp values inside the box.
        let (tcp_spec, tcp_mask) = unsafe {
            (&*p[2].spec.cast::<sys::rte_flow_item_tcp>(), &*p[2].mask.cast::<sys::rte_flow_item_tcp>())
        };
        assert_eq!(bytes(tcp_spec), with(20, 2, &[0x00, 0x02]));
        assert_eq!(bytes(tcp_mask), with(20, 2, &[0x00, 0x03]));

        let acts = r.actions();
        assert_eq!(
            (acts[0].type_, acts[1].type_),
            (sys::RTE_FLOW_ACTION_TYPE_QUEUE, sys::RTE_FLOW_ACTION_TYPE_END)
        );
        // SAFETY: the QUEUE action's conf points at the rte_flow_action_queue inside the box.
        let q = unsafe { &*acts[0].conf.cast::<sys::rte_flow_action_queue>() };
        assert_eq!(q.index, 2);
    }

    #[test]
    fn ipv6_udp_rule_bytes_and_big_endian_ports() {
        let s = FlowRuleSpec { port_mask: 0x1ff, port_value: 0x102, queue: 7, ..spec6(Proto::Udp) };
        let r = RteRule::new(&s);
        let p = r.pattern();
        assert_eq!(p[2].type_, sys::RTE_FLOW_ITEM_TYPE_UDP);
        let (ip_spec, ip_mask) = ipv6_item(&r);
        assert_eq!(bytes(ip_spec), with(44, 24, &LIP6_BYTES));
        assert_eq!(bytes(ip_mask), with(44, 24, &[0xff; 16]));
        // SAFETY: UDP spec/mask point at rte_flow_item_udp values inside the box.
        let (spec, mask) = unsafe {
            (&*p[2].spec.cast::<sys::rte_flow_item_udp>(), &*p[2].mask.cast::<sys::rte_flow_item_udp>())
        };
        assert_eq!(bytes(spec), with(8, 2, &[0x01, 0x02]));
        assert_eq!(bytes(mask), with(8, 2, &[0x01, 0xff]));
        // SAFETY: as in ipv6_tcp_rule_bytes.
        let q = unsafe { &*r.actions()[0].conf.cast::<sys::rte_flow_action_queue>() };
        assert_eq!(q.index, 7);
        // The IPv6 rule's error names its item and the IPv6 rule.
        let err = sys::rte_flow_error {
            type_: sys::RTE_FLOW_ERROR_TYPE_ITEM_SPEC,
            cause: p[1].spec,
            message: ptr::null(),
        };
        let t = r.error("rte_flow_validate", 1, -95, &err).to_string();
        assert!(t.contains("rule `udp dst 2001:2:0:1::a0b:c0d port & 0x01ff == 0x0102 -> queue 7`"), "{t}");
        assert!(t.contains("item spec at item 1 (ipv6) spec"), "{t}");
    }

    #[test]
    fn ipv6_rules_from_the_plan_keep_their_pointers() {
        let lip: Ipv6Addr = "2001:2::10".parse().unwrap();
        let rules: Vec<RteRule<Ipv6Addr>> = rules_for(&[lip], 4).iter().map(RteRule::new).collect();
        assert_eq!(rules.len(), 8);
        let moved: Vec<RteRule<Ipv6Addr>> = rules.into_iter().rev().collect();
        for r in &moved {
            let (ip, _) = ipv6_item(r);
            assert_eq!(ip.hdr.dst_addr, lip.octets());
            // SAFETY: the pointers refer into r's box, which moving the Vec did not move.
            let q = unsafe { &*r.actions()[0].conf.cast::<sys::rte_flow_action_queue>() };
            assert_eq!(q.index, r.spec().queue);
        }
    }

    #[test]
    fn pointers_survive_moving_the_rule() {
        let rules: Vec<RteRule> =
            rules_for(&[Ipv4Addr::new(198, 18, 0, 1)], 4).iter().map(RteRule::new).collect();
        let moved: Vec<RteRule> = rules.into_iter().rev().collect();
        for r in &moved {
            // SAFETY: the pointers refer into r's box, which moving the Vec did not move.
            let q = unsafe { &*r.actions()[0].conf.cast::<sys::rte_flow_action_queue>() };
            assert_eq!(q.index, r.spec().queue);
            // SAFETY: as above.
            let ip = unsafe { &*r.pattern()[1].spec.cast::<sys::rte_flow_item_ipv4>() };
            assert_eq!(bytes(ip)[16..20], r.spec().lip.octets());
        }
    }

    #[test]
    fn error_names_port_rule_cause_and_errno() {
        static MSG: &CStr = c"queue index out of range";
        let r = RteRule::new(&spec(Proto::Tcp));
        let err = sys::rte_flow_error {
            type_: sys::RTE_FLOW_ERROR_TYPE_ACTION_CONF,
            cause: r.actions()[0].conf,
            message: MSG.as_ptr(),
        };
        let e = r.error("rte_flow_validate", 3, -22, &err);
        assert_eq!(e.errno, Errno::Invalid);
        assert_eq!(e.op, "rte_flow_validate");
        let t = e.to_string();
        assert!(
            t.starts_with(
                "rte_flow_validate: port 3, rule `tcp dst 198.18.1.2 port & 0x0007 == 0x0005 -> queue 5`"
            ),
            "{t}"
        );
        assert!(t.contains("action conf at action 0 (queue): queue index out of range"), "{t}");

        let err = sys::rte_flow_error {
            type_: sys::RTE_FLOW_ERROR_TYPE_ITEM_MASK,
            cause: r.pattern()[2].mask,
            message: ptr::null(),
        };
        let e = r.error("rte_flow_create", 0, 95, &err);
        assert_eq!(e.errno, Errno::NotSupported);
        assert!(e.text.contains("item mask at item 2 (tcp) mask: "), "{}", e.text);

        // What ethdev answers for a PMD without flow ops: ENOSYS, no cause.
        let err = sys::rte_flow_error {
            type_: sys::RTE_FLOW_ERROR_TYPE_UNSPECIFIED,
            cause: ptr::null(),
            message: ptr::null(),
        };
        let e = r.error("rte_flow_validate", 0, -38, &err);
        assert_eq!(e.errno, Errno::NotImplemented);
        assert!(e.text.contains("unspecified: "), "{}", e.text);
    }
}
