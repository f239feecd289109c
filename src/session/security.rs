//! FTPS in the session (RFC 4217): AUTH TLS upgrades the control
//! connection, PBSZ and PROT choose the data channel's protection, CCC
//! (only with `tls_allow_ccc = on`) returns the control connection to
//! plain text; the login gate of `tls = required` (global or per user);
//! and TLS on data connections, with lakeftpd as the TLS server in both
//! active and passive mode (RFC 4217 §7), checked for session reuse.

use super::input::LineReader;
use super::{Flow, Handled, Login, Replied, Session};
use crate::config::tls::Mode;
use crate::config::User;
use crate::data::active::Refusal;
use crate::ops::metrics;
use crate::protocol::command::{Mechanism, Prot};
use crate::protocol::reply::{Code, Reply};
use crate::sys;
use crate::tls::stream::Stream;
use crate::tls::Tickets;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::Async;
use std::io;
use std::net::TcpStream;

/// How the control connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Security {
    Plain,
    /// After AUTH TLS; `private` after PROT P.
    Explicit {
        private: bool,
    },
    /// The implicit listener: TLS from the first byte, data always private.
    Implicit,
    /// After AUTH TLS, a login, then CCC: the control connection is plain
    /// text again, data connections as PROT says.
    Cleared {
        private: bool,
    },
}

impl Security {
    /// Whether data connections are TLS (PROT P, or implicit).
    pub(super) fn data_private(self) -> bool {
        matches!(
            self,
            Security::Implicit
                | Security::Explicit { private: true }
                | Security::Cleared { private: true }
        )
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Security::Plain => "plain",
            Security::Explicit { .. } => "explicit",
            Security::Implicit => "implicit",
            Security::Cleared { .. } => "explicit-ccc",
        }
    }
}

impl Session {
    fn tls_mode(&self) -> Mode {
        self.shared.config.tls.mode
    }

    /// AUTH (RFC 2228 §3, RFC 4217 §4).
    pub(super) fn auth(&mut self, mechanism: Mechanism) -> Handled {
        // 502 when TLS is not configured: the command is recognised but not
        // offered (FEAT does not list it). Clients that try TLS and fall
        // back (lftp's default ftp:ssl-allow, curl --ssl) go on in plain;
        // 534 would claim a policy, and 431 (4xx) invites a retry that can
        // never succeed.
        if self.shared.tls.is_none() {
            return self.answer(
                Code::NotImplemented,
                format_args!("TLS is not configured on this server"),
            );
        }
        if self.security != Security::Plain {
            return self.answer(
                Code::BadSequence,
                format_args!("the control connection is already protected"),
            );
        }
        if self.login.user().is_some() {
            return self.answer(
                Code::BadSequence,
                format_args!("send AUTH TLS before logging in"),
            );
        }
        if mechanism == Mechanism::Unknown {
            return self.answer(
                Code::NotImplementedForParameter,
                format_args!("unknown mechanism; use AUTH TLS"),
            );
        }
        // A USER sent in plain does not carry over (RFC 4217 §4: the
        // session starts again under protection).
        self.login = Login::Start;
        say!(
            self,
            Code::SecurityExchangeOk,
            "AUTH TLS ok, start the TLS handshake"
        )?;
        Ok(Flow::StartTls)
    }

    /// The TLS handshake after 234. Returns a reason when the session ends.
    pub(super) async fn start_tls(&mut self, reader: &LineReader) -> io::Result<Option<String>> {
        self.flush().await?;
        // SECURITY: bytes the client sent after AUTH TLS, before the
        // handshake, arrived in plain text; read as commands they would pass
        // for protected ones (the STARTTLS injection of CVE-2011-0411). A
        // ClientHello sent before the 234 is just as wrong: end the session.
        if !reader.is_empty() {
            log::warn!(
                "client={} sent bytes after AUTH TLS before the handshake: closed",
                self.client
            );
            return Ok(Some("bytes after AUTH TLS".into()));
        }
        let Some(tls) = self.shared.tls.clone() else {
            return Ok(Some("no TLS".into()));
        };
        let Some(socket) = self.control.take_plain() else {
            return Ok(Some("control connection not plain".into()));
        };
        // SECURITY: a bound on one client's handshakes in flight.
        let Some(_handshake) = self.shared.handshakes.take(self.client_key()) else {
            crate::ops::metrics::inc(&self.shared.metrics.tls_handshakes_refused);
            return Ok(Some(
                "too many TLS handshakes in flight from the client".into(),
            ));
        };
        self.tag = sys::random_bytes();
        match tls
            .accept(socket, &self.tag, &[], &self.shared.metrics)
            .await
        {
            Ok(stream) => {
                self.control = Stream::Tls(Box::new(stream));
                self.security = Security::Explicit { private: false };
                log::info!("client={} TLS on the control connection", self.client);
                Ok(None)
            }
            Err(e) => {
                tls.failures.log(self.client, "control", &e);
                Ok(Some(format!(
                    "TLS handshake failed: {}",
                    e.failure.as_str()
                )))
            }
        }
    }

