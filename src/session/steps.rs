//! Running a `Job` in three steps: prepare, move the bytes, land. Each
//! ends the transfer with an `Outcome` when it fails (`Result<_, Outcome>`
//! and `?`):
//!
//! 1. `prepare`: the descriptors, an upload's temporary, the data
//!    connection, the 150 reply, TLS on the data connection;
//! 2. `move_bytes`: the bytes, while the control connection is watched for
//!    ABOR and the server for a hard stop;
//! 3. `land`: an upload is synced, its client checked, committed under its
//!    name and handed to delivery.
//!
//! `transfer` answers whatever happened once, with `finish` (outcome.rs).
//! Everything the transfer held (descriptors, the data connection, the
//! temporary, the running-transfers gauge) is released as its step returns.

use super::input::{Input, LineReader};
use super::outcome::{Done, Outcome};
use super::transfer::{Job, Work};
use super::Session;
use crate::config::User;
use crate::data::active::{self, DataPlan, Peer};
use crate::data::transfer;
use crate::ops::metrics::{self, Metrics};
use crate::protocol::command::{self, Command, Type};
use crate::protocol::listing::Format;
use crate::protocol::reply::{Code, Reply};
use crate::storage::jail::VirtualPath;
use crate::storage::upload::{Placed, TempUpload};
use crate::sys;
use crate::sys::budget::FdPermit;
use crate::tls::stream::Stream;
use crate::tls::Tickets;
use smol::future::FutureExt;
use smol::Async;
use std::future::Future;
use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// The data connection as `connect` leaves it.
enum Connected {
    /// TCP only: TLS follows the 150 under PROT P.
    Socket(Async<TcpStream>),
    /// TLS done already (the client started it before the 150).
    Secured(Stream),
}

/// A transfer ready to move bytes: its data connection is open (and
/// protected when it must be), the 150 was sent.
struct Prepared {
    mover: Mover,
    stream: Stream,
    to: Destination,
}

/// What moves the bytes; an upload carries its temporary.
enum Mover {
    Send { real: PathBuf, offset: u64 },
    List { real: PathBuf, format: Format },
    Receive(TempUpload),
}

/// What `land` needs: where the bytes went, for whom, and the descriptors
/// held until the file is in place.
struct Destination {
    virt: VirtualPath,
    user: Arc<User>,
    home: PathBuf,
    kind: Type,
    _fds: FdPermit,
}

impl Mover {
    /// An upload's temporary is made before the data connection opens, so
    /// a full disk or a forbidden name is answered without one.
    async fn new(work: Work, home: &Path) -> Result<Mover, Outcome> {
        Ok(match work {
            Work::Retr { real, offset } => Mover::Send { real, offset },
            Work::List { real, format } => Mover::List { real, format },
            Work::Store { target, prefix, .. } => {
                let upload = TempUpload::create(home.to_path_buf(), target, prefix).await;
                Mover::Receive(upload.map_err(Outcome::NoTemporary)?)
            }
        })
    }
}

/// The bytes moved; an upload's temporary holds them, not synced yet.
struct Moved {
    bytes: u64,
    upload: Option<TempUpload>,
    to: Destination,
}

/// Counts a transfer in `transfers_now` while it lives.
struct Running<'a>(&'a Metrics);

impl<'a> Running<'a> {
    fn start(metrics: &'a Metrics) -> Running<'a> {
        metrics::inc(&metrics.transfers_now);
        Running(metrics)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        metrics::dec(&self.0.transfers_now);
    }
}

impl Session {
    /// Runs a transfer to its outcome and answers it. Returns a reason when
    /// the session must end.
    pub(super) async fn transfer(
        &mut self,
        job: Job,
        reader: &mut LineReader,
    ) -> io::Result<Option<String>> {
        let started = Instant::now();
        let (verb, virt) = (job.verb, job.virt.clone());
        let outcome = match self.run(job, reader).await {
            Ok(done) => Outcome::Done(done),
            Err(outcome) => outcome,
        };
        self.finish(verb, &virt, started, outcome).await
    }

    async fn run(&mut self, job: Job, reader: &mut LineReader) -> Result<Done, Outcome> {
        let prepared = self.prepare(job).await?;
        let moved = self.move_bytes(prepared, reader).await?;
        self.land(moved).await
    }

    /// Step 1: everything before the first byte, in the order that
    /// answers a client with the least made: the protection check, the
    /// descriptors, the temporary (a full disk or a forbidden name is
    /// answered before any connection), the data connection, 150, TLS
    /// (TLS before the 150 when the client started it first: `connect`).
    async fn prepare(&mut self, job: Job) -> Result<Prepared, Outcome> {
        let Job {
            verb: _,
            virt,
            work,
            channel,
            home,
            kind,
            user,
        } = job;
        let (plan, held) = channel.into_parts();
        if self.unprotected_refused() {
            return Err(Outcome::Unprotected);
        }
        let fds = self.descriptors(held).await?;
        let opening = opening_text(&work, &virt, kind);
        let client_reads = !matches!(work, Work::Store { .. });
        let mover = Mover::new(work, &home).await?;
        let connected = self.connect(plan, client_reads).await?;
        self.announce(&opening).await?;
        let stream = match connected {
            Connected::Secured(stream) => stream,
            Connected::Socket(socket) => self.data_tls(socket, client_reads).await?,
        };
        let to = Destination {
            virt,
            user,
            home,
            kind,
            _fds: fds,
        };
        Ok(Prepared { mover, stream, to })
    }

