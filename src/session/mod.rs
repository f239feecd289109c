//! One FTP session: one task owns its state; no locks, no shared mutable
//! state but counters. The control connection is read into a fixed line
//! buffer; each line is parsed by the pure `command::parse` and answered. A
//! transfer runs as its own boxed future (so its buffers exist only while it
//! runs) raced against the control connection, where ABOR may arrive: a line
//! that comes in during a transfer is parsed to see whether it is ABOR, and
//! otherwise parsed again and answered after the transfer (a pure parse of
//! at most `MAX_LINE` bytes; keeping the parsed form would pin the buffer).
//!
//! The files of this folder, by concern:
//! - this file: the `Session` state, `run` and the serve loop, replies;
//! - `input`: the control connection's line buffer and the PROXY `Prelude`;
//! - `dispatch`: one line per command, to its handler;
//! - `login`: USER, PASS (with the failure delay), QUIT, and `LoggedIn`,
//!   the state every later command takes;
//! - `info`: FEAT, HELP, STAT, SYST, OPTS, NOOP and the transfer parameters
//!   (TYPE, MODE, STRU, ALLO);
//! - `files`: PWD, CWD, CDUP, MKD, RMD, DELE, RNFR, RNTO, SIZE, MDTM, MLST;
//! - `datachan`: PORT, EPRT, PASV, EPSV and the `DataChannel` they set;
//! - `transfer`: REST, RETR, STOR, APPE, STOU, LIST, NLST, MLSD as a `Job`;
//! - `steps`: running a `Job`: prepare, move the bytes, land;
//! - `outcome`: how a transfer ended, and the one place that counts, logs
//!   and replies to it;
//! - `record`: the transfer and failed-login records (`transfer_log`);
//! - `security`: AUTH, PBSZ, PROT, CCC (RFC 4217), the TLS upgrade of the
//!   control connection, TLS on data connections and the login gate;
//! - `errors`: path, storage and parse errors mapped to replies, one table.

use crate::config::device::Device;
use crate::config::User;
use crate::ops::metrics::{self, Metrics};
use crate::protocol::command::{self, Command};
use crate::protocol::encoding::NameEncoding;
use crate::protocol::escape::Escaped;
use crate::protocol::reply::{Code, Reply};
use crate::shared::Shared;
use crate::sys::unauthenticated::Pending;
use crate::tls::stream::Stream;
use crate::tls::{Tag, TAG_BYTES};
use smol::future::FutureExt;
use smol::io::AsyncWriteExt;
use smol::{Async, Timer};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sends a one-line reply: `say!(self, Code::CommandOk, "text {}", x)`.
macro_rules! say {
    ($session:expr, $code:expr, $($fmt:tt)+) => {
        $session.say(Reply::line($code, format_args!($($fmt)+)))
    };
}

mod datachan;
mod dispatch;
mod early;
mod errors;
mod files;
mod info;
mod input;
mod login;
mod outcome;
mod record;
mod security;
mod steps;
#[cfg(test)]
mod tests;
mod transfer;

pub use input::Prelude;
use input::{Input, LineReader};
use login::LoggedIn;
use security::Security;
use transfer::Job;

enum Login {
    Start,
    /// USER given; `None` when no such user (PASS still costs a hash check).
    Named(Option<Arc<User>>, String),
    In(LoggedIn),
    /// Logged in, with the `LoggedIn` state lent to the command that runs
    /// (dispatch.rs); it comes back when the command ends.
    Lent(Arc<User>),
}

impl Login {
    /// The logged-in user, if any.
    fn user(&self) -> Option<&Arc<User>> {
        match self {
            Login::In(me) => Some(&me.user),
            Login::Lent(user) => Some(user),
            Login::Start | Login::Named(..) => None,
        }
    }
}

/// What to do after a command.
enum Flow {
    Continue,
    Close,
    Transfer(Job),
    /// 234 was queued: the TLS handshake follows (RFC 4217 §4).
    StartTls,
    /// 200 to CCC was queued: the control connection returns to plain
    /// text (RFC 2228 §5.3).
    ClearControl,
}

/// A command that ended early with a refusal: the reply is queued, or
/// queueing it failed (which ends the session). Handlers return
/// `Result<Flow, Replied>`, so a refusal is `return Err(...)` or `?`.
struct Replied(io::Result<()>);

impl From<io::Error> for Replied {
    fn from(e: io::Error) -> Replied {
        Replied(Err(e))
    }
}

/// What a command handler returns.
type Handled = Result<Flow, Replied>;

pub struct Session {
    shared: Arc<Shared>,
    control: Stream,
    client: SocketAddr,
    local: SocketAddr,
    login: Login,
    failures: u32,
    /// `OPTS UTF8 ON` was sent: names are UTF-8 whatever `filename_encoding`
    /// says (RFC 2640 §3.1).
    utf8_on: bool,
    /// What `CLNT` said: logged, and sent as S3 metadata with each upload.
    client_name: Option<Box<str>>,
    /// Reply bytes the socket has not taken yet (rare: a full send buffer).
    unsent: Option<Vec<u8>>,
    /// Listed among the connections not logged in yet (may be shed) until
    /// the login succeeds.
    unauthenticated: Option<Pending>,
    security: Security,
    /// The resumption tag of this session's TLS handshakes (security.rs).
    tag: Tag,
}