    /// PBSZ (RFC 4217 §8): TLS is a stream, so the buffer size is 0.
    pub(super) fn pbsz(&mut self, _size: u64) -> Handled {
        if self.shared.tls.is_none() {
            return self.tls_not_offered("PBSZ");
        }
        match self.security {
            Security::Plain => self.answer(
                Code::BadSequence,
                format_args!("PBSZ needs a protected control connection; send AUTH TLS"),
            ),
            Security::Explicit { .. } | Security::Implicit | Security::Cleared { .. } => {
                self.answer(Code::CommandOk, format_args!("PBSZ=0"))
            }
        }
    }

    /// PROT (RFC 2228 §3, RFC 4217 §9): C or P; S and E do not exist in TLS.
    /// RFC 4217 has PBSZ precede PROT; PBSZ 0 changes nothing, and clients
    /// such as Python's `prot_c()` skip it, so PROT does not insist (nor
    /// does vsftpd).
    pub(super) fn prot(&mut self, level: Prot) -> Handled {
        if self.shared.tls.is_none() {
            return self.tls_not_offered("PROT");
        }
        let required = self.tls_required();
        let private = match (self.security, level) {
            (Security::Plain, _) => {
                return self.answer(
                    Code::BadSequence,
                    format_args!("PROT needs a protected control connection; send AUTH TLS"),
                )
            }
            (_, Prot::Safe | Prot::Confidential) => {
                return self.answer(
                    Code::ProtLevelNotSupported,
                    format_args!("TLS offers PROT P or C only"),
                )
            }
            (Security::Implicit, Prot::Clear) => {
                return self.answer(
                    Code::PolicyDenied,
                    format_args!("data connections are always protected on this port"),
                )
            }
            (_, Prot::Clear) if required => {
                return self.answer(
                    Code::PolicyDenied,
                    format_args!("data connections must be protected: use PROT P"),
                )
            }
            (_, Prot::Clear) => false,
            (_, Prot::Private) => true,
        };
        if let Security::Explicit { private: p } | Security::Cleared { private: p } =
            &mut self.security
        {
            *p = private;
        }
        let level = if private { "P" } else { "C" };
        self.answer(Code::CommandOk, format_args!("PROT {level} ok"))
    }

    /// CCC (RFC 2228 §5.3, RFC 4217 §12.3): with `tls_allow_ccc = on`,
    /// after login, the control connection returns to plain text so that a
    /// NAT router's FTP helper can read (and rewrite) PORT, while PROT P
    /// keeps the files protected. Off by default: every later command and
    /// reply, file names included, travels in clear.
    pub(super) fn ccc(&mut self) -> Handled {
        if self.shared.tls.is_none() {
            return self.tls_not_offered("CCC");
        }
        if !self.shared.config.tls.allow_ccc {
            return self.answer(
                Code::PolicyDenied,
                format_args!("CCC is not allowed: the control connection stays protected (tls_allow_ccc = off)"),
            );
        }
        match self.security {
            Security::Explicit { .. } => {}
            Security::Plain | Security::Cleared { .. } => {
                return self.answer(
                    Code::IntegrityRequired,
                    format_args!("CCC must come over a protected control connection"),
                )
            }
            Security::Implicit => {
                return self.answer(
                    Code::PolicyDenied,
                    format_args!("CCC is not allowed on the implicit TLS port"),
                )
            }
        }
        // SECURITY: the password only ever travels protected.
        if self.login.user().is_none() {
            return self.answer(Code::BadSequence, format_args!("log in before CCC"));
        }
        if self.tls_required() {
            return self.answer(
                Code::PolicyDenied,
                format_args!("CCC is not allowed for this user (tls = required)"),
            );
        }
        say!(
            self,
            Code::CommandOk,
            "CCC ok, the control connection is plain text from now on"
        )?;
        Ok(Flow::ClearControl)
    }

    /// After the 200 to CCC: close_notify, then plain text on the same TCP
    /// connection. Returns a reason when the session ends.
    pub(super) async fn clear_control(
        &mut self,
        reader: &LineReader,
    ) -> io::Result<Option<String>> {
        self.flush().await?;
        // SECURITY: a client waits for the 200 before it clears its side;
        // protected bytes already sent after CCC would be read as plain.
        if !reader.is_empty() || self.control.has_unread() {
            log::warn!(
                "client={} sent bytes after CCC before the 200: closed",
                self.client
            );
            return Ok(Some("bytes after CCC".into()));
        }
        self.control.clear().await?;
        let private = self.security.data_private();
        self.security = Security::Cleared { private };
        metrics::inc(&self.metrics().tls_ccc);
        log::info!(
            "client={} CCC: the control connection is plain text",
            self.client
        );
        Ok(None)
    }

