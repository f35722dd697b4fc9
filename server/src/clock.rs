//! Partition time from the cluster's clocks, not from one node's.
//!
//! The leader stamps every entry with a timestamp, and the state machine reads time only
//! from entries: hold expiry, 24-hour flows and hourly series all follow it. If the leader
//! used its own wall clock, one node started an hour ahead would stamp an hour into the
//! future as soon as it led (holds expiring early), and the state machine's monotonic clock
//! would then stand still until real time caught up, long after that node was gone.
//!
//! So every node measures its peers' clocks: once a second it sends each peer a ping with
//! its monotonic time `m1`; the peer answers with its wall time `w`; when the answer arrives
//! at monotonic `m2`, the peer's wall clock read `w + (m2 − m1) / 2` then, known within half
//! the round trip. A sample keeps the peer's wall clock *relative to this node's monotonic
//! clock*, so a jump of this node's own wall clock (an NTP step, a restart under `faketime`)
//! does not make old samples lie. [`ClusterClock::now`] is the *median* of every clock heard in
//! the last [`SAMPLE_AGE_MAX`] — this node's own wall clock and each peer's, all carried forward
//! on the monotonic clock — with an even count, the lower of the two middle values.
//!
//! The bound: when a majority of the voters' clocks agree, partition time follows them
//! within half the largest round trip, whatever the leader's clock says. A leader whose clock
//! is ahead of the others cannot move time forward; one that is behind holds it at most at
//! the majority's time (entries are still ordered: the state machine keeps time monotonic).
//! With only two clocks heard (one of three voters away) the lower one is taken, so a fast
//! clock can never push time ahead; a slow one can only hold it back. Until a node has heard
//! from enough peers that, with itself, they are a majority of the voters
//! ([`ClusterClock::agreed`] is `None`), it does not know the cluster's time, and a leader then
//! advances partition time by its monotonic clock only (`replica.rs`) — so a node restarted
//! with its clock an hour ahead cannot stamp the hour in before its first pings come back.
//!
//! Sans-IO: the caller passes every time in; the node feeds it from peer messages, the
//! simulator from its own network.

use std::collections::BTreeMap;

/// Samples older than this (in the caller's monotonic nanoseconds) no longer count: three
/// rounds of pings, so that one lost answer does not make a peer's clock vanish, while a
/// peer whose clock changed is heard anew soon.
pub const SAMPLE_AGE_MAX: u64 = 3_000_000_000;
/// A sample whose round trip took longer than this is discarded: its error would be large.
pub const ROUND_TRIP_MAX: u64 = 2_000_000_000;

#[derive(Clone, Copy, Debug)]
struct Sample {
    /// The peer's wall clock minus our monotonic clock, in nanoseconds.
    offset: i128,
    /// When it was taken, in the caller's monotonic nanoseconds.
    at: u64,
}

/// The cluster's clock as this node sees it. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct ClusterClock {
    samples: BTreeMap<u64, Sample>,
}

impl ClusterClock {
    /// A clock that has heard from no peer yet.
    pub fn new() -> ClusterClock {
        ClusterClock::default()
    }

    /// Records peer `peer`'s answer to a ping sent at our monotonic time `sent`, carrying its
    /// wall time `theirs`, received at our monotonic time `received`.
    pub fn sample(&mut self, peer: u64, sent: u64, theirs: u64, received: u64) {
        if received < sent || received - sent > ROUND_TRIP_MAX {
            return;
        }
        let peer_now = i128::from(theirs) + i128::from(received - sent) / 2;
        self.samples.insert(
            peer,
            Sample {
                offset: peer_now - i128::from(received),
                at: received,
            },
        );
    }

    /// Forgets samples older than [`SAMPLE_AGE_MAX`] at monotonic time `monotonic`.
    fn fresh(&self, monotonic: u64) -> impl Iterator<Item = &Sample> {
        self.samples
            .values()
            .filter(move |s| monotonic.saturating_sub(s.at) <= SAMPLE_AGE_MAX)
    }

    /// The cluster's time minus this node's wall clock `wall` (0 with no fresh samples).
    pub fn offset(&self, wall: u64, monotonic: u64) -> i128 {
        i128::from(self.now(wall, monotonic)) - i128::from(wall)
    }

    /// The cluster's time now, given this node's wall clock `wall` and monotonic time.
    pub fn now(&self, wall: u64, monotonic: u64) -> u64 {
        let own = i128::from(wall) - i128::from(monotonic);
        let mut offsets: Vec<i128> = std::iter::once(own)
            .chain(self.fresh(monotonic).map(|s| s.offset))
            .collect();
        offsets.sort_unstable();
        let time = offsets[(offsets.len() - 1) / 2] + i128::from(monotonic);
        time.clamp(0, i128::from(u64::MAX)) as u64
    }

    /// How many peers' clocks count now.
    pub fn peers_heard(&self, monotonic: u64) -> usize {
        self.fresh(monotonic).count()
    }

