//! How well this node reaches each peer, and when a leader hands its leadership away.
//!
//! A leader whose links lose packets keeps its leadership: its heartbeats still get through
//! now and then, so no follower's election timeout expires, yet every commit waits on TCP
//! retransmissions. Measured before this module: 30% loss on the leader's peer links cut a
//! cluster's throughput to 0–35% for the whole fault. The followers, which reach each other
//! well, would do better leading.
//!
//! So every node probes each peer twenty times a second (the pings of `clock.rs` double as
//! probes: the pong echoes the ping's send time). A probe answered within [`SLOW`] is good;
//! one answered later, or still unanswered [`SLOW`] after it left, is bad. Over the probes of
//! the last [`WINDOW`] that can be judged (at least [`JUDGED_MIN`] of them), a link is
//! *healthy* if fewer than a quarter were bad, *lossy* if more, *silent* if none was
//! answered. A pong also carries how many healthy links the answerer has.
//!
//! The leader of partition 0 (the others gather on it, `worker.rs`) hands its leadership over
//! when it has too few healthy links to make a quorum with them, and a follower it still
//! reaches (a lossy link, not a silent one) reports enough healthy links to make one — more
//! than the leader has. Then that follower leads with a quorum of good links. When every link
//! is bad, no follower does better and nothing moves, so a uniformly bad network cannot make
//! leadership flap; and a node hands over only after leading for at least one [`WINDOW`] (its
//! evidence must be its own), and tries again — another follower first — once raft-rs gave a
//! transfer that did not happen up (an election timeout).
//!
//! Sans-IO: [`LinkTable`] takes every time from its caller (monotonic nanoseconds); [`Links`]
//! is the node's table on the real clock, fed by the transport.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// How often each peer is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// A probe answered later than this (nanoseconds) is bad. Above the 200 ms minimum TCP
/// retransmission timeout, so that one retransmitted segment makes a probe bad, while the
/// scheduling delays of a loaded machine do not.
pub const SLOW: u64 = 250_000_000;
/// The probes judged are those sent in the last this many nanoseconds.
pub const WINDOW: u64 = 2_000_000_000;
/// Fewer judged probes than this say nothing about a link.
pub const JUDGED_MIN: usize = 10;
/// A peer's report of its healthy links counts for this long after it arrived.
const REPORT_AGE_MAX: u64 = 2_000_000_000;

/// What the probes of one link say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Too few probes judged yet.
    Unknown,
    /// Fewer than a quarter of the judged probes were bad.
    Healthy,
    /// A quarter or more were bad, some were answered.
    Lossy,
    /// None was answered.
    Silent,
}

#[derive(Clone, Debug, Default)]
struct Probes {
    /// (sent, answered at), oldest first; only the last [`WINDOW`] is kept.
    sent: VecDeque<(u64, Option<u64>)>,
    /// The peer's last report of its healthy links, and when it arrived.
    report: Option<(u32, u64)>,
}

/// This node's probes of its peers. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct LinkTable {
    peers: BTreeMap<u64, Probes>,
}

impl LinkTable {
    /// A probe of `peer` left at `at`.
    pub fn sent(&mut self, peer: u64, at: u64) {
        let probes = self.peers.entry(peer).or_default();
        while probes
            .sent
            .front()
            .is_some_and(|&(sent, _)| sent.saturating_add(WINDOW) < at)
        {
            probes.sent.pop_front();
        }
        probes.sent.push_back((at, None));
    }

    /// `peer` answered the probe sent at `sent`, at `at`, reporting `healthy` healthy links.
    /// An answer to no probe of ours (a forged or very late one) changes nothing.
    pub fn answered(&mut self, peer: u64, sent: u64, at: u64, healthy: u32) {
        let Some(probes) = self.peers.get_mut(&peer) else {
            return;
        };
        let Some(probe) = probes
            .sent
            .iter_mut()
            .find(|(s, answered)| *s == sent && answered.is_none())
        else {
            return;
        };
        if at < sent {
            return;
        }
        probe.1 = Some(at);
        probes.report = Some((healthy, at));
    }

    /// The state of the link to `peer` at `now`.
    pub fn state(&self, peer: u64, now: u64) -> LinkState {
        self.judge(peer, now).0
    }

