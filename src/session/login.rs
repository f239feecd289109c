//! Logging in: USER, PASS and QUIT (RFC 959 §4.1.1), and `LoggedIn`, the
//! state that exists only after a login. A failed password costs a delay,
//! and `max_login_failures` of them end the session. A login from outside
//! the user's `allow_from` fails exactly like a wrong password.

use super::{Flow, Handled, Login, Session};
use crate::auth::defender::{Attempt, Reserve, Scope};
use crate::auth::{self, Password};
use crate::config::{Permissions, User};
use crate::data::channel::DataChannel;
use crate::limits::{CHECK_WAIT_POLL, MAX_CHECK_WAIT};
use crate::ops::metrics;
use crate::protocol::command::Type;
use crate::protocol::escape::Escaped;
use crate::protocol::reply::{Code, Reply};
use crate::shared::Shared;
use crate::storage::jail::{Jail, VirtualPath};
use smol::Timer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// A logged-in user and what its commands change. Every command after
/// login takes `&mut LoggedIn` (dispatch.rs): it exists only once PASS
/// succeeded, so no such command can run before.
pub(super) struct LoggedIn {
    pub(super) user: Arc<User>,
    /// The user's home: the only producer of real paths.
    pub(super) jail: Jail,
    pub(super) cwd: VirtualPath,
    /// TYPE (RFC 959 §3.1.1): ASCII until the client says otherwise.
    pub(super) kind: Type,
    /// REST's offset: it applies to the next transfer (RFC 3659 §5.3).
    pub(super) rest: u64,
    /// RNFR's file, for the RNTO that follows.
    pub(super) rename_from: Option<(PathBuf, VirtualPath)>,
    pub(super) data: DataChannel,
    /// EPSV ALL was sent: PORT, EPRT and PASV are refused (RFC 2428 §4).
    pub(super) epsv_all: bool,
}

impl LoggedIn {
    fn new(user: Arc<User>, jail: Jail) -> LoggedIn {
        LoggedIn {
            user,
            jail,
            cwd: VirtualPath::root(),
            kind: Type::Ascii,
            rest: 0,
            rename_from: None,
            data: DataChannel::default(),
            epsv_all: false,
        }
    }

    pub(super) fn may(&self) -> Permissions {
        self.user.permissions
    }

    /// `auto_mkdir`: STOR/APPE and MKD make missing folders.
    pub(super) fn auto_mkdir(&self) -> bool {
        self.user.device.auto_mkdir
    }
}

impl Session {
    pub(super) fn user(&mut self, name: &str) -> Handled {
        if self.login.user().is_some() {
            return self.answer(Code::BadSequence, format_args!("already logged in"));
        }
        let user = self.shared.user(name);
        self.require_tls_for(user.as_deref())?;
        // Same answer for unknown users: no user enumeration.
        let shown: String = name.chars().take(crate::limits::MAX_USER_NAME).collect();
        self.login = Login::Named(user, shown);
        self.answer(Code::NeedPassword, format_args!("password required"))
    }