/// The 220 greeting (RFC 959 §5.4); the PROXY handshake may send it first.
pub fn greeting() -> Reply {
    Reply::line(Code::ServiceReady, format_args!("lakeftpd ready"))
}

/// Runs one session to its end. Errors end the session; they are logged.
/// `client` is the client's address: the PROXY header's source when a
/// balancer sent one, else the peer. `prelude` holds what the handshake
/// already read after the header, and whether it already greeted.
pub fn run(
    shared: Arc<Shared>,
    control: Async<TcpStream>,
    client: SocketAddr,
    local: SocketAddr,
    prelude: Prelude,
) -> impl std::future::Future<Output = ()> {
    let plain = Stream::Plain(control);
    serve_session(
        shared,
        plain,
        Security::Plain,
        [0; TAG_BYTES],
        client,
        local,
        prelude,
    )
}

/// Runs a session of the implicit FTPS listener: `control` finished its
/// handshake with `tag`; data connections are protected from the start.
/// `prelude` carries no bytes (the TLS handshake consumed them), only the
/// connection's place in the unauthenticated share.
pub fn run_implicit(
    shared: Arc<Shared>,
    control: Stream,
    tag: Tag,
    client: SocketAddr,
    local: SocketAddr,
    prelude: Prelude,
) -> impl std::future::Future<Output = ()> {
    serve_session(
        shared,
        control,
        Security::Implicit,
        tag,
        client,
        local,
        prelude,
    )
}

fn serve_session(
    shared: Arc<Shared>,
    control: Stream,
    security: Security,
    tag: Tag,
    client: SocketAddr,
    local: SocketAddr,
    mut prelude: Prelude,
) -> impl std::future::Future<Output = ()> {
    // The prelude's buffer is copied into the line reader here, outside the
    // future, so the session's state never carries it.
    let mut reader = LineReader::with_prelude(prelude.bytes());
    let greeted = prelude.greeted;
    let unauthenticated = prelude.pending.take();
    // Built here too, and moved in whole: the future then holds the
    // session once, not its parts as well.
    let mut session = Session {
        shared,
        control,
        client,
        local,
        login: Login::Start,
        failures: 0,
        utf8_on: false,
        client_name: None,
        unsent: None,
        unauthenticated,
        security,
        tag,
    };
    async move {
        let started = Instant::now();
        log::info!("session start client={}", session.client);
        let reason = match session.serve(&mut reader, greeted).await {
            Ok(reason) => reason,
            Err(e) => format!("error: {e}"),
        };
        session.control.finish().await;
        log::info!(
            "session end client={} user={} clnt={} security={} seconds={:.1} reason={reason}",
            session.client,
            Escaped(session.user_name()),
            Escaped(session.client_name.as_deref().unwrap_or("-")),
            session.security.label(),
            started.elapsed().as_secs_f64()
        );
    }
}

impl Session {
    fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    fn user_name(&self) -> &str {
        match &self.login {
            Login::In(LoggedIn { user, .. }) | Login::Lent(user) => &user.name,
            Login::Named(_, name) => name,
            Login::Start => "-",
        }
    }

    /// The device settings in force: the user's once logged in, the
    /// global ones before.
    fn device(&self) -> Device {
        match self.login.user() {
            Some(user) => user.device,
            None => self.shared.config.device,
        }
    }

    /// How names travel on this session's wire.
    fn encoding(&self) -> NameEncoding {
        if self.utf8_on {
            NameEncoding::UTF8
        } else {
            self.device().filename_encoding
        }
    }

    /// Queues a reply: written at once when the socket takes it. Replies
    /// are made in UTF-8 and sent in the session's name encoding (the
    /// names they quote must read back as the client sent them).
    fn say(&mut self, reply: Reply) -> io::Result<()> {
        let encoding = self.encoding();
        let encoded;
        let bytes = if encoding.is_utf8() {
            reply.as_bytes()
        } else {
            encoded = encoding.encode_text(reply.as_bytes());
            &encoded
        };
        match &mut self.unsent {
            Some(unsent) => unsent.extend_from_slice(bytes),
            None => self.unsent = self.control.try_send(bytes)?,
        }
        Ok(())
    }

    /// Queues a one-line reply; the session goes on with the next command.
    fn answer(&mut self, code: Code, text: std::fmt::Arguments<'_>) -> Handled {
        self.say(Reply::line(code, text))?;
        Ok(Flow::Continue)
    }

    /// Queues a one-line refusal: the command ends here.
    fn refuse(&mut self, code: Code, text: std::fmt::Arguments<'_>) -> Replied {
        Replied(self.say(Reply::line(code, text)))
    }

