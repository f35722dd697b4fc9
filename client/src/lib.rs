//! Tally client (not yet implemented: see the open issues).
