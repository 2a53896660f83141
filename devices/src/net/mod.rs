//! Network backends: where the Ethernet frames of a virtual NIC go on the host.
//!
//! A NIC model (virtio-net) and its backend meet in a pair of ports made by
//! [`port_pair`]:
//! - the NIC holds the [`NetPort`]. It sends frames the guest transmitted and
//!   takes frames that arrived, never blocking the vCPU: both queues are
//!   bounded, a full queue drops the frame and counts it in [`NetStats`].
//! - the backend holds the [`BackendPort`], on threads of its own. It takes
//!   what the guest sent (blocking is fine there) and delivers what the
//!   network sent; each delivery wakes the machine's run loop through the
//!   NIC's [`Waker`], so a frame does not wait for the next device tick.
//!
//! Either end may record every frame in a pcap capture ([`pcap`]), and the
//! backend reports its link state, which the NIC shows the guest.
//!
//! The backends, each opened by [`open::open_netdev`] from a
//! [`emu_core::config::NetdevSpec`] as QEMU spells it ([`spec`]):
//! - `user` ([`user`]): user-mode networking with NAT, DHCP, DNS and
//!   forwarded host ports, as QEMU's `-netdev user`;
//! - `stream` ([`stream`]): a TCP or UNIX stream socket, as server or client;
//!   each frame is sent after its length as a 4-byte big-endian integer,
//!   QEMU's `-netdev stream` format, so Turing VMs link to each other, to QEMU
//!   VMs and to `turing switch`.
//! - `dgram` ([`dgram`]): a UDP or UNIX datagram socket, one frame per
//!   datagram, as QEMU's `-netdev dgram`.
//!
//! [`switch`] is `turing switch`: a learning Ethernet switch that stream
//! clients join over a UNIX socket.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use emu_core::sync::LockRecover;

/// One Ethernet frame, destination MAC first, without any virtio header.
pub type Frame = Vec<u8>;

/// What wakes the machine's run loop when frames arrive for the NIC.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Frames each direction holds before it drops new ones. Enough for a TCP
/// window of full-size frames in flight; bounded so that a guest (or a peer)
/// that floods cannot make the host process grow.
pub const QUEUE_FRAMES: usize = 1024;

/// The largest frame a backend passes on: an Ethernet frame with a VLAN tag
/// and room for the 64 KiB frames of segmentation offload, which QEMU peers
/// may send.
pub const MAX_FRAME: usize = 65_536 + 18;

/// How often a backend thread that cannot be woken (a listener waiting for a
/// peer) looks whether it should stop; bounds how long a dropped backend
/// lingers.
pub(crate) const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// How long dropping a backend waits for its threads to end. They end within
/// [`POLL_INTERVAL`] unless stuck in a TCP connect to an unreachable host,
/// which must not hold up the machine's exit.
pub(crate) const STOP_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Counters a NIC and its backend share (`--stats`).
#[derive(Debug, Default)]
pub struct NetStats {
    /// Frames the guest sent that the backend took.
    pub tx_frames: AtomicU64,
    /// Their bytes.
    pub tx_bytes: AtomicU64,
    /// Frames the guest sent that were dropped: the backend's queue was full,
    /// or the link was down.
    pub tx_dropped: AtomicU64,
    /// Frames delivered to the NIC.
    pub rx_frames: AtomicU64,
    /// Their bytes.
    pub rx_bytes: AtomicU64,
    /// Frames from the network that were dropped: the NIC's queue was full
    /// (the guest did not take them), or they did not fit its buffers.
    pub rx_dropped: AtomicU64,
}

impl NetStats {
    fn count(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// One line: `tx N frames (B bytes, D dropped), rx ...`.
    pub fn summary(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "tx {} frames ({} bytes, {} dropped), rx {} frames ({} bytes, {} dropped)",
            get(&self.tx_frames),
            get(&self.tx_bytes),
            get(&self.tx_dropped),
            get(&self.rx_frames),
            get(&self.rx_bytes),
            get(&self.rx_dropped),
        )
    }
}

/// What both ports share.
struct Shared {
    stats: Arc<NetStats>,
    link_up: AtomicBool,
    /// Bumped on every link change, so the NIC sees a change it missed.
    link_epoch: AtomicU64,
    waker: Mutex<Option<Waker>>,
    /// Set when the NIC's port is dropped (the machine ended).
    nic_gone: AtomicBool,
    /// The capture, if the netdev asked for one.
    capture: Option<pcap::PcapWriter>,
}

