//! Commands on files and directories, without a data connection: PWD,
//! CWD, CDUP, MKD, RMD, DELE, RNFR, RNTO, SIZE, MDTM (RFC 959 §4.1.3,
//! RFC 3659 §3–4), MLST (RFC 3659 §7), and setting a file's time (MDTM's
//! write form, MFMT, SITE UTIME). Every name is decoded from the session's
//! encoding, then goes through the jail.

use super::login::LoggedIn;
use super::{Flow, Handled, Replied, Session};
use crate::clock::Utc;
use crate::protocol::command::{Name, SetTime};
use crate::protocol::listing::{self, Entry};
use crate::protocol::reply::{Code, Quoted, Reply};
use crate::storage::beneath;
use crate::storage::dirs::{self, MakeError};
use crate::storage::jail::{self, Jail, VirtualPath};
use std::path::PathBuf;

impl Session {
    /// `allowed`, or a 550 refusal.
    pub(super) fn require(&mut self, allowed: bool) -> Result<(), Replied> {
        if allowed {
            Ok(())
        } else {
            Err(self.refuse(Code::FileUnavailable, format_args!("permission denied")))
        }
    }

    /// The virtual path `arg` names from the current directory: decoded
    /// from the session's encoding (553 when it is not valid there), then
    /// resolved by the jail.
    pub(super) fn resolve(&mut self, me: &LoggedIn, arg: Name<'_>) -> Result<VirtualPath, Replied> {
        let Some(text) = self.encoding().decode(arg.0) else {
            return Err(self.refuse_undecodable());
        };
        jail::resolve(&me.cwd, &text).map_err(|e| self.refuse_path(e))
    }

    /// Makes `dir` and the directories above it (`auto_mkdir`), durably.
    pub(super) async fn make_dirs(
        &mut self,
        jail: &Jail,
        dir: &VirtualPath,
    ) -> Result<usize, Replied> {
        match dirs::make_all(jail, dir).await {
            Ok(made) => Ok(made),
            Err(MakeError::Jail(e)) => Err(self.refuse_path(e)),
            Err(MakeError::Io(e)) => Err(self.refuse_io(e)),
        }
    }

    /// The real path of an existing file or directory.
    pub(super) async fn existing(
        &mut self,
        jail: &Jail,
        path: &VirtualPath,
    ) -> Result<PathBuf, Replied> {
        match jail.existing(path).await {
            Ok(real) => Ok(real),
            Err(e) => Err(self.refuse_path(e)),
        }
    }

    /// The real path of an entry that may not exist yet (its parent does).
    pub(super) async fn entry(
        &mut self,
        jail: &Jail,
        path: &VirtualPath,
    ) -> Result<PathBuf, Replied> {
        match jail.entry(path).await {
            Ok(real) => Ok(real),
            Err(e) => Err(self.refuse_path(e)),
        }
    }

    pub(super) fn pwd(&mut self, me: &LoggedIn) -> Handled {
        say!(
            self,
            Code::PathCreated,
            "{} is the current directory",
            Quoted(me.cwd.as_str())
        )?;
        Ok(Flow::Continue)
    }

    /// CWD, and CDUP as `CWD ..`.
    pub(super) async fn cwd(&mut self, me: &mut LoggedIn, arg: Name<'_>) -> Handled {
        let path = self.resolve(me, arg)?;
        let real = self.existing(&me.jail, &path).await?;
        match stat(&me.jail, real).await {
            Ok(meta) if meta.is_dir() => {
                me.cwd = path;
                say!(
                    self,
                    Code::FileActionOk,
                    "directory changed to {}",
                    me.cwd.as_str()
                )?;
                Ok(Flow::Continue)
            }
            Ok(_) => self.answer(Code::FileUnavailable, format_args!("not a directory")),
            Err(e) => Err(self.refuse_io(e)),
        }
    }

