//! Logging in: USER, PASS and QUIT (RFC 959 §4.1.1). A failed password
//! costs a delay, and `max_login_failures` of them end the session.

use super::{Flow, Handled, Login, Session};
use crate::auth::{self, Password};
use crate::ops::metrics;
use crate::protocol::reply::{Code, Reply};
use crate::storage::jail::{Jail, VirtualPath};
use smol::Timer;

impl Session {
    pub(super) fn user(&mut self, name: &str) -> Handled {
        if matches!(self.login, Login::In { .. }) {
            return self.answer(Code::BadSequence, format_args!("already logged in"));
        }
        let user = self.shared.user(name);
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
        if auth::verify(user.clone(), Password(password)).await {
            let user = user.expect("verify succeeds only for a known user");
            return match Jail::open(&user.home).await {
                Ok(jail) => {
                    metrics::inc(&self.metrics().logins_ok);
                    log::info!("login ok client={} user={}", self.client, user.name);
                    self.login = Login::In { user, jail };
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
        log::warn!(
            "login failed client={} user={name} failures={}",
            self.client,
            self.failures
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
