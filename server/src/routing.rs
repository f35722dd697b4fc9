//! Which partition each event of a batch goes to: the routing rules of `docs/protocol.md`
//! ("Partitioning"), shared by the sessions and the simulator.
//!
//! An account belongs to `partition_of(id, P)`. A transfer belongs to its debit account's
//! partition, or its credit account's when the debit is zero; a post, void or refund that
//! names neither belongs to the partition that holds the original, which the caller must
//! find ([`transfer_partitions`] lists those). A transfer whose accounts live in different
//! partitions, and a linked chain whose members do, is routed nowhere (`None`): it is
//! answered with result 1000 and nothing of it is applied.

use std::collections::BTreeMap;

use tally_client::wire::partition_of;
use tally_engine::command::NewTransfer;
use tally_engine::types::TransferId;

/// Each transfer's partition (`None`: it spans two), and the transfers that name neither
/// account, with the transfer they refer to (the hold posted or voided, or the transfer
/// refunded): their partition is the one holding that transfer, which the caller finds and
/// fills in. With one partition, everything goes to it.
pub fn transfer_partitions(
    events: &[NewTransfer],
    count: u32,
) -> (Vec<Option<u32>>, Vec<(usize, TransferId)>) {
    let mut partitions = Vec::with_capacity(events.len());
    let mut unresolved = Vec::new();
    for (i, t) in events.iter().enumerate() {
        let debit = (t.debit_account.0 != 0).then(|| partition_of(t.debit_account.0, count));
        let credit = (t.credit_account.0 != 0).then(|| partition_of(t.credit_account.0, count));
        partitions.push(match (debit, credit) {
            (Some(d), Some(c)) if d != c => None,
            (Some(d), _) => Some(d),
            (None, Some(c)) => Some(c),
            (None, None) if count == 1 => Some(0),
            (None, None) => {
                let reference = if t.pending_id.0 != 0 {
                    t.pending_id
                } else {
                    t.refund_of
                };
                unresolved.push((i, reference));
                Some(0)
            }
        });
    }
    (partitions, unresolved)
}

/// Splits events into linked chains (index ranges) by the original batch's rule: a chain
/// runs from a linked event through the first event without the flag.
pub fn chains(linked: &[bool]) -> Vec<(usize, usize)> {
    let mut chains = Vec::new();
    let mut start = 0;
    while start < linked.len() {
        let mut end = start;
        while linked[end] && end + 1 < linked.len() {
            end += 1;
        }
        chains.push((start, end));
        start = end + 1;
    }
    chains
}

/// Assigns each event a partition, or `None` when it (or its chain) spans partitions.
pub fn route(partitions: &[Option<u32>], linked: &[bool]) -> Vec<Option<u32>> {
    let mut routed = partitions.to_vec();
    for (start, end) in chains(linked) {
        let first = partitions[start];
        if partitions[start..=end]
            .iter()
            .any(|p| p.is_none() || *p != first)
        {
            for slot in &mut routed[start..=end] {
                *slot = None;
            }
        }
    }
    routed
}

/// Groups routed events by partition, keeping their order; returns the groups and, per
/// partition, the original positions.
pub fn group<T: Clone>(events: &[T], routed: &[Option<u32>]) -> BTreeMap<u32, Vec<(usize, T)>> {
    let mut groups: BTreeMap<u32, Vec<(usize, T)>> = BTreeMap::new();
    for (i, (event, partition)) in events.iter().zip(routed).enumerate() {
        if let Some(partition) = partition {
            groups
                .entry(*partition)
                .or_default()
                .push((i, event.clone()));
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_follow_the_linked_rule() {
        assert_eq!(
            chains(&[false, true, true, false, false]),
            vec![(0, 0), (1, 3), (4, 4)]
        );
        assert_eq!(chains(&[true, true]), vec![(0, 1)]);
        assert_eq!(chains(&[]), Vec::<(usize, usize)>::new());
    }

    #[test]
    fn a_chain_spanning_partitions_is_rejected_whole() {
        let routed = route(
            &[Some(0), Some(0), Some(1), Some(1)],
            &[false, true, false, false],
        );
        assert_eq!(routed, vec![Some(0), None, None, Some(1)]);
        let routed = route(&[Some(2), None, Some(2)], &[false, false, false]);
        assert_eq!(routed, vec![Some(2), None, Some(2)]);
    }
}
