//! The dispatcher: one line per command, to its handler (like vsftpd's
//! `process_post_login`). Commands allowed before login come first; every
//! other one needs the `LoggedIn` state, which exists only after login: the
//! login check is the type, made once, here.

use super::login::LoggedIn;
use super::{errors, Flow, Login, Replied, Session};
use crate::protocol::command::{Command, Name, ParseError};
use crate::protocol::listing::Format;
use crate::protocol::reply::{Code, Reply};
use std::io;

impl Session {
    pub(super) async fn dispatch(
        &mut self,
        parsed: Result<Command<'_>, ParseError>,
    ) -> io::Result<Flow> {
        // SECURITY: a user removed or changed by a users reload (password,
        // permissions, networks, home) keeps no session: the next command
        // ends it, whatever it is.
        if let Some(user) = self.login.user() {
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
        // SECURITY: the commands after login take the logged-in state,
        // lent to this command; before login there is none and they get 530.
        let mut lent = self.lend_login();
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
        let rest = match &mut lent {
            Some(me) if keeps_rest => me.rest,
            Some(me) => std::mem::take(&mut me.rest),
            None => 0,
        };
        let handled = match (cmd, lent.as_mut()) {
            // Allowed before login.
            (Command::User(name), _) => self.user(name),
            (Command::Pass(password), _) => self.pass(password.to_string()).await,
            (Command::Quit, _) => self.quit(),
            (Command::Noop, _) => self.noop(),
            (Command::Syst, _) => self.syst(),
            (Command::Feat, _) => self.feat(),
            (Command::Opts(arg), _) => self.opts(arg),
            (Command::Help, _) => self.help(),
            (Command::Auth(mechanism), _) => self.auth(mechanism),
            (Command::Pbsz(size), _) => self.pbsz(size),
            (Command::Prot(level), _) => self.prot(level),
            (Command::Ccc, _) => self.ccc(),
            (Command::Clnt(name), _) => self.clnt(name),
            (Command::NotOffered(what), _) => self.not_offered(what),
            (_, None) => Err(self.refuse(
                Code::NotLoggedIn,
                format_args!("log in with USER and PASS first"),
            )),
            // After login.
            (Command::Stat(arg), Some(me)) => self.stat(me, arg),
            (Command::Type(kind), Some(me)) => self.set_type(me, kind),
            (Command::Mode, Some(_)) => self.mode(),
            (Command::Stru, Some(_)) => self.stru(),
            (Command::Allo, Some(_)) => self.allo(),
            (Command::Pwd, Some(me)) => self.pwd(me),
            (Command::Cwd(arg), Some(me)) => self.cwd(me, arg).await,
            (Command::Cdup, Some(me)) => self.cwd(me, Name::from("..")).await,
            (Command::Mkd(arg), Some(me)) => self.mkd(me, arg).await,
            (Command::Rmd(arg), Some(me)) => self.rmd(me, arg).await,
            (Command::Dele(arg), Some(me)) => self.dele(me, arg).await,
            (Command::Rnfr(arg), Some(me)) => self.rnfr(me, arg).await,
            (Command::Rnto(arg), Some(me)) => self.rnto(me, arg).await,
            (Command::Size(arg), Some(me)) => self.size_or_mdtm(me, arg, true).await,
            (Command::Mdtm(arg), Some(me)) => self.size_or_mdtm(me, arg, false).await,
            (Command::SetTime { verb, time, path }, Some(me)) => {
                self.set_time(me, verb, time, path).await
            }
            (Command::Mlst(arg), Some(me)) => self.mlst(me, arg).await,
            (Command::List(arg), Some(me)) => self.list(me, arg, Format::List).await,
            (Command::Nlst(arg), Some(me)) => self.list(me, arg, Format::Nlst).await,
            (Command::Mlsd(arg), Some(me)) => self.list(me, arg, Format::Mlsd).await,
            (Command::Retr(arg), Some(me)) => self.retr(me, arg, rest).await,
            (Command::Stor(arg), Some(me)) => self.stor(me, arg, rest, false).await,
            (Command::Appe(arg), Some(me)) => self.stor(me, arg, rest, true).await,
            (Command::Stou, Some(me)) => self.stou(me).await,
            (Command::Rest(offset), Some(me)) => self.set_rest(me, offset),
            (Command::Abor, Some(me)) => self.abor(me),
            (Command::Port(addr) | Command::Eprt(addr), Some(me)) => self.port(me, addr),
            (Command::Pasv, Some(me)) => self.pasv(me).await,
            (Command::Epsv(arg), Some(me)) => self.epsv(me, arg).await,
        };
        // The state comes back. No handler changes the login while it is
        // lent: USER, PASS and AUTH change it only before login.
        if let Some(me) = lent {
            self.login = Login::In(me);
        }
        match handled {
            Ok(flow) => Ok(flow),
            Err(Replied(sent)) => sent.map(|()| Flow::Continue),
        }
    }

    /// Takes the logged-in state for one command; `None` before login.
    fn lend_login(&mut self) -> Option<LoggedIn> {
        match std::mem::replace(&mut self.login, Login::Start) {
            Login::In(me) => {
                self.login = Login::Lent(me.user.clone());
                Some(me)
            }
            other => {
                self.login = other;
                None
            }
        }
    }
}