    /// The cluster's time, if this node heard from enough peers that with it they are a
    /// majority of `voters`; else `None`.
    pub fn agreed(&self, wall: u64, monotonic: u64, voters: usize) -> Option<u64> {
        let needed = (voters / 2 + 1).saturating_sub(1);
        (self.peers_heard(monotonic) >= needed).then(|| self.now(wall, monotonic))
    }
}

/// This process's wall clock, in nanoseconds since the Unix epoch.
pub fn wall_nanos() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

/// This process's monotonic clock, in nanoseconds since its first use.
pub fn monotonic_nanos() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A node's [`ClusterClock`] on the real clocks, shared by its partition workers and fed by
/// the peer transport.
pub struct NodeClock {
    clock: std::sync::Mutex<ClusterClock>,
    voters: usize,
}

impl NodeClock {
    /// The clock of a node among `voters` voters.
    pub fn new(voters: usize) -> NodeClock {
        NodeClock {
            clock: std::sync::Mutex::new(ClusterClock::new()),
            voters,
        }
    }

    /// The time now, as the replicas take it.
    pub fn now(&self) -> crate::replica::Now {
        use tally_engine::types::Timestamp;
        let clock = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        let (wall, monotonic) = (wall_nanos(), monotonic_nanos());
        crate::replica::Now {
            cluster: clock.agreed(wall, monotonic, self.voters).map(Timestamp),
            wall: Timestamp(wall),
            monotonic,
        }
    }

    /// Records a peer's answer to a ping sent at monotonic time `sent`.
    pub fn sample(&self, peer: u64, sent: u64, theirs: u64) {
        let mut clock = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        clock.sample(peer, sent, theirs, monotonic_nanos());
    }

    /// How far this node's clock is from the cluster's, in nanoseconds (positive: ahead).
    pub fn skew(&self) -> i128 {
        let clock = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        -clock.offset(wall_nanos(), monotonic_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000_000_000;
    const T: u64 = 1_700_000_000_000_000_000;

    /// A peer answering a ping sent at monotonic 1_000, received at 3_000, with wall `theirs`.
    fn heard(clock: &mut ClusterClock, peer: u64, theirs: u64) {
        clock.sample(peer, 1_000, theirs, 3_000);
    }

    #[test]
    fn a_leader_ahead_follows_the_majority() {
        // This node is an hour ahead; both peers agree with each other.
        let mut clock = ClusterClock::new();
        heard(&mut clock, 2, T);
        heard(&mut clock, 3, T + 100);
        let now = clock.now(T + HOUR + 2_000, 3_000);
        assert!(
            now.abs_diff(T + 1_000) < 1_000,
            "{}",
            now.abs_diff(T + 1_000)
        );
    }

    #[test]
    fn one_peer_ahead_changes_nothing() {
        let mut clock = ClusterClock::new();
        heard(&mut clock, 2, T + HOUR);
        heard(&mut clock, 3, T);
        assert!(clock.now(T + 1_000, 3_000).abs_diff(T + 1_000) < 1_000);
        // With only the fast peer heard, the lower clock (ours) wins.
        let mut clock = ClusterClock::new();
        heard(&mut clock, 2, T + HOUR);
        assert_eq!(clock.now(T + 1_000, 3_000), T + 1_000);
    }

    #[test]
    fn a_jump_of_its_own_clock_does_not_move_the_cluster_time() {
        let mut clock = ClusterClock::new();
        heard(&mut clock, 2, T);
        heard(&mut clock, 3, T);
        let before = clock.now(T + 1_000, 3_000);
        // Later, this node's wall clock jumps an hour ahead; the samples still hold.
        let after = clock.now(T + HOUR + 501_000, 503_000);
        assert!(after.abs_diff(before + 500_000) < 1_000);
    }

    #[test]
    fn the_time_is_agreed_only_with_a_majority_of_clocks() {
        let mut clock = ClusterClock::new();
        assert_eq!(
            clock.agreed(T, 0, 1),
            Some(T),
            "a single node agrees with itself"
        );
        assert_eq!(clock.agreed(T, 0, 3), None);
        heard(&mut clock, 2, T);
        assert!(clock.agreed(T, 3_000, 3).is_some());
        assert_eq!(clock.agreed(T, 3_000, 5), None);
    }

    #[test]
    fn stale_and_slow_samples_do_not_count() {
        let mut clock = ClusterClock::new();
        clock.sample(2, 0, T, ROUND_TRIP_MAX + 1);
        assert_eq!(clock.peers_heard(ROUND_TRIP_MAX + 1), 0);
        clock.sample(2, 0, T, 10);
        clock.sample(3, 0, T, 10);
        assert_eq!(clock.peers_heard(SAMPLE_AGE_MAX + 10), 2);
        assert_eq!(clock.peers_heard(SAMPLE_AGE_MAX + 11), 0);
        assert_eq!(clock.now(T + HOUR, SAMPLE_AGE_MAX + 11), T + HOUR);
    }
}