    /// The data socket and the file count against the open-file limit:
    /// those PASV held, or wait for them rather than fail with EMFILE
    /// (budget.rs).
    async fn descriptors(&self, held: Option<FdPermit>) -> Result<FdPermit, Outcome> {
        match held {
            Some(fds) => Ok(fds),
            None => self.transfer_fds().await.ok_or(Outcome::Busy),
        }
    }

    /// Connects to the PORT address or accepts on the PASV listener, or
    /// takes the connection accepted (and secured) while the session
    /// waited for this command (early.rs). A passive client whose
    /// ClientHello is here already started TLS before the command (curl):
    /// its handshake is made now, before the 150, with a TLS 1.3 ticket it
    /// reads before the transfer if it resumes (`Tickets::IfResuming`).
    async fn connect(&self, plan: DataPlan, client_reads: bool) -> Result<Connected, Outcome> {
        let passive = matches!(plan, DataPlan::Passive(_) | DataPlan::Accepted(_));
        let plan = match plan {
            DataPlan::Secured(stream) => return Ok(Connected::Secured(stream)),
            DataPlan::Refused(refusal) => return Err(refusal.into()),
            plan => plan,
        };
        let socket = self.open(plan).await?;
        if passive && self.security.data_private() && sys::has_bytes(socket.get_ref()) {
            let tickets = if client_reads {
                Tickets::Always
            } else {
                Tickets::IfResuming
            };
            let stream = self.secure_data(socket, tickets).await?;
            return Ok(Connected::Secured(stream));
        }
        Ok(Connected::Socket(socket))
    }

    /// Makes the planned data connection.
    async fn open(&self, plan: DataPlan) -> Result<Async<TcpStream>, Outcome> {
        let config = &self.shared.config;
        let peer = Peer {
            client_ip: self.client_ip(),
            local_ip: self.local.ip(),
            source_port: config.active_source_port,
            connect_timeout: config.active_connect_timeout,
            accept_timeout: config.passive_accept_timeout,
        };
        active::open(plan, &peer, &self.shared.metrics)
            .await
            .map_err(Outcome::NoDataConnection)
    }

    /// 150 (RFC 959 §4.2): the data connection is open, the bytes follow.
    /// Failing to send it ends the session (`ControlFailed`).
    async fn announce(&mut self, opening: &str) -> Result<(), Outcome> {
        say!(self, Code::FileStatusOk, "{opening}")?;
        self.flush().await?;
        Ok(())
    }

    /// TLS on the data connection under PROT P (or implicit FTPS): the
    /// client starts its handshake once it has the 150 (security.rs).
    /// `client_reads`: a download or listing (TLS 1.3 tickets follow; not
    /// after an upload's, which the client may never read: `Tickets`).
    async fn data_tls(
        &self,
        socket: Async<TcpStream>,
        client_reads: bool,
    ) -> Result<Stream, Outcome> {
        if self.security.data_private() {
            let tickets = if client_reads {
                Tickets::Always
            } else {
                Tickets::Never
            };
            Ok(self.secure_data(socket, tickets).await?)
        } else {
            Ok(Stream::Plain(socket))
        }
    }

    /// Step 2: moves the bytes while watching the control connection: ABOR
    /// abandons the transfer, another command waits for its end, a closed
    /// control connection (or garbage on it) abandons it too. Abandoning
    /// drops the transfer, and with it an upload's temporary.
    async fn move_bytes(
        &mut self,
        prepared: Prepared,
        reader: &mut LineReader,
    ) -> Result<Moved, Outcome> {
        let Prepared { mover, stream, to } = prepared;
        let shared = self.shared.clone();
        let metrics = &shared.metrics;
        let (stall, max_size) = (shared.config.data_timeout, shared.config.max_file_size);
        let (home, kind, encoding) = (to.home.clone(), to.kind, self.encoding());
        let _running = Running::start(metrics);
        let work = async move {
            match mover {
                Mover::Send { real, offset } => {
                    let sent =
                        transfer::send_file(stream, home, real, offset, kind, stall, metrics);
                    (sent.await, None)
                }
                Mover::List { real, format } => {
                    let sent = transfer::send_listing(
                        stream, home, real, format, encoding, stall, metrics,
                    );
                    (sent.await, None)
                }
                Mover::Receive(mut upload) => {
                    let received =
                        transfer::receive(stream, &mut upload, kind, max_size, stall, metrics);
                    (received.await, Some(upload))
                }
            }
        };
        // Boxed: the transfer's state lives only while it runs. Dropped
        // when `watch` gives up on it, with an upload's temporary.
        let (result, upload) = self.watch(Box::pin(work), reader).await?;
        let bytes = result.map_err(Outcome::Failed)?;
        Ok(Moved { bytes, upload, to })
    }

