//! Transfers: REST, and RETR, STOR, APPE, STOU, LIST, NLST, MLSD (RFC 959
//! §4.1.3, RFC 3659 §5, §7) resolved into a `Job` before the data
//! connection opens, then run: open the data connection, 150, move the
//! bytes while watching the control connection for ABOR, and (for an
//! upload) make the file durable and hand it to delivery. Every way a
//! transfer ends is an `Outcome`, answered once by `finish` (outcome.rs).

use super::dispatch::Account;
use super::input::{Input, LineReader};
use super::outcome::Outcome;
use super::{Flow, Handled, Login, Session};
use crate::data::active::{self, DataPlan, Peer};
use crate::data::transfer::{self, TransferError};
use crate::ops::metrics;
use crate::protocol::command::{self, Command, Name, Type};
use crate::protocol::listing::Format;
use crate::protocol::reply::{Code, Reply};
use crate::storage::jail::VirtualPath;
use crate::storage::upload::TempUpload;
use crate::sys::random;
use crate::tls::stream::Stream;
use smol::future::FutureExt;
use std::io;
use std::path::PathBuf;
use std::time::Instant;

/// A transfer, with everything resolved before the data connection opens.
pub(super) enum Job {
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

impl Job {
    /// The verb and the path, for the transfer log line.
    fn name(&self) -> (&'static str, VirtualPath) {
        match self {
            Job::Retr { virt, .. } => ("RETR", virt.clone()),
            Job::Store { virt, verb, .. } => (verb, virt.clone()),
            Job::List { virt, format, .. } => (format_verb(*format), virt.clone()),
        }
    }
}

fn format_verb(format: Format) -> &'static str {
    match format {
        Format::List => "LIST",
        Format::Nlst => "NLST",
        Format::Mlsd => "MLSD",
    }
}

impl Session {
    /// The logged-in user's canonical home (transfers happen only then):
    /// files are opened beneath it (`jail::open_beneath`).
    fn home(&self) -> PathBuf {
        match &self.login {
            Login::In { jail, .. } => jail.home().to_path_buf(),
            _ => PathBuf::new(),
        }
    }

    pub(super) fn set_rest(&mut self, offset: u64) -> Handled {
        self.rest = offset;
        self.answer(
            Code::PendingFurtherInformation,
            format_args!("restarting at {offset}; send STOR or RETR"),
        )
    }

    /// LIST, NLST and MLSD: of the current directory without an argument.
    pub(super) async fn list(
        &mut self,
        me: &Account,
        arg: Option<Name<'_>>,
        format: Format,
    ) -> Handled {
        self.require(me.may.list)?;
        let path = match arg {
            Some(arg) => self.resolve(arg)?,
            None => self.cwd.clone(),
        };
        let real = self.existing(&me.jail, &path).await?;
        let is_dir = super::files::stat(&me.jail, real.clone())
            .await
            .is_ok_and(|m| m.is_dir());
        if format == Format::Mlsd && !is_dir {
            return self.answer(Code::FileUnavailable, format_args!("not a directory"));
        }
        Ok(Flow::Transfer(Job::List {
            real,
            virt: path,
            format,
        }))
    }

    /// RETR from `rest`, the REST offset (0 without one).
    pub(super) async fn retr(&mut self, me: &Account, arg: Name<'_>, rest: u64) -> Handled {
        self.require(me.may.retrieve)?;
        let path = self.resolve(arg)?;
        let real = self.existing(&me.jail, &path).await?;
        match async_fs::metadata(&real).await {
            Ok(meta) if meta.is_file() => {
                if rest > meta.len() {
                    return self.answer(
                        Code::SyntaxErrorInArguments,
                        format_args!("restart offset beyond the end of the file"),
                    );
                }
                Ok(Flow::Transfer(Job::Retr {
                    real,
                    virt: path,
                    offset: rest,
                }))
            }
            Ok(_) => self.answer(Code::FileUnavailable, format_args!("not a plain file")),
            Err(e) => Err(self.refuse_io(e)),
        }
    }

    /// STOR (from `rest` when REST was sent) and APPE.
    pub(super) async fn stor(
        &mut self,
        me: &Account,
        arg: Name<'_>,
        rest: u64,
        append: bool,
    ) -> Handled {
        self.require(me.may.store)?;
        let path = self.resolve(arg)?;
        if me.auto_mkdir {
            // Cameras store into `2026/12/01/cam1/img.jpg` without MKD.
            self.make_dirs(&me.jail, &path.parent()).await?;
        }
        let target = self.entry(&me.jail, &path).await?;
        if async_fs::metadata(&target).await.is_ok_and(|m| m.is_dir()) {
            return self.answer(Code::FileUnavailable, format_args!("is a directory"));
        }
        let prefix = match (append, rest) {
            (true, _) => Some(u64::MAX),
            (false, 0) => None,
            (false, offset) => Some(offset),
        };
        let verb = if append { "APPE" } else { "STOR" };
        Ok(Flow::Transfer(Job::Store {
            target,
            virt: path,
            prefix,
            verb,
            unique: false,
        }))
    }

    /// STOU: a new name in the current directory, told in the 150 reply.
    pub(super) async fn stou(&mut self, me: &Account) -> Handled {
        self.require(me.may.store)?;
        let name = format!("lakeftpd-{}", random::hex_name::<6>());
        let path = self.resolve(Name::from(name.as_str()))?;
        let target = self.entry(&me.jail, &path).await?;
        Ok(Flow::Transfer(Job::Store {
            target,
            virt: path,
            prefix: None,
            verb: "STOU",
            unique: true,
        }))
    }