    async fn flush(&mut self) -> io::Result<()> {
        if let Some(unsent) = self.unsent.take() {
            self.control.write_all(&unsent).await?;
            self.control.flush().await?;
        } else if self.control.has_pending() {
            self.control.flush().await?;
        }
        Ok(())
    }

    /// How long the next command may take to arrive.
    fn wait_limit(&self, login_deadline: Instant) -> (Duration, &'static str) {
        match self.login.user() {
            Some(_) => (self.shared.config.idle_timeout, "idle timeout"),
            None => (
                login_deadline.saturating_duration_since(Instant::now()),
                "login timeout",
            ),
        }
    }

    /// Says 421 and returns the reason the session ends.
    async fn close_with(&mut self, text: &str, reason: &str) -> io::Result<String> {
        say!(self, Code::ServiceNotAvailable, "{text}")?;
        self.flush().await?;
        Ok(reason.into())
    }

    async fn serve(&mut self, reader: &mut LineReader, greeted: bool) -> io::Result<String> {
        if !greeted {
            self.say(greeting())?;
        }
        let login_deadline = Instant::now() + self.shared.config.login_timeout;
        loop {
            self.flush().await?;
            let (limit, why) = self.wait_limit(login_deadline);
            enum Wake {
                Input(io::Result<Input>),
                Timeout,
                Stop,
                Data(early::Early),
            }
            let client_ip = self.client_ip();
            let plan = early::watched(&self.login, self.security.data_private());
            let (control, shared) = (&mut self.control, &self.shared);
            // Boxed: only sessions with a PROT P passive plan pay for it.
            let watch = plan.map(|plan| Box::pin(early::watch(plan, client_ip, &shared.metrics)));
            // The data connection first: when the client has connected or
            // spoken on it and sent its command, the connection is taken
            // (and its TLS handshake made) before the command runs.
            let wake = async {
                match watch {
                    Some(watch) => Wake::Data(watch.await),
                    None => std::future::pending().await,
                }
            }
            .or(async { Wake::Input(reader.fill(control).await) })
            .or(async {
                Timer::after(limit).await;
                Wake::Timeout
            })
            .or(async {
                shared.stopping().await;
                Wake::Stop
            })
            .await;
            let n = match wake {
                Wake::Timeout => {
                    // The setting, not the time that was left of it.
                    let setting = match self.login.user() {
                        Some(_) => self.shared.config.idle_timeout,
                        None => self.shared.config.login_timeout,
                    };
                    let text = format!(
                        "{why} ({} s), closing control connection",
                        setting.as_secs()
                    );
                    return self.close_with(&text, why).await;
                }
                Wake::Stop => return self.shutdown().await,
                Wake::Data(step) => {
                    Box::pin(self.early_data(step)).await;
                    continue;
                }
                Wake::Input(input) => match input? {
                    Input::Closed => return Ok("client closed".into()),
                    Input::TooLong => {
                        metrics::inc(&self.metrics().lines_too_long);
                        say!(self, Code::SyntaxError, "command line too long, closing")?;
                        self.flush().await?;
                        return Ok("line too long".into());
                    }
                    Input::Line(n) => n,
                },
            };
            if n == 0 {
                // Empty lines are ignored.
                reader.consume();
                continue;
            }
            let flow = {
                let parsed = command::parse(reader.line(n));
                if let Ok(cmd) = &parsed {
                    log_command(self.client, cmd);
                }
                // Boxed, like the transfer below: a command's state exists
                // only while it runs, so an idle session stays small.
                let flow = Box::pin(self.dispatch(parsed)).await?;
                reader.consume();
                flow
            };
            match flow {
                Flow::Continue => {}
                Flow::Close => {
                    self.flush().await?;
                    return Ok("quit".into());
                }
                Flow::StartTls => {
                    // Boxed like a command and a transfer: the handshake's state
                    // (2.6 KiB) exists only while it runs, not in every
                    // idle session's future.
                    if let Some(reason) = Box::pin(self.start_tls(reader)).await? {
                        return Ok(reason);
                    }
                }
                Flow::ClearControl => {
                    if let Some(reason) = Box::pin(self.clear_control(reader)).await? {
                        return Ok(reason);
                    }
                }
                Flow::Transfer(job) => {
                    if let Some(reason) = Box::pin(self.transfer(job, reader)).await? {
                        return Ok(reason);
                    }
                    if self.shared.is_stopping() {
                        return self.shutdown().await;
                    }
                }
            }
        }
    }

    async fn shutdown(&mut self) -> io::Result<String> {
        let text = "server shutting down, closing control connection";
        self.close_with(text, "shutdown").await
    }
}

/// Commands at debug level; a password never reaches a log.
fn log_command(client: SocketAddr, cmd: &Command<'_>) {
    if log::log_enabled!(log::Level::Debug) {
        match cmd {
            Command::Pass(_) => log::debug!("client={client} PASS *******"),
            other => log::debug!("client={client} {other:?}"),
        }
    }
}
