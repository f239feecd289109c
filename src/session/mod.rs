//! One FTP session: one task owns its state; no locks, no shared mutable
//! state but counters. The control connection is read into a fixed line
//! buffer; each line is parsed once (`command::parse`) and answered. A
//! transfer runs as its own boxed future (so its buffers exist only while it
//! runs) raced against the control connection, where ABOR may arrive.

use crate::auth::{self, Password};
use crate::config::User;
use crate::data::active::{self, DataPlan, Peer};
use crate::data::transfer::{self, TransferError};
use crate::delivery::Refusal;
use crate::limits::MAX_LINE;
use crate::limits::MAX_PROXY_HEADER;
use crate::ops::metrics::{self, Metrics};
use crate::protocol::command::{self, Command, EpsvArg, ParseError, Type};
use crate::protocol::listing::{self, Entry, Format};
use crate::protocol::reply::{self, Code, Quoted, Reply};
use crate::shared::Shared;
use crate::storage::jail::{self, Jail, JailError, VirtualPath};
use crate::storage::upload::TempUpload;
use crate::sys::budget::FdPermit;
use crate::sys::random;
use crate::sys::unauthenticated::Pending;
use smol::future::FutureExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, Timer};
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sends a one-line reply: `say!(self, Code::CommandOk, "text {}", x)`.
macro_rules! say {
    ($session:expr, $code:expr, $($fmt:tt)+) => {
        $session.say(Reply::line($code, format_args!($($fmt)+)))
    };
}

/// What the session starts with: bytes already read after the header, and
/// whether the greeting was already sent.
pub struct Prelude {
    pub buf: [u8; MAX_PROXY_HEADER],
    pub start: usize,
    pub end: usize,
    pub greeted: bool,
    /// The connection's place among those not logged in yet; left at login.
    pub pending: Option<Pending>,
}

impl Prelude {
    /// No header read, nothing sent: a connection without PROXY protocol.
    pub fn empty() -> Prelude {
        Prelude {
            buf: [0; MAX_PROXY_HEADER],
            start: 0,
            end: 0,
            greeted: false,
            pending: None,
        }
    }

    /// The bytes the client sent after the header.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

/// The control connection's input: a fixed buffer holding at most one
/// command line plus what followed it.
struct LineReader {
    buf: [u8; MAX_LINE],
    len: usize,
}

enum Input {
    /// A complete line is at the front of the buffer, this long (line end excluded).
    Line(usize),
    Closed,
    TooLong,
}

impl LineReader {
    /// Starts with the bytes the PROXY handshake read after the header
    /// (at most `MAX_PROXY_HEADER`, less than `MAX_LINE`).
    fn with_prelude(bytes: &[u8]) -> LineReader {
        let mut buf = [0; MAX_LINE];
        let len = bytes.len().min(MAX_LINE);
        buf[..len].copy_from_slice(&bytes[..len]);
        LineReader { buf, len }
    }

    /// Length of the first line if complete, without its LF or CRLF.
    fn complete_line(&self) -> Option<usize> {
        let lf = self.buf[..self.len].iter().position(|&b| b == b'\n')?;
        Some(if lf > 0 && self.buf[lf - 1] == b'\r' {
            lf - 1
        } else {
            lf
        })
    }

    /// Waits until a complete line is buffered. Cancel-safe: bytes read are
    /// kept in the buffer.
    async fn fill(&mut self, socket: &Async<TcpStream>) -> io::Result<Input> {
        loop {
            if let Some(n) = self.complete_line() {
                return Ok(Input::Line(n));
            }
            if self.len == self.buf.len() {
                return Ok(Input::TooLong);
            }
            let mut reader = socket;
            let n = reader.read(&mut self.buf[self.len..]).await?;
            if n == 0 {
                return Ok(Input::Closed);
            }
            self.len += n;
        }
    }

    fn line(&self, n: usize) -> &[u8] {
        &self.buf[..n]
    }

    /// Drops the first line and its line end.
    fn consume(&mut self) {
        let lf = self.buf[..self.len]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.len, |p| p + 1);
        self.buf.copy_within(lf..self.len, 0);
        self.len -= lf;
    }
}

enum Login {
    Start,
    /// USER given; `None` when no such user (PASS still costs a hash check).
    Named(Option<Arc<User>>, String),
    In {
        user: Arc<User>,
        jail: Jail,
    },
}

/// What to do after a command.
enum Flow {
    Continue,
    Close,
    Transfer(Job),
}

/// A transfer, with everything resolved before the data connection opens.
enum Job {
    Retr {
        real: PathBuf,
        virt: VirtualPath,
        offset: u64,
    },
    Store {
        target: PathBuf,
        virt: VirtualPath,
        prefix: Option<u64>,
        verb: &'static str,
        unique: bool,
    },
    List {
        real: PathBuf,
        virt: VirtualPath,
        format: Format,
    },
}

