//! Logging in: USER, PASS and QUIT (RFC 959 §4.1.1). A failed password
//! costs a delay, and `max_login_failures` of them end the session. A login
//! from outside the user's `allow_from` fails exactly like a wrong password.

use super::{Flow, Handled, Login, Session};
use crate::auth::{self, Password};
use crate::ops::metrics;
use crate::protocol::escape::Escaped;
use crate::protocol::reply::{Code, Reply};
use crate::storage::jail::{Jail, VirtualPath};
use smol::Timer;
use std::time::Instant;

impl Session {
    pub(super) fn user(&mut self, name: &str) -> Handled {
        if matches!(self.login, Login::In { .. }) {
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
            Login::In { .. } => {
                return self.answer(Code::BadSequence, format_args!("already logged in"))
            }
            Login::Start => return self.answer(Code::BadSequence, format_args!("send USER first")),
        };
        let ip = self.client_ip();
        // SECURITY: a banned address (or address and user) is refused before
        // any password hashing (auth/defender.rs).
        if !self
            .shared
            .defender(|d| d.may_try(ip, &name, Instant::now()))
        {
            metrics::inc(&self.metrics().banned_refused);
            say!(
                self,
                Code::ServiceNotAvailable,
                "too many failed logins from your address, try later"
            )?;
            return Ok(Flow::Close);
        }
        // The current definition: the set may have been reloaded since USER.
        let user = user.and_then(|u| self.shared.user(&u.name));
        // SECURITY: outside `allow_from` the password is not checked, but
        // the same time is spent (the unknown-user check), the same answer
        // given and the failure counted by the defender: the address list
        // is not revealed.
        let refused_network = user.as_ref().is_some_and(|u| !u.allows(ip));
        let candidate = if refused_network { None } else { user };
        if auth::verify(candidate.clone(), Password(password)).await {
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
                    self.shared
                        .defender(|d| d.succeeded(ip, &user.name, Instant::now()));
                    // Logged in: no longer among those that may be shed.
                    self.unauthenticated = None;
                    metrics::inc(&self.metrics().logins_ok);
                    log::info!("login ok client={} user={}", self.client, user.name);
                    self.login = Login::In { user, jail };
                    self.count_login();
                    self.cwd = VirtualPath::root();
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
        if let Some(ban) = self
            .shared
            .defender(|d| d.failed(ip, &name, Instant::now()))
        {
            metrics::inc(&self.metrics().bans);
            let scope = if ban.address {
                "address"
            } else {
                "address and user"
            };
            log::warn!(
                "client={ip} banned ({scope}) for {} s: failed logins past ban_after (last user={})",
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

    pub(super) fn quit(&mut self) -> Handled {
        say!(self, Code::Closing, "goodbye")?;
        Ok(Flow::Close)
    }
}
