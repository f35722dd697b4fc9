//! Peer Raft messages that must not reach raft-rs: checked before `Replica::step` hands a
//! message over, since raft-rs trusts its peers (it aborts on some messages, and obeys others
//! that only the local node may give it).

use raft::eraftpb::{EntryType, Message, MessageType};

/// Why a peer's message must not reach raft-rs, if it must not: types only raft-rs itself
/// creates locally, proposals and leadership handovers (only a leader proposes or hands over,
/// locally; Tally never has a follower forward either), anything
/// about snapshots (nothing is compacted, so none is ever produced), a sender that is no
/// voter, a term of 0 (raft-rs takes it for a local message; only forwarded read requests
/// carry none), and appends whose entries do not continue each other or carry a context or a
/// kind Tally never writes. Everything else is raft-rs's to judge: it handles stale terms,
/// conflicting logs and unknown indexes without harm.
pub fn refusal(message: &Message, voters: &[u64]) -> Option<&'static str> {
    use MessageType as T;
    let kind = message.get_msg_type();
    if matches!(
        kind,
        T::MsgHup
            | T::MsgBeat
            | T::MsgUnreachable
            | T::MsgSnapStatus
            | T::MsgCheckQuorum
            | T::MsgPropose
            | T::MsgSnapshot
            | T::MsgTransferLeader
    ) {
        return Some("a message type peers never send");
    }
    if message.has_snapshot() {
        return Some("carries a snapshot");
    }
    if !voters.contains(&message.from) {
        return Some("from a node that is not a voter");
    }
    if message.term == 0 && kind != T::MsgReadIndex {
        return Some("term 0");
    }
    if kind == T::MsgAppend {
        let mut expected = message.index;
        let mut previous_term = message.log_term;
        for entry in &message.entries {
            expected = expected.checked_add(1)?;
            if entry.index != expected {
                return Some("entries do not continue the log");
            }
            if entry.term < previous_term || entry.term > message.term {
                return Some("entry terms out of order");
            }
            previous_term = entry.term;
            if !entry.context.is_empty()
                || entry.entry_type == EntryType::EntryConfChangeV2
                || entry.data.len() > tally_engine::segment::ENTRY_PAYLOAD_SIZE_MAX as usize
            {
                return Some("an entry Tally never writes");
            }
        }
    } else if !message.entries.is_empty() && kind != T::MsgReadIndex && kind != T::MsgReadIndexResp
    {
        return Some("entries on a message that carries none");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::Entry as RaftEntry;

    fn append(entries: &[(u64, u64)]) -> Message {
        let mut message = Message {
            from: 2,
            to: 1,
            term: 5,
            index: 10,
            log_term: 4,
            ..Message::default()
        };
        message.set_msg_type(MessageType::MsgAppend);
        message.entries = entries
            .iter()
            .map(|&(index, term)| RaftEntry {
                index,
                term,
                ..RaftEntry::default()
            })
            .collect::<Vec<_>>()
            .into();
        message
    }

    #[test]
    fn forged_and_malformed_peer_messages_are_refused() {
        let voters = [1, 2, 3];
        assert_eq!(refusal(&append(&[(11, 4), (12, 5)]), &voters), None);
        assert!(refusal(&append(&[(12, 5)]), &voters).is_some(), "a gap");
        assert!(
            refusal(&append(&[(11, 5), (12, 4)]), &voters).is_some(),
            "terms back"
        );
        assert!(
            refusal(&append(&[(11, 6)]), &voters).is_some(),
            "a term from the future"
        );
        let mut stranger = append(&[]);
        stranger.from = 9;
        assert!(refusal(&stranger, &voters).is_some());
        let mut untimed = append(&[]);
        untimed.term = 0;
        assert!(refusal(&untimed, &voters).is_some());
        for kind in [
            MessageType::MsgPropose,
            MessageType::MsgHup,
            MessageType::MsgSnapshot,
            MessageType::MsgTransferLeader,
            MessageType::MsgCheckQuorum,
        ] {
            let mut message = append(&[]);
            message.set_msg_type(kind);
            assert!(refusal(&message, &voters).is_some(), "{kind:?}");
        }
        let mut snapshot = append(&[]);
        snapshot.set_msg_type(MessageType::MsgHeartbeat);
        snapshot.mut_snapshot().mut_metadata().index = 7;
        assert!(refusal(&snapshot, &voters).is_some());
        let mut read = append(&[]);
        read.set_msg_type(MessageType::MsgReadIndex);
        read.term = 0;
        read.entries = vec![RaftEntry::default()].into();
        assert_eq!(
            refusal(&read, &voters),
            None,
            "a forwarded read carries its context"
        );
    }
}