    pub(super) async fn mkd(&mut self, me: &mut LoggedIn, arg: Name<'_>) -> Handled {
        self.require(me.may().mkdir)?;
        let path = self.resolve(me, arg)?;
        if me.auto_mkdir() {
            // `MKD a/b/c` makes the parents too.
            return match self.make_dirs(&me.jail, &path).await? {
                0 => self.answer(Code::FileUnavailable, format_args!("already exists")),
                _ => self.answer(
                    Code::PathCreated,
                    format_args!("{} created", Quoted(path.as_str())),
                ),
            };
        }
        let real = self.entry(&me.jail, &path).await?;
        // 257 promises the directory: it must survive a power cut, with the
        // files later stored in it (storage/durable.rs).
        let home = me.jail.home().to_path_buf();
        let made = smol::unblock(move || beneath::Entry::open(&home, &real)?.make_dir()).await;
        match made {
            Ok(()) => self.answer(
                Code::PathCreated,
                format_args!("{} created", Quoted(path.as_str())),
            ),
            Err(e) => Err(self.refuse_io(e)),
        }
    }

    pub(super) async fn rmd(&mut self, me: &mut LoggedIn, arg: Name<'_>) -> Handled {
        self.require(me.may().modify)?;
        let path = self.resolve(me, arg)?;
        if path.is_root() {
            return self.answer(
                Code::FileUnavailable,
                format_args!("cannot remove the home directory"),
            );
        }
        let real = self.entry(&me.jail, &path).await?;
        let home = me.jail.home().to_path_buf();
        match smol::unblock(move || beneath::Entry::open(&home, &real)?.remove_dir()).await {
            Ok(()) => self.answer(Code::FileActionOk, format_args!("directory removed")),
            Err(e) => Err(self.refuse_io(e)),
        }
    }

    pub(super) async fn dele(&mut self, me: &mut LoggedIn, arg: Name<'_>) -> Handled {
        self.require(me.may().modify)?;
        let path = self.resolve(me, arg)?;
        let real = self.entry(&me.jail, &path).await?;
        let home = me.jail.home().to_path_buf();
        match smol::unblock(move || beneath::Entry::open(&home, &real)?.remove_file()).await {
            Ok(()) => self.answer(Code::FileActionOk, format_args!("file deleted")),
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => self.answer(
                Code::FileUnavailable,
                format_args!("is a directory; use RMD"),
            ),
            Err(e) => Err(self.refuse_io(e)),
        }
    }

    pub(super) async fn rnfr(&mut self, me: &mut LoggedIn, arg: Name<'_>) -> Handled {
        self.require(me.may().modify)?;
        let path = self.resolve(me, arg)?;
        let real = self.entry(&me.jail, &path).await?;
        let (home, at) = (me.jail.home().to_path_buf(), real.clone());
        match smol::unblock(move || beneath::Entry::open(&home, &at)?.kind()).await {
            Ok(_) => {
                me.rename_from = Some((real, path));
                self.answer(
                    Code::PendingFurtherInformation,
                    format_args!("ready for RNTO"),
                )
            }
            Err(e) => Err(self.refuse_io(e)),
        }
    }

    pub(super) async fn rnto(&mut self, me: &mut LoggedIn, arg: Name<'_>) -> Handled {
        self.require(me.may().modify)?;
        let Some((from, _)) = me.rename_from.take() else {
            return self.answer(Code::BadSequence, format_args!("RNFR first"));
        };
        let path = self.resolve(me, arg)?;
        let real = self.entry(&me.jail, &path).await?;
        // 250 promises the new name (and the old one gone) after a power cut.
        let home = me.jail.home().to_path_buf();
        let renamed = smol::unblock(move || {
            // Both directories reopened beneath the home now: RNFR's check
            // is a command ago.
            beneath::Entry::open(&home, &from)?.rename_to(&beneath::Entry::open(&home, &real)?)
        })
        .await;
        match renamed {
            Ok(()) => self.answer(Code::FileActionOk, format_args!("renamed")),
            Err(e) => Err(self.refuse_io(e)),
        }
    }