    pub(super) async fn pass(&mut self, password: String) -> Handled {
        let (user, name) = match &self.login {
            Login::Named(user, name) => (user.clone(), name.clone()),
            Login::In(_) | Login::Lent(_) => {
                return self.answer(Code::BadSequence, format_args!("already logged in"))
            }
            Login::Start => return self.answer(Code::BadSequence, format_args!("send USER first")),
        };
        let ip = self.client_ip();
        let key = self.client_key();
        let Some(attempt) = self.reserve_check(&name).await else {
            metrics::inc(&self.metrics().banned_refused);
            say!(
                self,
                Code::ServiceNotAvailable,
                "too many failed logins from your address, try later"
            )?;
            return Ok(Flow::Close);
        };
        // Settled below; if this session ends while the check runs, the
        // guard settles it as a failure (the hash may well have run).
        let mut counted = Counted {
            shared: self.shared.clone(),
            attempt: Some(attempt),
            name: name.clone(),
        };
        // The current definition: the set may have been reloaded since USER.
        let user = user.and_then(|u| self.shared.user(&u.name));
        // SECURITY: outside `allow_from` the password is not checked, but
        // the same time is spent (a check of the user's own hash, result
        // discarded), the same answer given and the failure counted by the
        // defender: the address list is not revealed.
        let refused_network = user.as_ref().is_some_and(|u| !u.allows(ip));
        metrics::inc(&self.metrics().password_checks);
        let candidate = if refused_network { None } else { user.clone() };
        let password = Password(password);
        let ok = match &user {
            Some(u) if refused_network => {
                auth::spend(&u.password_hash, password).await;
                false
            }
            _ => auth::verify(candidate.clone(), &name, password).await,
        };
        if ok {
            let user = candidate.expect("verify succeeds only for a known user");
            // Homes of users from a users file are made at first login,
            // durably: the 226s of this session depend on it.
            let home = user.home.clone();
            let made = smol::unblock(move || crate::storage::durable::create_dir_all(&home));
            if let Err(e) = made.await {
                log::error!("cannot create home {}: {e}", user.home.display());
            }
            return match Jail::open(&user.home).await {
                Ok(jail) => {
                    counted.attempt = None;
                    self.shared
                        .defender(|d| d.succeeded(attempt, &name, Instant::now()));
                    // Logged in: no longer among those that may be shed.
                    self.unauthenticated = None;
                    metrics::inc(&self.metrics().logins_ok);
                    log::info!("login ok client={} user={}", self.client, user.name);
                    self.login = Login::In(LoggedIn::new(user, jail));
                    self.count_login();
                    self.answer(Code::LoggedIn, format_args!("logged in"))
                }
                Err(e) => {
                    log::error!(
                        "home of user {} ({}) unusable: {e}",
                        user.name,
                        user.home.display()
                    );
                    self.login = Login::Start;
                    say!(
                        self,
                        Code::ServiceNotAvailable,
                        "home directory unavailable"
                    )?;
                    Ok(Flow::Close)
                }
            };
        }
        metrics::inc(&self.metrics().logins_failed);
        self.failures += 1;
        counted.attempt = None;
        if let Some(ban) = self
            .shared
            .defender(|d| d.failed(attempt, &name, Instant::now()))
        {
            metrics::inc(&self.metrics().bans);
            let (scope, who) = match ban.scope {
                Scope::Pair => ("address and user", key.to_string()),
                Scope::Client => ("address", key.to_string()),
                Scope::Wide => ("wider group", key.wider().to_string()),
            };
            log::warn!(
                "client={who} banned ({scope}) for {} s: failed logins past ban_after (last user={})",
                ban.length.as_secs(),
                Escaped(&name)
            );
        }
        log::warn!(
            "login failed client={} user={} failures={}{}",
            self.client,
            Escaped(&name),
            self.failures,
            if refused_network {
                " (address not in allow_from)"
            } else {
                ""
            }
        );
        self.login = Login::Start;
        self.record_login_failure(&name, Code::NotLoggedIn as u16)
            .await;
        // SECURITY: a delay per failure slows password guessing; the session
        // ends after max_login_failures.
        Timer::after(self.shared.config.login_fail_delay).await;
        if self.failures >= self.shared.config.max_login_failures {
            say!(
                self,
                Code::NotLoggedIn,
                "login incorrect; too many failures, closing"
            )?;
            return Ok(Flow::Close);
        }
        self.answer(Code::NotLoggedIn, format_args!("login incorrect"))
    }

    /// A place in the defender's scores for one password check, waiting
    /// (bounded) while the checks already running fill the window; `None`:
    /// refused, before any hashing.
    async fn reserve_check(&self, name: &str) -> Option<Attempt> {
        let key = self.client_key();
        let started = Instant::now();
        loop {
            // SECURITY: a banned client (or client and user) is refused
            // before any password hashing, and a check is counted before it
            // runs, so concurrent guesses cannot outrun the ban
            // (auth/defender).
            match self
                .shared
                .defender(|d| d.reserve(key, name, Instant::now()))
            {
                Reserve::Go(attempt) => return Some(attempt),
                Reserve::Refused => return None,
                Reserve::Wait if started.elapsed() >= MAX_CHECK_WAIT => return None,
                Reserve::Wait => Timer::after(CHECK_WAIT_POLL).await,
            };
        }
    }

    pub(super) fn quit(&mut self) -> Handled {
        say!(self, Code::Closing, "goodbye")?;
        Ok(Flow::Close)
    }
}

/// A counted check not settled yet: dropped armed (the session ended
/// while its hash ran), it is settled as a failure.
struct Counted {
    shared: Arc<Shared>,
    attempt: Option<Attempt>,
    name: String,
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(attempt) = self.attempt.take() {
            self.shared
                .defender(|d| d.failed(attempt, &self.name, Instant::now()));
        }
    }
}
