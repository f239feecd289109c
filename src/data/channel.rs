//! The data channel: how the next data connection will be made (a
//! `DataPlan`) and the descriptors held for it, changed together and
//! cleared in one place.

use crate::data::active::DataPlan;
use crate::data::passive::Passive;
use crate::sys::budget::FdPermit;
use std::net::SocketAddr;

/// How the next data connection will be made, with the descriptors held
/// for it. A plan serves one transfer: a transfer takes it (`take`), ABOR
/// and a new PORT or PASV replace it, like vsftpd's `port_cleanup` and
/// `pasv_cleanup`.
pub struct DataChannel {
    plan: DataPlan,
    /// Descriptors held for a passive listener and its transfer (active
    /// mode takes its own when the transfer starts).
    fds: Option<FdPermit>,
}

impl Default for DataChannel {
    fn default() -> DataChannel {
        DataChannel {
            plan: DataPlan::None,
            fds: None,
        }
    }
}

impl DataChannel {
    /// No plan: a transfer now gets 425 until PORT, EPRT, PASV or EPSV.
    pub fn clear(&mut self) {
        *self = DataChannel::default();
    }

    /// Takes the plan and its descriptors for a transfer; the channel is
    /// clear after, whatever the transfer does.
    pub fn take(&mut self) -> DataChannel {
        std::mem::take(self)
    }

    /// The plan, for the session's wait to watch (session/early.rs).
    pub fn plan(&self) -> &DataPlan {
        &self.plan
    }

    /// Moves the plan on while the session waits for a command (a passive
    /// connection accepted, then secured); the descriptors stay held.
    pub fn replace_plan(&mut self, plan: DataPlan) -> DataPlan {
        std::mem::replace(&mut self.plan, plan)
    }

    pub fn into_parts(self) -> (DataPlan, Option<FdPermit>) {
        (self.plan, self.fds)
    }

    pub fn active(addr: SocketAddr) -> DataChannel {
        DataChannel {
            plan: DataPlan::Active(addr),
            fds: None,
        }
    }

    pub fn passive(listener: Passive, fds: FdPermit) -> DataChannel {
        DataChannel {
            plan: DataPlan::Passive(listener),
            fds: Some(fds),
        }
    }
}
