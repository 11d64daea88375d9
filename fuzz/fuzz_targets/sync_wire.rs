//! Connection sync messages: `sync::wire::decode` on any datagram. Never a panic; every entry it
//! accepts encodes back (into a fresh message) to bytes that decode to the same entry, and the
//! entry maps to a dataplane operation or a typed refusal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_control::sync::record::from_entry;
use rvs_control::sync::wire::{decode, flags, Entry, Message, MessageBuf};

fn run(data: &[u8]) {
    let Ok(Message::Conns(_, entries)) = decode(data) else { return };
    for e in entries {
        let Ok(e) = e else { break };
        let _ = from_entry(&e);
        let mut m = MessageBuf::new(1, 65_535);
        if m.push(&e).is_err() {
            continue;
        }
        let Ok(Message::Conns(_, mut again)) = decode(m.bytes()) else { panic!("re-encoded message refused") };
        let back = again.next().expect("one entry").expect("re-encoded entry decodes");
        // PE data is checked, not kept, and the kernel never sends IP_VS_CONN_F_HASHED: the
        // re-encoded entry has neither.
        assert_eq!(back, Entry { pe: false, flags: e.flags & !flags::HASHED, ..e });
    }
}

fuzz_target!(|data: &[u8]| run(data));
