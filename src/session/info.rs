//! Commands about the session and the server: NOOP, SYST, FEAT, OPTS,
//! HELP, STAT, CLNT, the transfer parameters TYPE, MODE, STRU, ALLO
//! (RFC 959 §4.1.2, RFC 2389), and the 502 for what is recognised but not
//! offered. FEAT and HELP come from one verb table.

use super::login::LoggedIn;
use super::{Flow, Handled, Session};
use crate::protocol::command::Type;
use crate::protocol::reply::{Code, Reply};
use crate::protocol::verbs::{self, Offered};

impl Session {
    pub(super) fn noop(&mut self) -> Handled {
        self.answer(Code::CommandOk, format_args!("NOOP ok"))
    }

    pub(super) fn syst(&mut self) -> Handled {
        self.answer(Code::SystemType, format_args!("UNIX Type: L8"))
    }

    pub(super) fn feat(&mut self) -> Handled {
        let config = &self.shared.config;
        let (active, passive, epsv) =
            (config.active, config.passive, config.passive && config.epsv);
        let tls = self.shared.tls.is_some();
        let offered = |when| match when {
            Offered::Always => true,
            Offered::Active => active,
            Offered::Passive => passive,
            Offered::Epsv => epsv,
            Offered::Tls => tls,
        };
        let mut reply = Reply::new();
        reply.first(Code::SystemStatus, format_args!("Features:"));
        for line in verbs::features(offered) {
            reply.middle(format_args!("{line}"));
        }
        reply.last(Code::SystemStatus, format_args!("End"));
        self.say(reply)?;
        Ok(Flow::Continue)
    }

    pub(super) fn opts(&mut self, arg: &str) -> Handled {
        let mut words = arg.split_whitespace();
        let option = words.next().unwrap_or("").to_ascii_uppercase();
        match (option.as_str(), words.next()) {
            // RFC 2640 §3.1: the client will send names in UTF-8, whatever
            // `filename_encoding` says for this device.
            ("UTF8", Some(v)) if v.eq_ignore_ascii_case("ON") => {
                self.utf8_on = true;
                self.answer(Code::CommandOk, format_args!("UTF8 on"))
            }
            ("UTF8", None) => {
                self.utf8_on = true;
                self.answer(Code::CommandOk, format_args!("UTF8 on"))
            }
            ("UTF8", Some(v)) if v.eq_ignore_ascii_case("OFF") => {
                self.utf8_on = false;
                let label = self.encoding().label();
                self.answer(Code::CommandOk, format_args!("UTF8 off; names in {label}"))
            }
            ("MLST", _) => {
                self.answer(Code::CommandOk, format_args!("MLST OPTS type;size;modify;"))
            }
            _ => self.answer(
                Code::SyntaxErrorInArguments,
                format_args!("option not understood"),
            ),
        }
    }

    pub(super) fn help(&mut self) -> Handled {
        let mut reply = Reply::new();
        reply.first(
            Code::HelpMessage,
            format_args!("The following commands are recognized:"),
        );
        for line in verbs::help_lines() {
            reply.middle(format_args!("{line}"));
        }
        reply.last(Code::HelpMessage, format_args!("Help OK"));
        self.say(reply)?;
        Ok(Flow::Continue)
    }

    pub(super) fn stat(
        &mut self,
        me: &LoggedIn,
        path: Option<crate::protocol::command::Name<'_>>,
    ) -> Handled {
        if path.is_some() {
            return self.answer(
                Code::NotImplementedForParameter,
                format_args!("STAT with a path is not supported; use LIST"),
            );
        }
        let kind = if me.kind == Type::Image {
            "BINARY"
        } else {
            "ASCII"
        };
        let (client, user) = (self.client, self.user_name().to_string());
        let mut reply = Reply::new();
        reply
            .first(Code::SystemStatus, format_args!("lakeftpd status:"))
            .middle(format_args!("Connected to {client}"))
            .middle(format_args!("Logged in as {user}"))
            .middle(format_args!("TYPE: {kind}"))
            .last(Code::SystemStatus, format_args!("End of status"));
        self.say(reply)?;
        Ok(Flow::Continue)
    }

    pub(super) fn set_type(&mut self, me: &mut LoggedIn, kind: Type) -> Handled {
        me.kind = kind;
        let name = if kind == Type::Image {
            "Binary"
        } else {
            "ASCII"
        };
        self.answer(Code::CommandOk, format_args!("switching to {name} mode"))
    }

    pub(super) fn mode(&mut self) -> Handled {
        self.answer(Code::CommandOk, format_args!("mode S ok"))
    }

    pub(super) fn stru(&mut self) -> Handled {
        self.answer(Code::CommandOk, format_args!("structure F ok"))
    }

    /// ALLO (RFC 959 §4.1.3) needs nothing here; 200, not 202: some
    /// cameras take 202 for a failure and send it again, forever.
    pub(super) fn allo(&mut self) -> Handled {
        self.answer(
            Code::CommandOk,
            format_args!("ALLO ok, no space reservation needed"),
        )
    }

    /// CLNT: the client's software, usually the device's model and
    /// firmware; the operator finds it in the log and on each object.
    pub(super) fn clnt(&mut self, name: &str) -> Handled {
        log::info!("client={} CLNT {name:?}", self.client);
        self.client_name = (!name.is_empty()).then(|| name.into());
        self.answer(Code::CommandOk, format_args!("noted"))
    }

    /// A command lakeftpd recognises but does not offer: 502 (RFC 959
    /// §4.2), so a client knows not to retry it, rather than 500.
    pub(super) fn not_offered(&mut self, what: &str) -> Handled {
        self.answer(Code::NotImplemented, format_args!("{what} not offered"))
    }
}
