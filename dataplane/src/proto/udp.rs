//! UDP: header checks and admission. A UDP flow has no state machine: each packet re-arms the
//! connection's timer (see [`crate::xmit`]).
use crate::frame::{Frame, FramePool};
use crate::packet::Ctx;
use crate::proto::Admit;
use crate::stats::DropReason as D;
use crate::wire::UdpPacket;
use crate::worker::Worker;

/// Checks the UDP header of a packet whose tuple is in `cx`.
#[inline]
pub(crate) fn parse<F: Frame>(f: &F, cx: &mut Ctx) -> Result<(), D> {
    UdpPacket::new_checked(&f.data()[cx.l4()..]).map(|_| ()).map_err(|_| D::UdpMalformed)
}

impl<P: FramePool> Worker<P> {
    /// A datagram of a new flow: refused while draining, admitted when its checksum holds.
    pub(crate) fn udp_admit(&self, f: &P::Frame, cx: &Ctx) -> Admit {
        if self.draining {
            return Admit::Drop(D::Draining);
        }
        if !UdpPacket::new_unchecked(&f.data()[cx.l4()..]).verify_checksum(cx.key.src, cx.key.dst) {
            return Admit::Drop(D::UdpBadChecksum);
        }
        Admit::New
    }
}