impl Shared {
    fn wake(&self) {
        let waker = self.waker.lock_recover().clone();
        if let Some(waker) = waker {
            waker();
        }
    }
}

/// The NIC's end of a netdev.
pub struct NetPort {
    to_backend: Sender<Frame>,
    from_backend: Receiver<Frame>,
    shared: Arc<Shared>,
    /// What keeps the backend running; dropping it stops its threads.
    _backend: Option<Box<dyn Send>>,
}

impl fmt::Debug for NetPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetPort")
            .field("link_up", &self.link_up())
            .field("stats", &self.shared.stats)
            .finish_non_exhaustive()
    }
}

/// The backend's end of a netdev.
#[derive(Clone)]
pub struct BackendPort {
    from_nic: Receiver<Frame>,
    to_nic: Sender<Frame>,
    shared: Arc<Shared>,
}

impl fmt::Debug for BackendPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendPort")
            .field("link_up", &self.shared.link_up.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A connected pair of ports, the link up, recording into `capture` if given.
pub fn port_pair(capture: Option<pcap::PcapWriter>) -> (NetPort, BackendPort) {
    let (to_backend, from_nic) = crossbeam_channel::bounded(QUEUE_FRAMES);
    let (to_nic, from_backend) = crossbeam_channel::bounded(QUEUE_FRAMES);
    let shared = Arc::new(Shared {
        stats: Arc::default(),
        link_up: AtomicBool::new(true),
        link_epoch: AtomicU64::new(0),
        waker: Mutex::new(None),
        nic_gone: AtomicBool::new(false),
        capture,
    });
    (
        NetPort {
            to_backend,
            from_backend,
            shared: shared.clone(),
            _backend: None,
        },
        BackendPort {
            from_nic,
            to_nic,
            shared,
        },
    )
}

impl NetPort {
    /// Keeps `backend` (its threads, sockets) alive as long as this port:
    /// dropping the port drops it, which must stop the backend.
    pub fn hold_backend(&mut self, backend: Box<dyn Send>) {
        self._backend = Some(backend);
    }

    /// Passes a frame the guest sent to the backend without blocking; returns
    /// whether it was taken (a full queue or a link down drops it, counted).
    pub fn send(&self, frame: Frame) -> bool {
        let stats = &self.shared.stats;
        if !self.link_up() {
            NetStats::count(&stats.tx_dropped, 1);
            return false;
        }
        if let Some(capture) = &self.shared.capture {
            capture.record(&frame);
        }
        let len = frame.len() as u64;
        match self.to_backend.try_send(frame) {
            Ok(()) => {
                NetStats::count(&stats.tx_frames, 1);
                NetStats::count(&stats.tx_bytes, len);
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                NetStats::count(&stats.tx_dropped, 1);
                false
            }
        }
    }

    /// The next frame from the network, if one waits.
    pub fn try_recv(&self) -> Option<Frame> {
        self.from_backend.try_recv().ok()
    }

    /// Whether a frame from the network waits.
    pub fn has_frames(&self) -> bool {
        !self.from_backend.is_empty()
    }

    /// Counts a frame taken from [`NetPort::try_recv`] that the guest could
    /// not take (no buffer large enough).
    pub fn count_rx_dropped(&self) {
        NetStats::count(&self.shared.stats.rx_dropped, 1);
    }

    /// Whether the backend's link is up (a stream peer is connected...).
    pub fn link_up(&self) -> bool {
        self.shared.link_up.load(Ordering::Acquire)
    }

    /// A number that changes whenever the link went up or down.
    pub fn link_epoch(&self) -> u64 {
        self.shared.link_epoch.load(Ordering::Acquire)
    }

    /// The counters, to read after the NIC is gone into its machine.
    pub fn stats_handle(&self) -> Arc<NetStats> {
        self.shared.stats.clone()
    }

    /// Called (on a backend thread) whenever frames arrive or the link changes.
    pub fn set_waker(&self, waker: Waker) {
        *self.shared.waker.lock_recover() = Some(waker);
    }

    /// The counters.
    pub fn stats(&self) -> &NetStats {
        &self.shared.stats
    }
}

impl Drop for NetPort {
    fn drop(&mut self) {
        self.shared.nic_gone.store(true, Ordering::Release);
    }
}

impl BackendPort {
    /// Delivers a frame from the network to the NIC and wakes the machine;
    /// returns whether it was taken (a full queue, a frame larger than
    /// [`MAX_FRAME`] or a link down drops it, counted). Never blocks.
    pub fn deliver(&self, frame: Frame) -> bool {
        let stats = &self.shared.stats;
        if frame.len() > MAX_FRAME || !self.shared.link_up.load(Ordering::Acquire) {
            NetStats::count(&stats.rx_dropped, 1);
            return false;
        }
        if let Some(capture) = &self.shared.capture {
            capture.record(&frame);
        }
        let len = frame.len() as u64;
        let taken = self.to_nic.try_send(frame).is_ok();
        if taken {
            NetStats::count(&stats.rx_frames, 1);
            NetStats::count(&stats.rx_bytes, len);
            self.shared.wake();
        } else {
            NetStats::count(&stats.rx_dropped, 1);
        }
        taken
    }

    /// The next frame the guest sent, waiting for one; `None` once the NIC's
    /// port is gone (the machine ended): the backend should stop.
    pub fn recv(&self) -> Option<Frame> {
        self.from_nic.recv().ok()
    }

    /// The next frame the guest sent, waiting at most `timeout`.
    pub fn recv_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> Result<Frame, crossbeam_channel::RecvTimeoutError> {
        self.from_nic.recv_timeout(timeout)
    }

    /// The channel of frames the guest sent, for `select!` with other sources.
    pub fn frames_from_nic(&self) -> &Receiver<Frame> {
        &self.from_nic
    }

    /// Sets the link state the guest sees, waking the machine on a change.
    pub fn set_link(&self, up: bool) {
        if self.shared.link_up.swap(up, Ordering::AcqRel) != up {
            self.shared.link_epoch.fetch_add(1, Ordering::AcqRel);
            // Frames queued for a link that went away are stale.
            if !up {
                while self.from_nic.try_recv().is_ok() {}
            }
            self.shared.wake();
        }
    }

    /// The counters.
    pub fn stats(&self) -> &NetStats {
        &self.shared.stats
    }

    /// Whether the NIC's port still exists.
    pub fn nic_present(&self) -> bool {
        !self.shared.nic_gone.load(Ordering::Acquire)
    }
}

pub mod dgram;
pub mod open;
pub mod pcap;
pub mod spec;
pub mod stream;
pub mod switch;
pub mod user;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_pass_both_ways_and_are_counted() {
        let (nic, backend) = port_pair(None);
        let woken = Arc::new(AtomicU64::new(0));
        let counter = woken.clone();
        nic.set_waker(Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        }));
        assert!(nic.send(vec![1; 60]));
        assert_eq!(backend.recv(), Some(vec![1; 60]));
        assert!(backend.deliver(vec![2; 64]));
        assert_eq!(woken.load(Ordering::Relaxed), 1);
        assert!(nic.has_frames());
        assert_eq!(nic.try_recv(), Some(vec![2; 64]));
        assert_eq!(nic.try_recv(), None);
        let stats = nic.stats();
        assert_eq!(stats.tx_bytes.load(Ordering::Relaxed), 60);
        assert_eq!(stats.rx_bytes.load(Ordering::Relaxed), 64);
    }

    #[test]
    fn a_flood_is_dropped_and_counted_not_queued_without_bound() {
        let (nic, backend) = port_pair(None);
        for _ in 0..QUEUE_FRAMES + 10 {
            nic.send(vec![0; 60]);
            backend.deliver(vec![0; 60]);
        }
        assert_eq!(nic.stats().tx_dropped.load(Ordering::Relaxed), 10);
        assert_eq!(nic.stats().rx_dropped.load(Ordering::Relaxed), 10);
        assert!(!backend.deliver(vec![0; MAX_FRAME + 1]));
    }

    #[test]
    fn a_link_down_drops_frames_and_is_seen_by_the_nic() {
        let (nic, backend) = port_pair(None);
        let epoch = nic.link_epoch();
        backend.set_link(false);
        assert!(!nic.link_up());
        assert_ne!(nic.link_epoch(), epoch);
        assert!(!nic.send(vec![0; 60]));
        assert!(!backend.deliver(vec![0; 60]));
        backend.set_link(true);
        assert!(nic.send(vec![0; 60]));
    }

    #[test]
    fn the_backend_learns_when_the_nic_is_gone() {
        let (nic, backend) = port_pair(None);
        assert!(backend.nic_present());
        drop(nic);
        assert!(!backend.nic_present());
        assert_eq!(backend.recv(), None);
    }
}
