//! What a proxy has ACKed so far and what it subscribes to beyond the wildcards: the
//! condition "synced" (every type it asked for ACKed at least once since its subscription
//! last changed).

use std::collections::BTreeSet;

use crate::subscriptions::{CDS, EDS, LDS, RDS};

#[derive(Default)]
pub struct Progress {
    pub cds_acked: bool,
    pub lds_acked: bool,
    pub eds_acked: bool,
    pub rds_acked: bool,
    pub eds_names: BTreeSet<String>,
    pub rds_names: BTreeSet<String>,
}

impl Progress {
    pub fn acked(&mut self, type_url: &str) {
        match type_url {
            CDS => self.cds_acked = true,
            LDS => self.lds_acked = true,
            EDS => self.eds_acked = true,
            RDS => self.rds_acked = true,
            _ => {}
        }
    }

    /// Replaces the EDS names; true when they changed (a new request is then due and EDS
    /// counts as not ACKed until a response to it is).
    pub fn set_eds(&mut self, names: BTreeSet<String>) -> bool {
        if names == self.eds_names {
            return false;
        }
        self.eds_names = names;
        self.eds_acked = false;
        true
    }

    pub fn set_rds(&mut self, names: BTreeSet<String>) -> bool {
        if names == self.rds_names {
            return false;
        }
        self.rds_names = names;
        self.rds_acked = false;
        true
    }

    pub fn synced(&self) -> bool {
        self.cds_acked
            && self.lds_acked
            && (self.eds_acked || self.eds_names.is_empty())
            && (self.rds_acked || self.rds_names.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_needs_every_subscribed_type_acked() {
        let mut p = Progress::default();
        p.acked(CDS);
        assert!(p.set_eds(["a".to_string()].into()));
        p.acked(LDS);
        assert!(!p.synced(), "EDS subscribed but not ACKed");
        p.acked(EDS);
        assert!(p.synced(), "no RDS names: RDS not needed");
        assert!(p.set_rds(["80".to_string()].into()));
        assert!(!p.synced());
        p.acked(RDS);
        assert!(p.synced());
        assert!(
            !p.set_rds(["80".to_string()].into()),
            "same names: no new request"
        );
    }
}