    /// Runs a transfer to its outcome and answers it. Returns a reason when
    /// the session must end.
    pub(super) async fn transfer(
        &mut self,
        job: Job,
        reader: &mut LineReader,
    ) -> io::Result<Option<String>> {
        let started = Instant::now();
        let (verb, virt) = job.name();
        let outcome = self.run(job, &virt, reader).await?;
        self.finish(verb, &virt, started, outcome).await
    }

    /// Prepare, open the data connection, 150, move the bytes while
    /// watching the control connection for ABOR, make an upload durable
    /// and hand it over. Everything the transfer held is released when
    /// this returns.
    async fn run(
        &mut self,
        job: Job,
        virt: &VirtualPath,
        reader: &mut LineReader,
    ) -> io::Result<Outcome> {
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
        if self.unprotected_refused() {
            self.data = DataPlan::None;
            self.passive_fds = None;
            return Ok(Outcome::Unprotected);
        }
        let encoding = self.encoding();

        // The data socket and the file count against the open-file limit:
        // wait for them rather than fail with EMFILE (budget.rs).
        let fds = match self.passive_fds.take() {
            Some(fds) => Some(fds),
            None => self.transfer_fds().await,
        };
        let Some(_fds) = fds else {
            self.data = DataPlan::None;
            return Ok(Outcome::Busy);
        };

        // An upload's temporary exists before the data connection opens, so
        // a full disk or a forbidden name is answered without one.
        let mut upload = None;
        if let Job::Store { target, prefix, .. } = &job {
            match TempUpload::create(self.home(), target.clone(), *prefix).await {
                Ok(u) => upload = Some(u),
                Err(e) => {
                    self.data = DataPlan::None;
                    return Ok(Outcome::NoTemporary(e));
                }
            }
        }

        let plan = std::mem::replace(&mut self.data, DataPlan::None);
        let socket = match active::open(plan, &peer, &self.shared.metrics).await {
            Ok(stream) => stream,
            Err(e) => return Ok(Outcome::NoDataConnection(e)),
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
            Job::Retr { virt, .. } | Job::Store { virt, .. } => say!(
                self,
                Code::FileStatusOk,
                "opening {mode} mode data connection for {}",
                virt.as_str()
            )?,
        }
        self.flush().await?;
        // PROT P: the client starts its TLS handshake once it has the 150.
        let stream = if self.security.data_private() {
            let client_reads = !matches!(job, Job::Store { .. });
            match self.secure_data(socket, client_reads).await {
                Ok(stream) => stream,
                Err(outcome) => return Ok(outcome),
            }
        } else {
            Stream::Plain(socket)
        };

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
                    transfer::send_listing(stream, home, real, format, encoding, stall, metrics)
                        .await
                }
                Job::Store { .. } => {
                    let upload_ref = upload.as_mut().expect("created above");
                    transfer::receive(stream, upload_ref, kind, max_size, stall, metrics).await
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
        let result = loop {
            let event = if watching {
                async { Event::Done(work.as_mut().await) }
                    .or(async { Event::Control(reader.fill(&mut self.control).await) })
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
                Event::Done(result) => break result,
                Event::Control(Ok(Input::Line(n))) => {
                    if matches!(command::parse(reader.line(n)), Ok(Command::Abor)) {
                        reader.consume();
                        drop(work);
                        drop(upload);
                        metrics::dec(&metrics.transfers_now);
                        return Ok(Outcome::Aborted);
                    }
                    // Another command: answered after the transfer.
                    watching = false;
                }
                // The client hung up or sent garbage: abandon the transfer.
                Event::Control(_) => {
                    drop(work);
                    drop(upload);
                    metrics::dec(&metrics.transfers_now);
                    return Ok(Outcome::ClientGone(0));
                }
                Event::HardStop => {
                    drop(work);
                    drop(upload);
                    metrics::dec(&metrics.transfers_now);
                    return Ok(Outcome::Shutdown);
                }
            }
        };
        drop(work);
        metrics::dec(&metrics.transfers_now);

        let bytes = match result {
            Ok(bytes) => bytes,
            Err(e) => return Ok(Outcome::Failed(e)),
        };
        let mut placed = None;
        let mut crc64nvme = None;
        if let Some(mut upload) = upload {
            self.last_data_byte = Some(Instant::now());
            crc64nvme = Some(upload.crc64nvme());
            // Stream mode marks the end of a file by closing the data
            // connection (RFC 959 §3.4.1), which a client that dies
            // mid-upload also does. A live client waits for our reply on the
            // control connection; a dead one has closed it too. Look after
            // the fsync, which gives its FIN time to arrive: a partial file
            // from a dead client is never placed (nor delivered to S3).
            let synced = upload.sync().await;
            let gone = self.control.socket().is_none_or(crate::sys::peer_closed);
            if synced.is_ok() && gone {
                return Ok(Outcome::ClientGone(bytes));
            }
            let committed = match synced {
                Ok(()) => upload.commit().await,
                Err(e) => Err(e),
            };
            match committed {
                Ok(path) => placed = Some(path),
                Err(e) => return Ok(Outcome::NotDurable(bytes, e)),
            }
        }
        // S3 delivery: queue the durable file in the spool; with `ack = s3`
        // the 226 waits for S3 (delivery/mod.rs).
        if let (Some(file), Some(delivery)) = (placed, self.shared.delivery.clone()) {
            let upload = crate::delivery::Upload {
                user: self.user_name().to_string(),
                template: match &self.login {
                    Login::In { user, .. } => user.s3_key.clone(),
                    _ => None,
                },
                client: self.client,
                path: virt.as_str().to_string(),
                file,
                clnt: self.client_name.as_deref().map(str::to_string),
                crc64nvme,
            };
            if let Err(refusal) = delivery.hand_over(upload).await {
                return Ok(Outcome::Refused(bytes, refusal));
            }
        }
        Ok(Outcome::Done(bytes))
    }
}