pub struct Session {
    shared: Arc<Shared>,
    control: Async<TcpStream>,
    client: SocketAddr,
    local: SocketAddr,
    login: Login,
    cwd: VirtualPath,
    kind: Type,
    rest: u64,
    rename_from: Option<(PathBuf, VirtualPath)>,
    data: DataPlan,
    /// Descriptors held for a passive listener and its transfer.
    passive_fds: Option<FdPermit>,
    epsv_all: bool,
    failures: u32,
    /// Reply bytes the socket has not taken yet (rare: a full send buffer).
    unsent: Option<Vec<u8>>,
    /// Listed among the connections not logged in yet (may be shed) until
    /// the login succeeds.
    unauthenticated: Option<Pending>,
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
    mut prelude: Prelude,
) -> impl std::future::Future<Output = ()> {
    // The prelude's buffer is copied into the line reader here, outside the
    // future, so the session's state never carries it.
    let mut reader = LineReader::with_prelude(prelude.bytes());
    let greeted = prelude.greeted;
    let unauthenticated = prelude.pending.take();
    async move {
        let started = Instant::now();
        log::info!("session start client={client}");
        let mut session = Session {
            shared,
            control,
            client,
            local,
            login: Login::Start,
            cwd: VirtualPath::root(),
            kind: Type::Ascii,
            rest: 0,
            rename_from: None,
            data: DataPlan::None,
            passive_fds: None,
            epsv_all: false,
            failures: 0,
            unsent: None,
            unauthenticated,
        };
        let reason = match session.serve(&mut reader, greeted).await {
            Ok(reason) => reason,
            Err(e) => format!("error: {e}"),
        };
        log::info!(
            "session end client={} user={} seconds={:.1} reason={reason}",
            session.client,
            session.user_name(),
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
            Login::In { user, .. } => &user.name,
            Login::Named(_, name) => name,
            Login::Start => "-",
        }
    }

    /// Queues a reply: written at once when the socket takes it.
    fn say(&mut self, reply: Reply) -> io::Result<()> {
        match &mut self.unsent {
            Some(unsent) => unsent.extend_from_slice(reply.as_bytes()),
            None => self.unsent = reply::try_send(&self.control, reply.as_bytes())?,
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if let Some(unsent) = self.unsent.take() {
            let mut writer = &self.control;
            writer.write_all(&unsent).await?;
        }
        Ok(())
    }

    /// How long the next command may take to arrive.
    fn wait_limit(&self, login_deadline: Instant) -> (Duration, &'static str) {
        match self.login {
            Login::In { .. } => (self.shared.config.idle_timeout, "idle timeout"),
            _ => (
                login_deadline.saturating_duration_since(Instant::now()),
                "login timeout",
            ),
        }
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
            }
            let wake = async { Wake::Input(reader.fill(&self.control).await) }
                .or(async {
                    Timer::after(limit).await;
                    Wake::Timeout
                })
                .or(async {
                    self.shared.stopping().await;
                    Wake::Stop
                })
                .await;
            let n = match wake {
                Wake::Timeout => {
                    say!(
                        self,
                        Code::ServiceNotAvailable,
                        "{why} ({} s), closing control connection",
                        limit.as_secs()
                    )?;
                    self.flush().await?;
                    return Ok(why.into());
                }
                Wake::Stop => {
                    say!(
                        self,
                        Code::ServiceNotAvailable,
                        "server shutting down, closing control connection"
                    )?;
                    self.flush().await?;
                    return Ok("shutdown".into());
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
                let flow = Box::pin(self.handle(parsed)).await?;
                reader.consume();
                flow
            };
            match flow {
                Flow::Continue => {}
                Flow::Close => {
                    self.flush().await?;
                    return Ok("quit".into());
                }
                Flow::Transfer(job) => {
                    if let Some(reason) = Box::pin(self.transfer(job, reader)).await? {
                        return Ok(reason);
                    }
                    if self.shared.is_stopping() {
                        say!(
                            self,
                            Code::ServiceNotAvailable,
                            "server shutting down, closing control connection"
                        )?;
                        self.flush().await?;
                        return Ok("shutdown".into());
                    }
                }
            }
        }
    }

    async fn handle(&mut self, parsed: Result<Command<'_>, ParseError>) -> io::Result<Flow> {
        let cmd = match parsed {
            Ok(cmd) => cmd,
            Err(e) => {
                let (code, text) = match e {
                    ParseError::Unknown => (Code::SyntaxError, "unknown command"),
                    ParseError::NotUtf8 => (Code::SyntaxError, "command is not UTF-8"),
                    ParseError::BadArgument => (
                        Code::SyntaxErrorInArguments,
                        "missing or malformed argument",
                    ),
                    ParseError::PathTooLong => (Code::SyntaxErrorInArguments, "path too long"),
                    ParseError::NotImplementedParameter => (
                        Code::NotImplementedForParameter,
                        "parameter not implemented",
                    ),
                    ParseError::BadNetworkProtocol => (
                        Code::NetworkProtocolNotSupported,
                        "network protocol not supported, use (1,2)",
                    ),
                };
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

        // Commands allowed before login.
        match cmd {
            Command::User(name) => return self.user(name),
            Command::Pass(password) => return self.pass(password.to_string()).await,
            Command::Quit => {
                say!(self, Code::Closing, "goodbye")?;
                return Ok(Flow::Close);
            }
            Command::Noop => {
                return say!(self, Code::CommandOk, "NOOP ok").map(|()| Flow::Continue)
            }
            Command::Syst => {
                return say!(self, Code::SystemType, "UNIX Type: L8").map(|()| Flow::Continue)
            }
            Command::Feat => return self.feat().map(|()| Flow::Continue),
            Command::Opts(arg) => return self.opts(arg).map(|()| Flow::Continue),
            Command::Help => return self.help().map(|()| Flow::Continue),
            _ => {}
        }
        let (user, jail) = match &self.login {
            Login::In { user, jail } => (user.clone(), jail.clone()),
            _ => {
                say!(self, Code::NotLoggedIn, "log in with USER and PASS first")?;
                return Ok(Flow::Continue);
            }
        };
        let allowed = user.permissions;
        macro_rules! require {
            ($permission:ident) => {
                if !allowed.$permission {
                    say!(self, Code::FileUnavailable, "permission denied")?;
                    return Ok(Flow::Continue);
                }
            };
        }
        macro_rules! resolve {
            ($arg:expr) => {
                match jail::resolve(&self.cwd, $arg) {
                    Ok(path) => path,
                    Err(e) => {
                        self.refuse_path(e)?;
                        return Ok(Flow::Continue);
                    }
                }
            };
        }
        macro_rules! real {
            ($how:ident, $path:expr) => {
                match jail.$how(&$path).await {
                    Ok(real) => real,
                    Err(e) => {
                        self.refuse_path(e)?;
                        return Ok(Flow::Continue);
                    }
                }
            };
        }

        match cmd {
            Command::Stat(None) => self.stat()?,
            Command::Stat(Some(_)) => say!(
                self,
                Code::NotImplementedForParameter,
                "STAT with a path is not supported; use LIST"
            )?,
            Command::Type(kind) => {
                self.kind = kind;
                let name = if kind == Type::Image {
                    "Binary"
                } else {
                    "ASCII"
                };
                say!(self, Code::CommandOk, "switching to {name} mode")?
            }
            Command::Mode => say!(self, Code::CommandOk, "mode S ok")?,
            Command::Stru => say!(self, Code::CommandOk, "structure F ok")?,
            Command::Allo => say!(self, Code::Superfluous, "ALLO not needed")?,
            Command::Pwd => say!(
                self,
                Code::PathCreated,
                "{} is the current directory",
                Quoted(self.cwd.as_str())
            )?,
            Command::Cwd(arg) => {
                let path = resolve!(arg);
                self.change_dir(&jail, path).await?
            }
            Command::Cdup => {
                let path = resolve!("..");
                self.change_dir(&jail, path).await?
            }
            Command::Mkd(arg) => {
                require!(mkdir);
                let path = resolve!(arg);
                let real = real!(entry, path);
                match async_fs::create_dir(&real).await {
                    Ok(()) => say!(self, Code::PathCreated, "{} created", Quoted(path.as_str()))?,
                    Err(e) => self.refuse_io(e)?,
                }
            }
            Command::Rmd(arg) => {
                require!(modify);
                let path = resolve!(arg);
                if path.is_root() {
                    say!(
                        self,
                        Code::FileUnavailable,
                        "cannot remove the home directory"
                    )?;
                    return Ok(Flow::Continue);
                }
                let real = real!(entry, path);
                match async_fs::remove_dir(&real).await {
                    Ok(()) => say!(self, Code::FileActionOk, "directory removed")?,
                    Err(e) => self.refuse_io(e)?,
                }
            }
            Command::Dele(arg) => {
                require!(modify);
                let path = resolve!(arg);
                let real = real!(entry, path);
                match async_fs::symlink_metadata(&real).await {
                    Ok(meta) if meta.is_dir() => {
                        say!(self, Code::FileUnavailable, "is a directory; use RMD")?
                    }
                    Ok(_) => match async_fs::remove_file(&real).await {
                        Ok(()) => say!(self, Code::FileActionOk, "file deleted")?,
                        Err(e) => self.refuse_io(e)?,
                    },
                    Err(e) => self.refuse_io(e)?,
                }
            }
            Command::Rnfr(arg) => {
                require!(modify);
                let path = resolve!(arg);
                let real = real!(entry, path);
                match async_fs::symlink_metadata(&real).await {
                    Ok(_) => {
                        self.rename_from = Some((real, path));
                        say!(self, Code::PendingFurtherInformation, "ready for RNTO")?
                    }
                    Err(e) => self.refuse_io(e)?,
                }
            }
            Command::Rnto(arg) => {
                require!(modify);
                let Some((from, _)) = self.rename_from.take() else {
                    say!(self, Code::BadSequence, "RNFR first")?;
                    return Ok(Flow::Continue);
                };
                let path = resolve!(arg);
                let real = real!(entry, path);
                match async_fs::rename(&from, &real).await {
                    Ok(()) => say!(self, Code::FileActionOk, "renamed")?,
                    Err(e) => self.refuse_io(e)?,
                }
            }
            Command::Size(arg) | Command::Mdtm(arg) => {
                require!(list);
                let is_size = matches!(cmd, Command::Size(_));
                let path = resolve!(arg);
                let real = real!(existing, path);
                match async_fs::metadata(&real).await {
                    Ok(meta) if meta.is_file() => {
                        let entry = Entry::from_metadata(&meta);
                        if is_size {
                            say!(self, Code::FileStatus, "{}", entry.size)?
                        } else {
                            say!(
                                self,
                                Code::FileStatus,
                                "{}",
                                crate::clock::Utc::from_unix(entry.mtime).time_val()
                            )?
                        }
                    }
                    Ok(_) => say!(self, Code::FileUnavailable, "not a plain file")?,
                    Err(e) => self.refuse_io(e)?,
                }
            }
            Command::Mlst(arg) => {
                require!(list);
                let path = match arg {
                    Some(arg) => resolve!(arg),
                    None => self.cwd.clone(),
                };
                let real = real!(existing, path);
                match async_fs::metadata(&real).await {
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
                        self.say(reply)?
                    }
                    Err(e) => self.refuse_io(e)?,
                }
            }
            Command::List(arg) | Command::Nlst(arg) | Command::Mlsd(arg) => {
                require!(list);
                let format = match cmd {
                    Command::List(_) => Format::List,
                    Command::Nlst(_) => Format::Nlst,
                    _ => Format::Mlsd,
                };
                let path = match arg {
                    Some(arg) => resolve!(arg),
                    None => self.cwd.clone(),
                };
                let real = real!(existing, path);
                if format == Format::Mlsd
                    && !async_fs::metadata(&real).await.is_ok_and(|m| m.is_dir())
                {
                    say!(self, Code::FileUnavailable, "not a directory")?;
                    return Ok(Flow::Continue);
                }
                return Ok(Flow::Transfer(Job::List {
                    real,
                    virt: path,
                    format,
                }));
            }
            Command::Retr(arg) => {
                require!(retrieve);
                let path = resolve!(arg);
                let real = real!(existing, path);
                match async_fs::metadata(&real).await {
                    Ok(meta) if meta.is_file() => {
                        if rest > meta.len() {
                            say!(
                                self,
                                Code::SyntaxErrorInArguments,
                                "restart offset beyond the end of the file"
                            )?;
                            return Ok(Flow::Continue);
                        }
                        return Ok(Flow::Transfer(Job::Retr {
                            real,
                            virt: path,
                            offset: rest,
                        }));
                    }
                    Ok(_) => say!(self, Code::FileUnavailable, "not a plain file")?,
                    Err(e) => self.refuse_io(e)?,
                }
            }
            Command::Stor(arg) | Command::Appe(arg) => {
                require!(store);
                let append = matches!(cmd, Command::Appe(_));
                let path = resolve!(arg);
                let target = real!(entry, path);
                if async_fs::metadata(&target).await.is_ok_and(|m| m.is_dir()) {
                    say!(self, Code::FileUnavailable, "is a directory")?;
                    return Ok(Flow::Continue);
                }
                let prefix = match (append, rest) {
                    (true, _) => Some(u64::MAX),
                    (false, 0) => None,
                    (false, offset) => Some(offset),
                };
                let verb = if append { "APPE" } else { "STOR" };
                return Ok(Flow::Transfer(Job::Store {
                    target,
                    virt: path,
                    prefix,
                    verb,
                    unique: false,
                }));
            }
            Command::Stou => {
                require!(store);
                let path = resolve!(&format!("lakeftpd-{}", random::hex_name::<6>()));
                let target = real!(entry, path);
                return Ok(Flow::Transfer(Job::Store {
                    target,
                    virt: path,
                    prefix: None,
                    verb: "STOU",
                    unique: true,
                }));
            }
            Command::Rest(offset) => {
                self.rest = offset;
                say!(
                    self,
                    Code::PendingFurtherInformation,
                    "restarting at {offset}; send STOR or RETR"
                )?
            }
            Command::Abor => {
                self.data = DataPlan::None;
                self.passive_fds = None;
                say!(self, Code::ClosingDataConnection, "no transfer to abort")?
            }
            Command::Port(addr) | Command::Eprt(addr) => self.port(addr)?,
            Command::Pasv => self.pasv().await?,
            Command::Epsv(arg) => self.epsv(arg).await?,
            Command::User(_)
            | Command::Pass(_)
            | Command::Quit
            | Command::Noop
            | Command::Syst
            | Command::Feat
            | Command::Opts(_)
            | Command::Help => {
                unreachable!("handled before login")
            }
        }
        Ok(Flow::Continue)
    }

    fn user(&mut self, name: &str) -> io::Result<Flow> {
        if matches!(self.login, Login::In { .. }) {
            say!(self, Code::BadSequence, "already logged in")?;
            return Ok(Flow::Continue);
        }
        let user = self.shared.user(name);
        // Same answer for unknown users: no user enumeration.
        let shown: String = name.chars().take(crate::limits::MAX_USER_NAME).collect();
        self.login = Login::Named(user, shown);
        say!(self, Code::NeedPassword, "password required")?;
        Ok(Flow::Continue)
    }

    async fn pass(&mut self, password: String) -> io::Result<Flow> {
        let (user, name) = match &self.login {
            Login::Named(user, name) => (user.clone(), name.clone()),
            Login::In { .. } => {
                say!(self, Code::BadSequence, "already logged in")?;
                return Ok(Flow::Continue);
            }
            Login::Start => {
                say!(self, Code::BadSequence, "send USER first")?;
                return Ok(Flow::Continue);
            }
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
        if auth::verify(user.clone(), Password(password)).await {
            let user = user.expect("verify succeeds only for a known user");
            match Jail::open(&user.home).await {
                Ok(jail) => {
                    self.shared
                        .defender(|d| d.succeeded(ip, &user.name, Instant::now()));
                    // Logged in: no longer among those that may be shed.
                    self.unauthenticated = None;
                    metrics::inc(&self.metrics().logins_ok);
                    log::info!("login ok client={} user={}", self.client, user.name);
                    self.login = Login::In { user, jail };
                    self.cwd = VirtualPath::root();
                    say!(self, Code::LoggedIn, "logged in")?;
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
                    return Ok(Flow::Close);
                }
            }
            return Ok(Flow::Continue);
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
                "client={ip} banned ({scope}) for {} s: failed logins past ban_after (last user={name})",
                ban.length.as_secs()
            );
        }
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
        say!(self, Code::NotLoggedIn, "login incorrect")?;
        Ok(Flow::Continue)
    }

    fn feat(&mut self) -> io::Result<()> {
        let config = &self.shared.config;
        let (active, passive, epsv) =
            (config.active, config.passive, config.passive && config.epsv);
        let mut reply = Reply::new();
        reply.first(Code::SystemStatus, format_args!("Features:"));
        if active {
            reply.middle(format_args!("EPRT"));
        }
        if epsv {
            reply.middle(format_args!("EPSV"));
        }
        reply
            .middle(format_args!("MDTM"))
            .middle(format_args!("MLST type*;size*;modify*;"));
        if passive {
            reply.middle(format_args!("PASV"));
        }
        reply
            .middle(format_args!("REST STREAM"))
            .middle(format_args!("SIZE"))
            .middle(format_args!("TVFS"))
            .middle(format_args!("UTF8"))
            .last(Code::SystemStatus, format_args!("End"));
        self.say(reply)
    }

    fn opts(&mut self, arg: &str) -> io::Result<()> {
        let mut words = arg.split_whitespace();
        let option = words.next().unwrap_or("").to_ascii_uppercase();
        match (option.as_str(), words.next()) {
            // RFC 2640 §3.1: UTF-8 is always on.
            ("UTF8", Some(v)) if v.eq_ignore_ascii_case("ON") => {
                say!(self, Code::CommandOk, "UTF8 always on")
            }
            ("UTF8", None) => say!(self, Code::CommandOk, "UTF8 always on"),
            ("MLST", _) => say!(self, Code::CommandOk, "MLST OPTS type;size;modify;"),
            _ => say!(self, Code::SyntaxErrorInArguments, "option not understood"),
        }
    }

    fn help(&mut self) -> io::Result<()> {
        let mut reply = Reply::new();
        reply
            .first(
                Code::HelpMessage,
                format_args!("The following commands are recognized:"),
            )
            .middle(format_args!(
                "ABOR ALLO APPE CDUP CWD  DELE EPRT EPSV FEAT HELP LIST MDTM MKD"
            ))
            .middle(format_args!(
                "MLSD MLST MODE NLST NOOP OPTS PASS PASV PORT PWD  QUIT REST RETR"
            ))
            .middle(format_args!(
                "RMD  RNFR RNTO SIZE STAT STOR STOU STRU SYST TYPE USER XCUP XCWD"
            ))
            .middle(format_args!("XMKD XPWD XRMD"))
            .last(Code::HelpMessage, format_args!("Help OK"));
        self.say(reply)
    }

    fn stat(&mut self) -> io::Result<()> {
        let kind = if self.kind == Type::Image {
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
        self.say(reply)
    }

    async fn change_dir(&mut self, jail: &Jail, path: VirtualPath) -> io::Result<()> {
        match jail.existing(&path).await {
            Ok(real) => match async_fs::metadata(&real).await {
                Ok(meta) if meta.is_dir() => {
                    self.cwd = path;
                    say!(
                        self,
                        Code::FileActionOk,
                        "directory changed to {}",
                        self.cwd.as_str()
                    )
                }
                Ok(_) => say!(self, Code::FileUnavailable, "not a directory"),
                Err(e) => self.refuse_io(e),
            },
            Err(e) => self.refuse_path(e),
        }
    }

    fn refuse_path(&mut self, e: JailError) -> io::Result<()> {
        match e {
            JailError::InvalidName => say!(self, Code::FileNameNotAllowed, "file name not allowed"),
            JailError::Escape => say!(self, Code::FileUnavailable, "permission denied"),
            JailError::NotFound => say!(self, Code::FileUnavailable, "no such file or directory"),
        }
    }

    /// Filesystem errors of commands without a data connection.
    fn refuse_io(&mut self, e: io::Error) -> io::Result<()> {
        match e.kind() {
            io::ErrorKind::NotFound => {
                say!(self, Code::FileUnavailable, "no such file or directory")
            }
            io::ErrorKind::AlreadyExists => say!(self, Code::FileUnavailable, "already exists"),
            io::ErrorKind::PermissionDenied => {
                say!(self, Code::FileUnavailable, "permission denied")
            }
            io::ErrorKind::DirectoryNotEmpty => {
                say!(self, Code::FileUnavailable, "directory not empty")
            }
            _ if e.raw_os_error() == Some(28) => say!(
                self,
                Code::InsufficientStorage,
                "insufficient storage space"
            ),
            _ => {
                log::warn!("client={} file operation failed: {e}", self.client);
                say!(self, Code::ActionAbortedLocalError, "local error")
            }
        }
    }

    /// The logged-in user's canonical home (transfers happen only then).
    fn home(&self) -> PathBuf {
        match &self.login {
            Login::In { jail, .. } => jail.home().to_path_buf(),
            _ => PathBuf::new(),
        }
    }

    /// The client's address as the data connection must see it.
    fn client_ip(&self) -> IpAddr {
        self.client.ip().to_canonical()
    }

    fn port(&mut self, addr: SocketAddr) -> io::Result<()> {
        if !self.shared.config.active {
            return say!(
                self,
                Code::NotImplemented,
                "active mode is disabled; use PASV"
            );
        }
        if self.epsv_all {
            return say!(
                self,
                Code::BadSequence,
                "EPSV ALL was sent; only EPSV is allowed"
            );
        }
        // SECURITY (RFC 2577 §3, the FTP bounce attack):
        // 1) the data connection may only go to the control connection's
        //    client address;
        // 2) never to a privileged port.
        // Nothing is connected when either check fails.
        if addr.ip().to_canonical() != self.client_ip() {
            metrics::inc(&self.metrics().port_refused_foreign_address);
            log::warn!(
                "client={} PORT/EPRT to foreign address {} refused",
                self.client,
                addr.ip()
            );
            return say!(
                self,
                Code::SyntaxErrorInArguments,
                "refused: the data address must be your own (RFC 2577)"
            );
        }
        if addr.port() < 1024 {
            metrics::inc(&self.metrics().port_refused_low_port);
            log::warn!(
                "client={} PORT/EPRT to privileged port {} refused",
                self.client,
                addr.port()
            );
            return say!(
                self,
                Code::SyntaxErrorInArguments,
                "refused: the data port must be 1024 or above (RFC 2577)"
            );
        }
        self.data = DataPlan::Active(addr);
        self.passive_fds = None;
        say!(self, Code::CommandOk, "PORT command successful")
    }

    /// Descriptors for a transfer (see budget.rs): waits while the process
    /// is at its open-file limit, up to `data_timeout`.
    async fn transfer_fds(&self) -> Option<FdPermit> {
        let budget = self.shared.fds.clone();
        let limit = self.shared.config.data_timeout;
        async { Some(budget.transfer().await) }
            .or(async {
                Timer::after(limit).await;
                None
            })
            .await
    }

    /// Binds a passive listener on the control connection's local address.
    /// The listener and the transfer after it hold descriptors from the
    /// budget from now on.
    async fn passive_listener(&mut self) -> Option<u16> {
        self.data = DataPlan::None;
        if self.passive_fds.is_none() {
            self.passive_fds = self.transfer_fds().await;
        }
        if self.passive_fds.is_none() {
            log::warn!(
                "client={} no passive port: open-file limit reached",
                self.client
            );
            return None;
        }
        match self.shared.passive.bind(self.local.ip(), self.client_ip()) {
            Ok((listener, port)) => {
                self.data = DataPlan::Passive(listener);
                Some(port)
            }
            Err(e) => {
                self.passive_fds = None;
                log::warn!("client={} no passive port: {e}", self.client);
                None
            }
        }
    }

    async fn pasv(&mut self) -> io::Result<()> {
        if !self.shared.config.passive {
            return say!(
                self,
                Code::NotImplemented,
                "passive mode is disabled; use PORT"
            );
        }
        if self.epsv_all {
            return say!(
                self,
                Code::BadSequence,
                "EPSV ALL was sent; only EPSV is allowed"
            );
        }
        let advertised = self
            .shared
            .public_ip
            .unwrap_or(self.local.ip().to_canonical());
        let IpAddr::V4(v4) = advertised else {
            return say!(
                self,
                Code::NetworkProtocolNotSupported,
                "PASV needs IPv4; use EPSV"
            );
        };
        let Some(port) = self.passive_listener().await else {
            return say!(
                self,
                Code::CantOpenDataConnection,
                "no passive port free, try again"
            );
        };
        let [a, b, c, d] = v4.octets();
        say!(
            self,
            Code::EnteringPassive,
            "Entering Passive Mode ({a},{b},{c},{d},{},{}).",
            port >> 8,
            port & 0xff
        )
    }

    async fn epsv(&mut self, arg: EpsvArg) -> io::Result<()> {
        if !self.shared.config.passive || !self.shared.config.epsv {
            return say!(self, Code::NotImplemented, "EPSV is disabled; use PASV");
        }
        let family = if self.local.ip().to_canonical().is_ipv4() {
            1
        } else {
            2
        };
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                return say!(self, Code::CommandOk, "EPSV ALL ok");
            }
            EpsvArg::Protocol(p) if p != family => {
                return say!(
                    self,
                    Code::NetworkProtocolNotSupported,
                    "network protocol not supported, use ({family})"
                );
            }
            _ => {}
        }
        let Some(port) = self.passive_listener().await else {
            return say!(
                self,
                Code::CantOpenDataConnection,
                "no passive port free, try again"
            );
        };
        say!(
            self,
            Code::EnteringExtendedPassive,
            "Entering Extended Passive Mode (|||{port}|)"
        )
    }

    /// Runs a transfer: prepare, open the data connection, 150, move the
    /// bytes while watching the control connection for ABOR, reply.
    /// Returns a reason when the session must end.
    async fn transfer(&mut self, job: Job, reader: &mut LineReader) -> io::Result<Option<String>> {
        let config = &self.shared.config;
        let stall = config.data_timeout;
        let peer = Peer {
            client_ip: self.client_ip(),
            local_ip: self.local.ip(),
            source_port: config.active_source_port,
            connect_timeout: config.active_connect_timeout,
            accept_timeout: config.passive_accept_timeout,
        };
        let max_size = config.max_file_size;
        let kind = self.kind;
        let started = Instant::now();
        let (verb, virt) = match &job {
            Job::Retr { virt, .. } => ("RETR", virt.clone()),
            Job::Store { virt, verb, .. } => (*verb, virt.clone()),
            Job::List { virt, format, .. } => (format_verb(*format), virt.clone()),
        };

        // The data socket and the file count against the open-file limit:
        // wait for them rather than fail with EMFILE (budget.rs).
        let fds = match self.passive_fds.take() {
            Some(fds) => Some(fds),
            None => self.transfer_fds().await,
        };
        let Some(_fds) = fds else {
            self.data = DataPlan::None;
            say!(
                self,
                Code::CantOpenDataConnection,
                "server busy (open-file limit), try again"
            )?;
            self.log_transfer(verb, &virt, 0, started, Code::CantOpenDataConnection);
            return Ok(None);
        };

        // An upload's temporary exists before the data connection opens, so
        // a full disk or a forbidden name is answered without one.
        let mut upload = None;
        if let Job::Store { target, prefix, .. } = &job {
            match TempUpload::create(self.home(), target.clone(), *prefix).await {
                Ok(u) => upload = Some(u),
                Err(e) => {
                    self.data = DataPlan::None;
                    let code = self.transfer_refusal(&TransferError::Local(e));
                    self.log_transfer(verb, &virt, 0, started, code);
                    return Ok(None);
                }
            }
        }

        let plan = std::mem::replace(&mut self.data, DataPlan::None);
        let stream = match active::open(plan, &peer, &self.shared.metrics).await {
            Ok(stream) => stream,
            Err(e) => {
                say!(self, Code::CantOpenDataConnection, "{e}")?;
                self.log_transfer(verb, &virt, 0, started, Code::CantOpenDataConnection);
                return Ok(None);
            }
        };
        let mode = if kind == Type::Image {
            "BINARY"
        } else {
            "ASCII"
        };
        match &job {
            Job::Store {
                unique: true, virt, ..
            } => say!(self, Code::FileStatusOk, "FILE: {}", virt.file_name())?,
            Job::List { .. } => say!(self, Code::FileStatusOk, "here comes the listing")?,
            _ => say!(
                self,
                Code::FileStatusOk,
                "opening {mode} mode data connection for {}",
                virt.as_str()
            )?,
        }
        self.flush().await?;

        metrics::inc(&self.shared.metrics.transfers_now);
        let home = self.home();
        let shared = self.shared.clone();
        let metrics = &shared.metrics;
        let work = async {
            match job {
                Job::Retr { real, offset, .. } => {
                    transfer::send_file(stream, home, real, offset, kind, stall, metrics).await
                }
                Job::List { real, format, .. } => {
                    transfer::send_listing(stream, real, format, stall, metrics).await
                }
                Job::Store { .. } => {
                    let upload_ref = upload.as_mut().expect("created above");
                    transfer::receive(
                        stream,
                        upload_ref,
                        kind,
                        max_size,
                        stall,
                        metrics,
                        &shared.fds,
                    )
                    .await
                }
            }
        };
        // Boxed: the transfer's state lives only while it runs.
        let mut work = Box::pin(work);
        enum Event {
            Done(Result<u64, TransferError>),
            Control(io::Result<Input>),
            HardStop,
        }
        let mut watching = true;
        let outcome = loop {
            let event = if watching {
                async { Event::Done(work.as_mut().await) }
                    .or(async { Event::Control(reader.fill(&self.control).await) })
                    .or(async {
                        shared.hard_stopping().await;
                        Event::HardStop
                    })
                    .await
            } else {
                async { Event::Done(work.as_mut().await) }
                    .or(async {
                        shared.hard_stopping().await;
                        Event::HardStop
                    })
                    .await
            };
            match event {
                Event::Done(result) => break Some(result),
                Event::Control(Ok(Input::Line(n))) => {
                    if matches!(command::parse(reader.line(n)), Ok(Command::Abor)) {
                        reader.consume();
                        break None;
                    }
                    // Another command: answered after the transfer.
                    watching = false;
                }
                // The client hung up or sent garbage: abandon the transfer.
                Event::Control(_) => {
                    drop(work);
                    drop(upload);
                    metrics::dec(&metrics.transfers_now);
                    self.count_transfer(verb, false);
                    self.log_transfer(
                        verb,
                        &virt,
                        0,
                        started,
                        Code::ConnectionClosedTransferAborted,
                    );
                    return Ok(Some("client closed during transfer".into()));
                }
                Event::HardStop => {
                    drop(work);
                    drop(upload);
                    metrics::dec(&metrics.transfers_now);
                    self.count_transfer(verb, false);
                    say!(
                        self,
                        Code::ServiceNotAvailable,
                        "server shutting down, transfer aborted"
                    )?;
                    self.flush().await?;
                    self.log_transfer(verb, &virt, 0, started, Code::ServiceNotAvailable);
                    return Ok(Some("shutdown during transfer".into()));
                }
            }
        };
        drop(work);
        metrics::dec(&metrics.transfers_now);

        let Some(result) = outcome else {
            // ABOR (RFC 959 §4.1.3): 426 for the aborted transfer, then 226.
            drop(upload);
            self.count_transfer(verb, false);
            say!(
                self,
                Code::ConnectionClosedTransferAborted,
                "transfer aborted"
            )?;
            say!(self, Code::ClosingDataConnection, "ABOR successful")?;
            self.log_transfer(
                verb,
                &virt,
                0,
                started,
                Code::ConnectionClosedTransferAborted,
            );
            return Ok(None);
        };
        let bytes = match result {
            Ok(bytes) => bytes,
            Err(e) => {
                drop(upload);
                self.count_transfer(verb, false);
                log::warn!(
                    "client={} {verb} {} failed: {e}",
                    self.client,
                    virt.as_str()
                );
                let code = self.transfer_refusal(&e);
                self.log_transfer(verb, &virt, 0, started, code);
                return Ok(None);
            }
        };
        let mut placed = None;
        if let Some(mut upload) = upload {
            // Stream mode marks the end of a file by closing the data
            // connection (RFC 959 §3.4.1), which a client that dies
            // mid-upload also does. A live client waits for our reply on the
            // control connection; a dead one has closed it too. Look after
            // the fsync, which gives its FIN time to arrive: a partial file
            // from a dead client is never placed (nor delivered to S3).
            let synced = upload.sync().await;
            if synced.is_ok() && crate::sys::peer_closed(self.control.get_ref()) {
                drop(upload);
                self.count_transfer(verb, false);
                self.log_transfer(
                    verb,
                    &virt,
                    bytes,
                    started,
                    Code::ConnectionClosedTransferAborted,
                );
                return Ok(Some("client closed during transfer".into()));
            }
            let committed = match synced {
                Ok(()) => upload.commit().await,
                Err(e) => Err(e),
            };
            match committed {
                Ok(path) => placed = Some(path),
                Err(e) => {
                    self.count_transfer(verb, false);
                    log::error!(
                        "client={} {verb} {}: cannot make durable: {e}",
                        self.client,
                        virt.as_str()
                    );
                    let code = self.transfer_refusal(&TransferError::Local(e));
                    self.log_transfer(verb, &virt, bytes, started, code);
                    return Ok(None);
                }
            }
        }
        // S3 delivery: queue the durable file in the spool; with `ack = s3`
        // the 226 waits for S3 (delivery.rs).
        if let (Some(file), Some(delivery)) = (placed, self.shared.delivery.clone()) {
            let upload = crate::delivery::Upload {
                user: self.user_name().to_string(),
                client: self.client,
                path: virt.as_str().to_string(),
                file,
            };
            if let Err(refusal) = delivery.hand_over(upload).await {
                self.count_transfer(verb, false);
                let (code, text) = refusal_reply(&refusal);
                say!(self, code, "{text}")?;
                self.log_transfer(verb, &virt, bytes, started, code);
                return Ok(None);
            }
        }
        self.count_transfer(verb, true);
        self.log_transfer(verb, &virt, bytes, started, Code::ClosingDataConnection);
        say!(self, Code::ClosingDataConnection, "transfer complete")?;
        Ok(None)
    }

    /// Replies to a failed transfer; returns the code sent.
    fn transfer_refusal(&mut self, e: &TransferError) -> Code {
        let (code, text) = match e {
            TransferError::Network(_) => (
                Code::ConnectionClosedTransferAborted,
                "data connection failed; transfer aborted",
            ),
            TransferError::DiskFull => (
                Code::InsufficientStorage,
                "insufficient storage space; nothing was stored",
            ),
            TransferError::Local(e)
                if e.raw_os_error() == Some(28) || e.raw_os_error() == Some(122) =>
            {
                (
                    Code::InsufficientStorage,
                    "insufficient storage space; nothing was stored",
                )
            }
            TransferError::Local(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                (Code::FileUnavailable, "permission denied")
            }
            TransferError::Local(_) => (
                Code::ActionAbortedLocalError,
                "local error; nothing was stored",
            ),
            TransferError::TooLarge => (
                Code::ExceededStorageAllocation,
                "file exceeds the size limit; nothing was stored",
            ),
        };
        // A failed reply write ends the session at the next flush.
        let _ = say!(self, code, "{text}");
        code
    }

    fn count_transfer(&self, verb: &str, ok: bool) {
        let m = self.metrics();
        let counter = match (verb, ok) {
            ("STOR" | "APPE" | "STOU", true) => &m.uploads_ok,
            ("STOR" | "APPE" | "STOU", false) => &m.uploads_failed,
            ("RETR", true) => &m.downloads_ok,
            ("RETR", false) => &m.downloads_failed,
            _ => return,
        };
        metrics::inc(counter);
    }

    fn log_transfer(
        &self,
        verb: &str,
        path: &VirtualPath,
        bytes: u64,
        started: Instant,
        code: Code,
    ) {
        log::info!(
            "transfer client={} user={} verb={verb} path={:?} bytes={bytes} ms={} reply={}",
            self.client,
            self.user_name(),
            path.as_str(),
            started.elapsed().as_millis(),
            code as u16
        );
    }
}

fn format_verb(format: Format) -> &'static str {
    match format {
        Format::List => "LIST",
        Format::Nlst => "NLST",
        Format::Mlsd => "MLSD",
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

/// The reply to an upload that delivery did not accept.
fn refusal_reply(refusal: &Refusal) -> (Code, &'static str) {
    match refusal {
        Refusal::SpoolFull => (
            Code::InsufficientStorage,
            "insufficient storage space in the delivery spool; send the file again later",
        ),
        Refusal::KeyTooLong => (
            Code::FileNameNotAllowed,
            "path too long for an S3 object key; not delivered",
        ),
        Refusal::Local => (
            Code::ActionAbortedLocalError,
            "local error while queueing for S3; send the file again",
        ),
        Refusal::Timeout => (
            Code::ActionAbortedLocalError,
            "S3 did not confirm the file in time; it is queued and will be delivered",
        ),
    }
}