    /// The state of the link to `peer` at `now`, and the share of bad probes (per mille of
    /// those judged; 1000 with none judged).
    fn judge(&self, peer: u64, now: u64) -> (LinkState, u64) {
        let Some(probes) = self.peers.get(&peer) else {
            return (LinkState::Unknown, 1000);
        };
        let (mut judged, mut bad, mut answered) = (0usize, 0usize, 0usize);
        for &(sent, reply) in &probes.sent {
            if sent.saturating_add(WINDOW) < now {
                continue;
            }
            match reply {
                Some(at) => {
                    judged += 1;
                    answered += 1;
                    if at - sent > SLOW {
                        bad += 1;
                    }
                }
                None if now.saturating_sub(sent) > SLOW => {
                    judged += 1;
                    bad += 1;
                }
                None => {}
            }
        }
        let share = (bad as u64 * 1000)
            .checked_div(judged as u64)
            .unwrap_or(1000);
        let state = if judged < JUDGED_MIN {
            LinkState::Unknown
        } else if answered == 0 {
            LinkState::Silent
        } else if bad * 4 >= judged {
            LinkState::Lossy
        } else {
            LinkState::Healthy
        };
        (state, share)
    }

    /// How many of this node's links are healthy at `now`.
    pub fn healthy(&self, now: u64) -> u32 {
        let count = self
            .peers
            .keys()
            .filter(|&&peer| self.state(peer, now) == LinkState::Healthy)
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// `peer`'s latest report of its healthy links, if recent.
    fn report(&self, peer: u64, now: u64) -> Option<u32> {
        let (healthy, at) = self.peers.get(&peer)?.report?;
        (now.saturating_sub(at) <= REPORT_AGE_MAX).then_some(healthy)
    }

    /// To whom a leader with `followers`, among `voters` voters, should hand its leadership
    /// at `now`: `None` while its healthy links make a quorum, or no follower it reaches
    /// would do better. The follower reporting the most healthy links wins; among equals,
    /// one other than `tried` (the target of a handover that did not happen), then the one
    /// this node reaches best, then the lowest id.
    pub fn handover(
        &self,
        followers: &[u64],
        voters: usize,
        now: u64,
        tried: Option<u64>,
    ) -> Option<u64> {
        let needed = u32::try_from(voters / 2).unwrap_or(u32::MAX);
        let own = followers
            .iter()
            .filter(|&&f| self.state(f, now) == LinkState::Healthy)
            .count();
        let own = u32::try_from(own).unwrap_or(u32::MAX);
        if own >= needed {
            return None;
        }
        followers
            .iter()
            .filter_map(|&f| {
                let (state, bad) = self.judge(f, now);
                let reachable = matches!(state, LinkState::Healthy | LinkState::Lossy);
                let theirs = self.report(f, now)?;
                (reachable && theirs >= needed && theirs > own).then_some((theirs, f, bad))
            })
            .min_by_key(|&(theirs, f, bad)| (std::cmp::Reverse(theirs), Some(f) == tried, bad, f))
            .map(|(_, f, _)| f)
    }
}

/// A node's [`LinkTable`] on the real monotonic clock, fed by the transport and read by the
/// partition workers.
#[derive(Debug, Default)]
pub struct Links {
    table: std::sync::Mutex<LinkTable>,
}

impl Links {
    fn table(&self) -> std::sync::MutexGuard<'_, LinkTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A probe of `peer` left at monotonic time `sent`.
    pub fn sent(&self, peer: u64, sent: u64) {
        self.table().sent(peer, sent);
    }

    /// `peer` answered the probe sent at `sent`, reporting `healthy` healthy links.
    pub fn answered(&self, peer: u64, sent: u64, healthy: u32) {
        self.table()
            .answered(peer, sent, crate::clock::monotonic_nanos(), healthy);
    }

    /// How many of this node's links are healthy now.
    pub fn healthy(&self) -> u32 {
        self.table().healthy(crate::clock::monotonic_nanos())
    }

    /// The state of the link to `peer` now.
    pub fn state(&self, peer: u64) -> LinkState {
        self.table().state(peer, crate::clock::monotonic_nanos())
    }

