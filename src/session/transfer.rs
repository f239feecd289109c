//! Transfers: REST, and RETR, STOR, APPE, STOU, LIST, NLST, MLSD (RFC 959
//! §4.1.3, RFC 3659 §5, §7) resolved into a `Job` before the data
//! connection opens: the paths checked, the data channel taken (the
//! session's is clear from then on, whatever the transfer does). `steps.rs`
//! runs the job.

use super::login::LoggedIn;
use super::{Flow, Handled, Session};
use crate::config::User;
use crate::data::channel::DataChannel;
use crate::protocol::command::{Name, Type};
use crate::protocol::listing::Format;
use crate::protocol::reply::Code;
use crate::storage::jail::VirtualPath;
use crate::sys::random;
use std::path::PathBuf;
use std::sync::Arc;

/// A transfer, with everything resolved before the data connection opens.
pub(super) struct Job {
    /// The verb, for the counters and the transfer log line.
    pub(super) verb: &'static str,
    pub(super) virt: VirtualPath,
    pub(super) work: Work,
    /// The plan and descriptors PORT or PASV left, taken from the session.
    pub(super) channel: DataChannel,
    /// The user's canonical home: files are opened beneath it
    /// (`jail::open_beneath`).
    pub(super) home: PathBuf,
    pub(super) kind: Type,
    /// Whose upload it is (delivery's object key template).
    pub(super) user: Arc<User>,
}

/// What the data connection carries.
pub(super) enum Work {
    Retr {
        real: PathBuf,
        offset: u64,
    },
    /// STOR, APPE (`prefix` all of the file) and STOU (`unique`).
    Store {
        target: PathBuf,
        prefix: Option<u64>,
        unique: bool,
    },
    List {
        real: PathBuf,
        format: Format,
    },
}

impl LoggedIn {
    /// The job for `work` on `virt`: takes the data channel.
    fn job(&mut self, verb: &'static str, virt: VirtualPath, work: Work) -> Job {
        Job {
            verb,
            virt,
            work,
            channel: self.data.take(),
            home: self.jail.home().to_path_buf(),
            kind: self.kind,
            user: self.user.clone(),
        }
    }
}

fn format_verb(format: Format) -> &'static str {
    match format {
        Format::List => "LIST",
        Format::Nlst => "NLST",
        Format::Mlsd => "MLSD",
    }
}

impl Session {
    pub(super) fn set_rest(&mut self, me: &mut LoggedIn, offset: u64) -> Handled {
        me.rest = offset;
        self.answer(
            Code::PendingFurtherInformation,
            format_args!("restarting at {offset}; send STOR or RETR"),
        )
    }

    /// LIST, NLST and MLSD: of the current directory without an argument.
    pub(super) async fn list(
        &mut self,
        me: &mut LoggedIn,
        arg: Option<Name<'_>>,
        format: Format,
    ) -> Handled {
        self.require(me.may().list)?;
        let path = match arg {
            Some(arg) => self.resolve(me, arg)?,
            None => me.cwd.clone(),
        };
        let real = self.existing(&me.jail, &path).await?;
        let is_dir = super::files::stat(&me.jail, real.clone())
            .await
            .is_ok_and(|m| m.is_dir());
        if format == Format::Mlsd && !is_dir {
            return self.answer(Code::FileUnavailable, format_args!("not a directory"));
        }
        let work = Work::List { real, format };
        Ok(Flow::Transfer(me.job(format_verb(format), path, work)))
    }

    /// RETR from `rest`, the REST offset (0 without one).
    pub(super) async fn retr(&mut self, me: &mut LoggedIn, arg: Name<'_>, rest: u64) -> Handled {
        self.require(me.may().retrieve)?;
        let path = self.resolve(me, arg)?;
        let real = self.existing(&me.jail, &path).await?;
        match async_fs::metadata(&real).await {
            Ok(meta) if meta.is_file() => {
                if rest > meta.len() {
                    return self.answer(
                        Code::SyntaxErrorInArguments,
                        format_args!("restart offset beyond the end of the file"),
                    );
                }
                let work = Work::Retr { real, offset: rest };
                Ok(Flow::Transfer(me.job("RETR", path, work)))
            }
            Ok(_) => self.answer(Code::FileUnavailable, format_args!("not a plain file")),
            Err(e) => Err(self.refuse_io(e)),
        }
    }

    /// STOR (from `rest` when REST was sent) and APPE.
    pub(super) async fn stor(
        &mut self,
        me: &mut LoggedIn,
        arg: Name<'_>,
        rest: u64,
        append: bool,
    ) -> Handled {
        self.require(me.may().store)?;
        let path = self.resolve(me, arg)?;
        if me.auto_mkdir() {
            // Cameras store into `2026/12/01/cam1/img.jpg` without MKD.
            self.make_dirs(&me.jail, &path.parent()).await?;
        }
        let target = self.entry(&me.jail, &path).await?;
        if async_fs::metadata(&target).await.is_ok_and(|m| m.is_dir()) {
            return self.answer(Code::FileUnavailable, format_args!("is a directory"));
        }
        let prefix = match (append, rest) {
            (true, _) => Some(u64::MAX),
            (false, 0) => None,
            (false, offset) => Some(offset),
        };
        let verb = if append { "APPE" } else { "STOR" };
        let work = Work::Store {
            target,
            prefix,
            unique: false,
        };
        Ok(Flow::Transfer(me.job(verb, path, work)))
    }

    /// STOU: a new name in the current directory, told in the 150 reply.
    pub(super) async fn stou(&mut self, me: &mut LoggedIn) -> Handled {
        self.require(me.may().store)?;
        let name = format!("lakeftpd-{}", random::hex_name::<6>());
        let path = self.resolve(me, Name::from(name.as_str()))?;
        let target = self.entry(&me.jail, &path).await?;
        let work = Work::Store {
            target,
            prefix: None,
            unique: true,
        };
        Ok(Flow::Transfer(me.job("STOU", path, work)))
    }
}