    /// With TLS not configured, the RFC 4217 verbs are recognised but not
    /// offered: 502 (RFC 959 §4.2.1), like AUTH.
    fn tls_not_offered(&mut self, verb: &str) -> Handled {
        self.answer(
            Code::NotImplemented,
            format_args!("{verb}: TLS is not configured on this server"),
        )
    }

    /// Whether this session must be protected: `tls = required`, or the
    /// logged-in user's `tls = required`.
    fn tls_required(&self) -> bool {
        self.tls_mode() == Mode::Required || self.login.user().is_some_and(|user| user.tls_required)
    }

    /// SECURITY: under `tls = required` (or the user's own), USER is refused
    /// before AUTH TLS, so the password is never sent in clear text.
    pub(super) fn require_tls_for(&mut self, user: Option<&User>) -> Result<(), Replied> {
        if self.security != Security::Plain {
            return Ok(());
        }
        if self.tls_mode() == Mode::Required || user.is_some_and(|u| u.tls_required) {
            let text = format_args!("TLS required: send AUTH TLS before USER");
            return Err(self.refuse(Code::NotLoggedIn, text));
        }
        Ok(())
    }

    /// Counts a login by the protection of its control connection, and
    /// records the session's tag as the user's.
    pub(super) fn count_login(&self) {
        if let (Some(tls), Security::Explicit { .. } | Security::Implicit) =
            (&self.shared.tls, self.security)
        {
            tls.record_login(&self.tag, self.user_name());
        }
        let m = self.metrics();
        metrics::inc(match self.security {
            Security::Plain => &m.sessions_plain,
            Security::Explicit { .. } | Security::Cleared { .. } => &m.sessions_explicit_tls,
            Security::Implicit => &m.sessions_implicit_tls,
        });
    }

    /// Whether this session's data connections must resume its TLS session:
    /// the logged-in user's `tls_session_reuse`, else the server's
    /// (`global`); and whether the user's own setting decided.
    fn reuse_required(&self, global: bool) -> (bool, bool) {
        match self.login.user().and_then(|user| user.tls_session_reuse) {
            Some(required) => (required, true),
            None => (global, false),
        }
    }

    /// SECURITY: under `tls = required` a transfer without PROT P would send
    /// the file in clear text: 521 (RFC 4217 §9), before any connection.
    pub(super) fn unprotected_refused(&self) -> bool {
        self.tls_required() && !self.security.data_private()
    }

    /// Puts TLS on a data connection (after the 150 reply, when the client
    /// starts its handshake). Under `tls_session_reuse = required` the
    /// connection must resume this control session's TLS session.
    /// `tickets`: whether TLS 1.3 tickets follow the handshake.
    pub(super) async fn secure_data(
        &self,
        socket: Async<TcpStream>,
        tickets: Tickets,
    ) -> Result<Stream, Refusal> {
        let Some(tls) = self.shared.tls.clone() else {
            return Err(Refusal::Tls("TLS is not configured"));
        };
        let metrics = &self.shared.metrics;
        let data = match tls.accept_data(socket, &self.tag, tickets, metrics).await {
            Ok(data) => data,
            Err(e) => {
                tls.failures.log(self.client, "data", &e);
                return Err(Refusal::Tls(e.failure.as_str()));
            }
        };
        // SECURITY: a data connection that resumed this control session's
        // TLS session (or another of this user's) comes from a TLS client
        // that holds it; anyone else who reached the passive port (or
        // answered the PORT address) cannot present one.
        let user = self.user_name();
        let stream = data.stream;
        let (required, per_user) = self.reuse_required(tls.reuse_required);
        if required && !tls.resumed_by(data.resumed, &self.tag, user) {
            metrics::inc(&metrics.tls_reuse_refused);
            // A clean TLS close, so the client reads the 522 that follows
            // rather than failing on a reset data connection.
            // Reading what the client still sends (until its close_notify
            // or EOF, bounded) keeps the kernel from answering it with a
            // reset that would reach the client before our alert.
            let mut stream = stream;
            let linger = async {
                stream.close().await?;
                let mut sink = [0u8; 1024];
                while stream.read(&mut sink).await? > 0 {}
                Ok(())
            };
            let _ = sys::timeout::within(crate::limits::TLS_REFUSAL_LINGER, linger).await;
            log::warn!(
                "client={} PROT P data connection did not resume the control connection's TLS session: 522",
                self.client
            );
            return Err(Refusal::NotResumed { per_user });
        }
        metrics::inc(&metrics.tls_protected_transfers);
        Ok(Stream::Tls(Box::new(stream)))
    }
}