    /// See [`LinkTable::handover`].
    pub fn handover(&self, followers: &[u64], voters: usize, tried: Option<u64>) -> Option<u64> {
        self.table()
            .handover(followers, voters, crate::clock::monotonic_nanos(), tried)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Probes `peer` every [`PROBE_INTERVAL`] from `from` for a [`WINDOW`]; probe `i` is
    /// answered after `rtt(i)` (`None`: never), with `healthy` reported. Returns the time of
    /// the next probe.
    fn probe(
        table: &mut LinkTable,
        peer: u64,
        from: u64,
        healthy: u32,
        rtt: impl Fn(u64) -> Option<u64>,
    ) -> u64 {
        let step = PROBE_INTERVAL.as_nanos() as u64;
        let mut now = from;
        for i in 0..WINDOW / step {
            now = from + i * step;
            table.sent(peer, now);
            if let Some(rtt) = rtt(i) {
                table.answered(peer, now, now + rtt, healthy);
            }
        }
        now + step
    }

    #[test]
    fn links_are_judged_by_their_slow_and_lost_probes() {
        let mut table = LinkTable::default();
        assert_eq!(table.state(2, 0), LinkState::Unknown);
        let now = probe(&mut table, 2, 0, 2, |_| Some(MS));
        assert_eq!(table.state(2, now), LinkState::Healthy);
        // One probe in five lost, one in ten slow: lossy.
        let now = probe(&mut table, 3, 0, 2, |i| match i % 10 {
            0 | 5 => None,
            7 => Some(SLOW + 1),
            _ => Some(MS),
        });
        assert_eq!(table.state(3, now), LinkState::Lossy);
        // One in ten lost: healthy still.
        let now = probe(&mut table, 4, 0, 2, |i| {
            (!i.is_multiple_of(10)).then_some(MS)
        });
        assert_eq!(table.state(4, now), LinkState::Healthy);
        let now = probe(&mut table, 5, 0, 2, |_| None);
        assert_eq!(table.state(5, now), LinkState::Silent);
        // A long-gone window says nothing.
        assert_eq!(table.state(2, now + 2 * WINDOW), LinkState::Unknown);
        assert_eq!(table.healthy(now), 2);
    }

    #[test]
    fn answers_to_no_probe_change_nothing() {
        let mut table = LinkTable::default();
        table.answered(2, 5, 10, 9);
        table.sent(2, 100);
        table.answered(2, 99, 120, 9);
        table.answered(2, 100, 50, 9);
        assert_eq!(table.report(2, 120), None);
        table.answered(2, 100, 120, 1);
        table.answered(2, 100, 130, 9);
        assert_eq!(table.report(2, 130), Some(1));
    }

    #[test]
    fn a_lossy_leader_hands_over_to_a_follower_that_does_better() {
        // Node 1 leads nodes 2 and 3; both its links are lossy, and they reach each other.
        let mut table = LinkTable::default();
        let lossy = |i: u64| (!i.is_multiple_of(3)).then_some(MS);
        probe(&mut table, 2, 0, 1, lossy);
        let now = probe(&mut table, 3, 0, 1, lossy);
        assert_eq!(table.handover(&[2, 3], 3, now, None), Some(2));
        // A follower whose reports say it does no better is no target.
        let mut table = LinkTable::default();
        probe(&mut table, 2, 0, 0, lossy);
        let now = probe(&mut table, 3, 0, 0, lossy);
        assert_eq!(table.handover(&[2, 3], 3, now, None), None, "uniformly bad");
        // One healthy link makes a quorum of three: nothing moves.
        let mut table = LinkTable::default();
        probe(&mut table, 2, 0, 2, |_| Some(MS));
        let now = probe(&mut table, 3, 0, 0, |_| None);
        assert_eq!(table.handover(&[2, 3], 3, now, None), None);
        // A silent follower (killed, paused, cut off) is never the target, whatever it said
        // before; nor is a follower whose report is stale.
        let mut table = LinkTable::default();
        probe(&mut table, 2, 0, 1, |i| (i < 3).then_some(MS));
        let now = probe(&mut table, 3, 0, 1, |i| (i < 3).then_some(MS));
        assert_eq!(table.handover(&[2, 3], 3, now + 5 * SLOW, None), None);
        // Five voters: two healthy links needed; the follower reporting the most wins.
        let mut table = LinkTable::default();
        probe(&mut table, 2, 0, 3, lossy);
        probe(&mut table, 3, 0, 4, lossy);
        probe(&mut table, 4, 0, 4, lossy);
        let now = probe(&mut table, 5, 0, 4, |_| Some(MS));
        assert_eq!(
            table.handover(&[2, 3, 4, 5], 5, now, None),
            Some(5),
            "reached best"
        );
        assert_eq!(
            table.handover(&[2, 3, 4, 5], 5, now, Some(5)),
            Some(3),
            "not again"
        );
        assert_eq!(table.handover(&[2, 3], 3, now, Some(2)), Some(3));
    }
}
