//! The dispatcher: one line per command, to its handler (like vsftpd's
//! `process_post_login`). Commands allowed before login come first; every
//! other one passes the login check once, here.

use super::{errors, Flow, Handled, Login, Replied, Session};
use crate::config::Permissions;
use crate::protocol::command::{Command, Name, ParseError};
use crate::protocol::listing::Format;
use crate::protocol::reply::{Code, Reply};
use crate::storage::jail::Jail;
use std::io;

/// A logged-in user's jail and permissions, for one command.
pub(super) struct Account {
    pub(super) jail: Jail,
    pub(super) may: Permissions,
    /// `auto_mkdir`: STOR/APPE and MKD make missing folders.
    pub(super) auto_mkdir: bool,
}

impl Session {
    pub(super) async fn dispatch(
        &mut self,
        parsed: Result<Command<'_>, ParseError>,
    ) -> io::Result<Flow> {
        // SECURITY: a user removed or changed by a users reload (password,
        // permissions, networks, home) keeps no session: the next command
        // ends it, whatever it is.
        if let Login::In { user, .. } = &self.login {
            if !self.shared.users.is_current(user) {
                crate::ops::metrics::inc(&self.metrics().users_sessions_ended);
                log::info!(
                    "session ended client={} user={}: the user was removed or changed",
                    self.client,
                    user.name
                );
                say!(
                    self,
                    Code::ServiceNotAvailable,
                    "account changed or removed; log in again"
                )?;
                return Ok(Flow::Close);
            }
        }
        let cmd = match parsed {
            Ok(cmd) => cmd,
            Err(e) => {
                let (code, text) = errors::parse_error_reply(e);
                say!(self, code, "{text}")?;
                return Ok(Flow::Continue);
            }
        };
        // REST applies to the next transfer (RFC 3659 §5.3); the data
        // connection set-up many clients send in between keeps it.
        let keeps_rest = matches!(
            cmd,
            Command::Pasv
                | Command::Epsv(_)
                | Command::Port(_)
                | Command::Eprt(_)
                | Command::Type(_)
        );
        let rest = if keeps_rest {
            self.rest
        } else {
            std::mem::take(&mut self.rest)
        };
        let handled = match cmd {
            // Allowed before login.
            Command::User(name) => self.user(name),
            Command::Pass(password) => self.pass(password.to_string()).await,
            Command::Quit => self.quit(),
            Command::Noop => self.noop(),
            Command::Syst => self.syst(),
            Command::Feat => self.feat(),
            Command::Opts(arg) => self.opts(arg),
            Command::Help => self.help(),
            Command::Auth(mechanism) => self.auth(mechanism),
            Command::Pbsz(size) => self.pbsz(size),
            Command::Prot(level) => self.prot(level),
            Command::Ccc => self.ccc(),
            Command::Clnt(name) => self.clnt(name),
            Command::NotOffered(what) => self.not_offered(what),
            cmd => self.logged_in(cmd, rest).await,
        };
        match handled {
            Ok(flow) => Ok(flow),
            Err(Replied(sent)) => sent.map(|()| Flow::Continue),
        }
    }

    async fn logged_in(&mut self, cmd: Command<'_>, rest: u64) -> Handled {
        // SECURITY: every command below needs a logged-in user; the jail
        // exists only then.
        let me = match &self.login {
            Login::In { user, jail } => Account {
                jail: jail.clone(),
                may: user.permissions,
                auto_mkdir: user.device.auto_mkdir,
            },
            _ => {
                let text = format_args!("log in with USER and PASS first");
                return Err(self.refuse(Code::NotLoggedIn, text));
            }
        };
        match cmd {
            Command::Stat(arg) => self.stat(arg),
            Command::Type(kind) => self.set_type(kind),
            Command::Mode => self.mode(),
            Command::Stru => self.stru(),
            Command::Allo => self.allo(),
            Command::Pwd => self.pwd(),
            Command::Cwd(arg) => self.cwd(&me, arg).await,
            Command::Cdup => self.cwd(&me, Name::from("..")).await,
            Command::Mkd(arg) => self.mkd(&me, arg).await,
            Command::Rmd(arg) => self.rmd(&me, arg).await,
            Command::Dele(arg) => self.dele(&me, arg).await,
            Command::Rnfr(arg) => self.rnfr(&me, arg).await,
            Command::Rnto(arg) => self.rnto(&me, arg).await,
            Command::Size(arg) => self.size_or_mdtm(&me, arg, true).await,
            Command::Mdtm(arg) => self.size_or_mdtm(&me, arg, false).await,
            Command::SetTime { verb, time, path } => self.set_time(&me, verb, time, path).await,
            Command::Mlst(arg) => self.mlst(&me, arg).await,
            Command::List(arg) => self.list(&me, arg, Format::List).await,
            Command::Nlst(arg) => self.list(&me, arg, Format::Nlst).await,
            Command::Mlsd(arg) => self.list(&me, arg, Format::Mlsd).await,
            Command::Retr(arg) => self.retr(&me, arg, rest).await,
            Command::Stor(arg) => self.stor(&me, arg, rest, false).await,
            Command::Appe(arg) => self.stor(&me, arg, rest, true).await,
            Command::Stou => self.stou(&me).await,
            Command::Rest(offset) => self.set_rest(offset),
            Command::Abor => self.abor(),
            Command::Port(addr) | Command::Eprt(addr) => self.port(addr),
            Command::Pasv => self.pasv().await,
            Command::Epsv(arg) => self.epsv(arg).await,
            Command::User(_)
            | Command::Pass(_)
            | Command::Quit
            | Command::Noop
            | Command::Syst
            | Command::Feat
            | Command::Opts(_)
            | Command::Help
            | Command::Auth(_)
            | Command::Pbsz(_)
            | Command::Prot(_)
            | Command::Ccc
            | Command::Clnt(_)
            | Command::NotOffered(_) => unreachable!("dispatched before login"),
        }
    }
}