    /// SIZE and MDTM (RFC 3659 §4, §3): of plain files only.
    pub(super) async fn size_or_mdtm(
        &mut self,
        me: &mut LoggedIn,
        arg: Name<'_>,
        size: bool,
    ) -> Handled {
        self.require(me.may().list)?;
        let path = self.resolve(me, arg)?;
        let real = self.existing(&me.jail, &path).await?;
        match stat(&me.jail, real).await {
            Ok(meta) if meta.is_file() => {
                let entry = Entry::from_metadata(&meta);
                if size {
                    self.answer(Code::FileStatus, format_args!("{}", entry.size))
                } else {
                    let time = crate::clock::Utc::from_unix(entry.mtime).time_val();
                    self.answer(Code::FileStatus, format_args!("{time}"))
                }
            }
            Ok(_) => self.answer(Code::FileUnavailable, format_args!("not a plain file")),
            Err(e) => Err(self.refuse_io(e)),
        }
    }

    pub(super) async fn mlst(&mut self, me: &mut LoggedIn, arg: Option<Name<'_>>) -> Handled {
        self.require(me.may().list)?;
        let path = match arg {
            Some(arg) => self.resolve(me, arg)?,
            None => me.cwd.clone(),
        };
        let real = self.existing(&me.jail, &path).await?;
        match stat(&me.jail, real).await {
            Ok(meta) => {
                let facts = listing::facts(&Entry::from_metadata(&meta));
                let mut reply = Reply::new();
                reply
                    .first(
                        Code::FileActionOk,
                        format_args!("listing {}", path.as_str()),
                    )
                    .middle(format_args!("{facts} {}", path.as_str()))
                    .last(Code::FileActionOk, format_args!("end"));
                self.say(reply)?;
                Ok(Flow::Continue)
            }
            Err(e) => Err(self.refuse_io(e)),
        }
    }

    /// Sets a plain file's modification time: MDTM's write form, MFMT,
    /// SITE UTIME (for users who may store: it changes what they stored).
    pub(super) async fn set_time(
        &mut self,
        me: &mut LoggedIn,
        verb: SetTime,
        time: Utc,
        arg: Name<'_>,
    ) -> Handled {
        self.require(me.may().store)?;
        let path = self.resolve(me, arg)?;
        let real = self.existing(&me.jail, &path).await?;
        let when = std::time::UNIX_EPOCH
            .checked_add(std::time::Duration::from_secs(time.to_unix().max(0) as u64))
            .unwrap_or(std::time::UNIX_EPOCH);
        let home = me.jail.home().to_path_buf();
        let set = smol::unblock(move || {
            let file = std::fs::File::from(jail::open_beneath(
                &home,
                &real,
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK,
                rustix::fs::Mode::empty(),
            )?);
            if !file.metadata()?.is_file() {
                return Ok(false);
            }
            file.set_modified(when)?;
            Ok::<_, std::io::Error>(true)
        })
        .await;
        match set {
            Ok(true) => {}
            Ok(false) => {
                return self.answer(Code::FileUnavailable, format_args!("not a plain file"))
            }
            Err(e) => return Err(self.refuse_io(e)),
        }
        let stamp = time.time_val();
        match verb {
            // draft-somers-ftp-mfxx §3.2: `213 Modify=time; path`.
            SetTime::Mfmt => self.answer(
                Code::FileStatus,
                format_args!("Modify={stamp}; {}", path.as_str()),
            ),
            SetTime::Mdtm => self.answer(
                Code::FileStatus,
                format_args!("modification time set to {stamp}"),
            ),
            SetTime::SiteUtime => self.answer(
                Code::CommandOk,
                format_args!("modification time set to {stamp}"),
            ),
        }
    }
}

/// The metadata of `real` through a descriptor opened beneath the home.
pub(super) async fn stat(jail: &Jail, real: PathBuf) -> std::io::Result<std::fs::Metadata> {
    let home = jail.home().to_path_buf();
    smol::unblock(move || beneath::metadata(&home, &real)).await
}