    /// Runs `work` to its end while watching the control connection and
    /// the server: ABOR, a hang-up (or garbage) on the control connection,
    /// and a hard stop each abandon it. Another command waits for the end.
    async fn watch<T>(
        &mut self,
        mut work: Pin<Box<impl Future<Output = T>>>,
        reader: &mut LineReader,
    ) -> Result<T, Outcome> {
        enum Event<T> {
            Done(T),
            Control(io::Result<Input>),
            HardStop,
        }
        let shared = self.shared.clone();
        let mut watching = true;
        loop {
            let done = async { Event::Done(work.as_mut().await) };
            let hard_stop = async {
                shared.hard_stopping().await;
                Event::HardStop
            };
            let event = if watching {
                let control = async { Event::Control(reader.fill(&mut self.control).await) };
                done.or(control).or(hard_stop).await
            } else {
                done.or(hard_stop).await
            };
            match event {
                Event::Done(done) => return Ok(done),
                Event::Control(Ok(Input::Line(n))) => {
                    if matches!(command::parse(reader.line(n)), Ok(Command::Abor)) {
                        reader.consume();
                        return Err(Outcome::Aborted);
                    }
                    // Another command: answered after the transfer.
                    watching = false;
                }
                // The client hung up or sent garbage: abandon the transfer.
                Event::Control(_) => return Err(Outcome::ClientGone(0)),
                Event::HardStop => return Err(Outcome::Shutdown),
            }
        }
    }

    /// Step 3: an upload is made durable and handed to delivery; a
    /// download or a listing is done.
    async fn land(&mut self, moved: Moved) -> Result<Done, Outcome> {
        let Moved { bytes, upload, to } = moved;
        let Some(mut upload) = upload else {
            return Ok(Done {
                bytes,
                last_data_byte: None,
                crc64nvme: None,
                s3_key: None,
            });
        };
        let last_data_byte = Some(Instant::now());
        let crc64nvme = upload.crc64nvme();
        // Stream mode marks the end of a file by closing the data
        // connection (RFC 959 §3.4.1), which a client that dies mid-upload
        // also does. A live client waits for our reply on the control
        // connection; a dead one has closed it too. Look after the flush,
        // which gives its FIN time to arrive: a partial file from a dead
        // client is never placed (nor delivered to S3).
        let synced = upload.sync().await;
        let gone = self.control.socket().is_none_or(crate::sys::peer_closed);
        if synced.is_ok() && gone {
            return Err(Outcome::ClientGone(bytes));
        }
        let placed = match synced {
            Ok(()) => upload.place().await,
            Err(e) => Err(e),
        };
        let placed = placed.map_err(|e| Outcome::NotDurable(bytes, e))?;
        let s3_key = self.hand_over(placed, crc64nvme, &to, bytes).await?;
        Ok(Done {
            bytes,
            last_data_byte,
            crc64nvme: Some(crc64nvme),
            s3_key,
        })
    }

    /// Makes the placed upload durable and, with S3, queues it in the spool
    /// in the same flush; with `ack = s3` the 226 waits for S3
    /// (delivery/mod.rs). The object key it is queued under, for the
    /// transfer record.
    async fn hand_over(
        &self,
        placed: Placed,
        crc64nvme: u64,
        to: &Destination,
        bytes: u64,
    ) -> Result<Option<String>, Outcome> {
        let Placed { path, pending } = placed;
        let Some(delivery) = self.shared.delivery.clone() else {
            smol::unblock(move || pending.flush())
                .await
                .map_err(|e| Outcome::NotDurable(bytes, e))?;
            return Ok(None);
        };
        let upload = crate::delivery::Upload {
            user: to.user.name.to_string(),
            template: to.user.s3_key.clone(),
            client: self.client,
            path: to.virt.as_str().to_string(),
            file: path,
            clnt: self.client_name.as_deref().map(str::to_string),
            crc64nvme: Some(crc64nvme),
        };
        delivery
            .hand_over(upload, pending)
            .await
            .map(Some)
            .map_err(|refusal| Outcome::Refused(bytes, refusal))
    }
}

/// The 150 reply's text: STOU tells the name it chose (RFC 959 §4.1.3).
fn opening_text(work: &Work, virt: &VirtualPath, kind: Type) -> String {
    let mode = if kind == Type::Image {
        "BINARY"
    } else {
        "ASCII"
    };
    match work {
        Work::Store { unique: true, .. } => format!("FILE: {}", virt.file_name()),
        Work::List { .. } => "here comes the listing".into(),
        Work::Retr { .. } | Work::Store { .. } => {
            format!("opening {mode} mode data connection for {}", virt.as_str())
        }
    }
}
