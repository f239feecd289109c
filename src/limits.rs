//! Every fixed capacity and default timeout of lakeftpd, in one place.
//!
//! A limit that an operator may want to change is a configuration key (see
//! `config.rs`, whose defaults refer to the constants here); a limit that
//! protects the process itself is a constant.

use std::time::Duration;

/// Longest command line accepted, CRLF included. RFC 959 sets no maximum;
/// vsftpd uses 4 KiB. A path may be at most `MAX_PATH` bytes, so a verb, a
/// space and a path always fit. An over-long line gets 500 and the session
/// is closed: the buffer never grows.
pub const MAX_LINE: usize = 1024;

/// Longest path argument, in bytes, after the verb.
pub const MAX_PATH: usize = 1000;

/// Longest single name (path component), in bytes: Linux's NAME_MAX.
pub const MAX_NAME: usize = 255;

/// Longest single reply assembled (multi-line replies included): room for a
/// path whose every byte is a doubled quote (RFC 959 §7, reply 257).
pub const MAX_REPLY: usize = 2 * MAX_PATH + 128;

/// Longest `CLNT` name kept (a device model and firmware such as
/// `DH-IPC-HFW1230S V2.800`): it is logged and sent as S3 metadata with
/// every object, so it stays short; the rest is dropped.
pub const MAX_CLIENT_NAME: usize = 64;

/// Size of the buffer a transfer owns while it runs. It exists only during a
/// transfer; an idle session holds none.
pub const TRANSFER_BUFFER: usize = 64 * 1024;

/// An upload's bytes are handed to the disk's writeback every this many
/// (fadvise(2) `POSIX_FADV_DONTNEED` on the range just written, which
/// starts its writeback without waiting): the final fsync before the 226
/// then waits only for the tail, not for the whole file, so a bulk upload
/// on a real disk overlaps the network with the disk. 8 MiB: a small
/// upload never reaches it; a 256 MiB one makes 32 calls.
pub const WRITEBACK_CHUNK: u64 = 8 << 20;

/// Levels climbed from a directory to find the top of its filesystem (the
/// descriptor kept for its syncfs, storage/barrier.rs): a path of
/// `MAX_PATH` bytes has fewer than 500 levels.
pub const MAX_PATH_DEPTH: usize = MAX_PATH / 2;

/// How long the leader of a shared syncfs waits for more uploads to join
/// it, when the last one covered several (storage/barrier.rs): fewer,
/// larger flushes at 50 devices for at most this much latency per flush. A
/// lone device never waits. 1 ms, measured on this machine's disk at 50
/// devices (release build, 12 s rows, active / passive uploads per second
/// and flushes per upload): 0 ms 2,582 / 2,351 and 0.73; 0.5 ms 2,849 /
/// 2,440 and 0.29–0.32; 1 ms 2,950 / 2,895 and 0.18; 2 ms 2,788 / 2,896
/// and 0.11–0.12. Waiting costs no CPU, each flush it saves does.
pub const FLUSH_LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// Threads of the blocking pool (file I/O, fsync, password hashing). The
/// `blocking` crate reads `BLOCKING_MAX_THREADS` once, at first use; its
/// default of 500 threads is far more than two cores can use, and each
/// thread costs a stack.
pub const BLOCKING_THREADS: usize = 64;

/// Bytes one sendfile(2) call may move (RETR): large enough that a 1 GiB
/// download takes ~1,000 calls, small enough to share the executor thread.
pub const SENDFILE_CHUNK: usize = 1 << 20;

/// TCP keepalive after `tcp_keepalive` idle: a probe every interval, this
/// many unanswered before the connection is declared dead.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
pub const KEEPALIVE_PROBES: u32 = 4;

/// Pause before polling again: the accept loop after an error (EMFILE), the
/// drain while it waits for sessions or the spool.
pub const POLL_PAUSE: Duration = Duration::from_millis(50);

/// Listen backlog of the control listener. Sized for reconnect storms: a
/// fleet reconnecting after an instance replacement arrives all at once
/// (vsftpd's fixed backlog of 32 is why its p99 exceeds a second under 50
/// devices). The kernel caps it at net.core.somaxconn (4096 by default; the
/// AMI raises it to 16384: image/provision.sh).
pub const LISTEN_BACKLOG: i32 = 16384;

/// Backlog of a passive data listener: one connection is expected.
pub const PASSIVE_BACKLOG: i32 = 4;

/// Longest configuration text accepted (file or user-data; EC2 caps
/// user-data at 16 KiB, a file may hold many users).
pub const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

/// Longest user name.
pub const MAX_USER_NAME: usize = 64;

/// File descriptors reserved for the process itself (listeners, log, spool)
/// when the session capacity is derived from the open-file limit.
pub const RESERVED_FDS: u64 = 64;

/// Descriptors new sessions may not take, kept so that admitted sessions can
/// always transfer (two descriptors per transfer; see budget.rs).
pub const TRANSFER_RESERVE_FDS: u64 = 256;

/// File descriptors one session may hold at once: control socket, data
/// socket or passive listener, and a file.
pub const FDS_PER_SESSION: u64 = 3;

/// Prefix of the hidden temporary file an upload is written to before it is
/// renamed into place. Names with this prefix are invisible to listings and
/// unaddressable by clients.
pub const TEMP_PREFIX: &str = ".lakeftpd-tmp-";

/// Longest PROXY protocol v1 header, CRLF included (HAProxy's PROXY
/// protocol spec §2.1: "a 108-byte buffer is always enough" with its NUL).
pub const PROXY_V1_MAX: usize = 107;

/// Longest PROXY protocol v2 header accepted, 16 fixed bytes included. The
/// format allows 64 KiB of TLVs; an NLB sends the addresses plus a few
/// short TLVs (AWS 0xEA endpoint id, CRC32C, NOOP padding). It is also the
/// size of the buffer the header is read into, so what followed the header
/// in that read (at most this much) always fits the session's `MAX_LINE`.
pub const MAX_PROXY_HEADER: usize = 512;

/// Longest HTTP request line the health listener reads; it reads nothing
/// else. `GET /metrics HTTP/1.1` is 23 bytes.
pub const MAX_HEALTH_REQUEST_LINE: usize = 256;

/// How long the health listener waits for a request line, and then at most
/// for its response to be taken.
pub const HEALTH_IO_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the health listener waits for the request line itself. A
/// balancer's check sends it with the connection (NLB, ALB and Route 53
/// checkers send the request at once); an idle connection is closed after
/// this, and evicted earlier when a new one needs its slot.
pub const HEALTH_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// Listen backlog of the health listener: connections the kernel queues
/// until they are accepted (and possibly evict an idle one), so a burst of
/// idle sockets does not make the balancer's SYN wait for a retransmission.
pub const HEALTH_BACKLOG: i32 = 1024;

/// Health/metrics connections served at once; more are closed at once (a
/// balancer checks every few seconds, a scraper every few more).
pub const MAX_HEALTH_CONNECTIONS: usize = 64;

/// After a health response, what the client still sends (headers) is read
/// and discarded, up to this much, so that closing does not turn into a
/// reset that could destroy the response before the client reads it.
pub const HEALTH_DISCARD_MAX: usize = 16 * 1024;

/// Timeout of one connection attempt or one write to the EMF endpoint (the
/// CloudWatch agent on the same host).
pub const EMF_IO_TIMEOUT: Duration = Duration::from_secs(2);

// Defaults of the configuration keys (docs/configuration.md lists them).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_DATA_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_LOGIN_FAIL_DELAY: Duration = Duration::from_secs(1);
pub const DEFAULT_MAX_LOGIN_FAILURES: u32 = 3;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_SESSIONS: usize = 20_000;
pub const DEFAULT_MAX_SESSIONS_PER_IP: usize = 200;
pub const DEFAULT_ACTIVE_SOURCE_PORT: u16 = 20;
pub const DEFAULT_PASSIVE_PORTS: (u16, u16) = (50000, 50999);
/// At least the balancer's detection time, so no device is refused while
/// the balancer still sends here: an NLB (and a Route 53 health check)
/// marks a target unhealthy after 2 failed checks 10 s apart; 5 s more for
/// the check in flight and the balancer's own propagation.
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(25);
/// After the sessions drained, how long a stop waits for the spool to reach
/// S3: at the 250 ms to 30 s retry backoff a short S3 hiccup clears well
/// within it, while a real outage does not hold a terminating instance
/// forever (what is left is logged, and stays durable in the spool).
pub const DEFAULT_DRAIN_SPOOL_TIMEOUT: Duration = Duration::from_secs(120);
/// Idle time before TCP keepalive probes on control connections: well under
/// the NLB's 350 s idle timeout, so a long transfer never loses its control
/// connection.
pub const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// How long to wait for a PROXY header before greeting anyway (an NLB sends
/// it only with the client's first bytes, and an FTP client speaks second).
pub const DEFAULT_PROXY_HEADER_TIMEOUT: Duration = Duration::from_millis(250);
pub const DEFAULT_HEALTH_S3_FAILING_AFTER: Duration = Duration::from_secs(300);
/// EMF every 10 s: a device session lasts about a second and a fleet's
/// uploads come in bursts on the clock; a minute's average hides both, and
/// 10 s is the finest period a high-resolution metric alarm evaluates.
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(10);

/// Records queued for the transfer log's writer thread before a session
/// waits: a top-of-the-minute burst of thousands of uploads queues here
/// (about 300 bytes each: 1.2 MiB at most) while the thread writes.
pub const TRANSFER_LOG_QUEUE: usize = 4096;

/// The transfer log is renamed to `PATH.1` at this size: two files at most
/// on the disk (about 200,000 records each), and the CloudWatch agent ships
/// them long before (it reads within seconds).
pub const TRANSFER_LOG_ROTATE_BYTES: u64 = 64 << 20;

/// Files a stop that hit `drain_spool_timeout` names in the log, one line
/// each (the count says how many more): enough to find a few files, not a
/// flood from an outage's thousands.
pub const DRAIN_LEFT_LOGGED: usize = 20;

// --- Operations: disk, readiness and liveness (ops/disk.rs, ops/probe.rs) --

/// How often the home and spool filesystems are measured (statvfs) and the
/// readiness and liveness gauges refreshed; also the executor's heartbeat.
pub const DISK_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Free bytes kept for one upload when `max_file_size` is not set (an
/// upload of unknown size: room for a typical large device file).
pub const DISK_RESERVE_UNBOUNDED: u64 = 64 << 20;

/// Added to the reserve of one upload: the spool's metadata file, the
/// directory entries, and a filesystem's own rounding to blocks.
pub const DISK_RESERVE_MARGIN: u64 = 1 << 20;

/// Below this many free inodes a filesystem counts as full: every upload
/// needs an inode for its temporary and one for its spool metadata, and a
/// small root volume runs out of inodes under millions of small files long
/// before it runs out of bytes.
pub const MIN_FREE_INODES: u64 = 1000;

/// A disk full this long with nothing waiting for S3 will not free itself:
/// the instance is broken by itself and no longer live (ops/probe.rs).
pub const DISK_FULL_NOT_LIVE_AFTER: Duration = Duration::from_secs(300);

/// An executor whose heartbeat (every `DISK_POLL_INTERVAL`) is this late
/// is stalled: not ready, not live, and systemd's watchdog is not fed.
pub const EXECUTOR_STALL_LIMIT: Duration = Duration::from_secs(15);

// --- Defence (config/defence.rs, server/admission.rs, auth/defender.rs) ----

/// Default of `max_unauthenticated`: `max_sessions` divided by this. Half
/// the slots may wait for a header or a login; the other half stays for
/// devices that logged in, and shedding the oldest waiting connection keeps
/// room for a new one.
pub const UNAUTHENTICATED_SHARE_DIVISOR: usize = 2;
/// One address may hold at most this fraction (1/N) of the unauthenticated
/// share: a flood from a few addresses sheds its own oldest connections
/// before anyone else's.
pub const UNAUTHENTICATED_PER_IP_DIVISOR: usize = 10;
/// Default of `max_passive_per_ip`: the passive pool divided by this.
pub const PASSIVE_SHARE_DIVISOR: usize = 10;
/// Defaults of the defender: 10 failed logins within 10 minutes ban an
/// address for 15 minutes, so a guesser sustains at most ~10 guesses per
/// 25 minutes, while a device with a mistyped password gets ten tries.
pub const DEFAULT_BAN_AFTER: u32 = 10;
pub const DEFAULT_BAN_WINDOW: Duration = Duration::from_secs(10 * 60);
pub const DEFAULT_BAN_TIME: Duration = Duration::from_secs(15 * 60);
/// Longest ban: each repeat doubles `ban_time`, up to this.
pub const MAX_BAN_TIME: Duration = Duration::from_secs(24 * 60 * 60);
/// How long an address's ban history (the doubling) and an (address, user)
/// pair's last success are remembered.
pub const DEFENDER_MEMORY: Duration = Duration::from_secs(24 * 60 * 60);
/// Addresses the defender tracks at once (about 100 bytes each). When full,
/// entries past their window are dropped first, then the least suspicious.
pub const MAX_DEFENDER_ENTRIES: usize = 100_000;

// --- Hostile internet, round two (sys/client.rs, auth/, users/, delivery/) --

/// Default of `ipv6_prefix`: IPv6 clients are counted by their /64 by every
/// per-address limit. One subscriber gets a whole /64 at least (RFC 6177),
/// so counting single addresses would let one client rotate through 2^64.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;
/// The wider groups the defender also scores: an IPv6 /48 (a site's usual
/// allocation, RFC 6177 §2: 65,536 /64s for one attacker) and an IPv4 /24.
pub const WIDE_IPV6_PREFIX: u8 = 48;
pub const WIDE_IPV4_PREFIX: u8 = 24;
/// A /48 is banned after this many times `ban_after` failed logins within
/// `ban_window`: rotating /64s inside one site no longer multiplies the
/// guesses, while one /64's own mistakes never reach it.
pub const WIDE_IPV6_BAN_FACTOR: u32 = 4;
/// An IPv4 /24 is banned after this many times `ban_after`: higher than
/// the /48's because a carrier-grade NAT pool (RFC 6888) puts thousands of
/// devices behind a few addresses of one /24, and those that logged in
/// before keep trying their own names through a wide ban (as through an
/// address ban).
pub const WIDE_IPV4_BAN_FACTOR: u32 = 10;
/// A password check waits for a place in the defender's scores (failures
/// plus checks running may not pass `ban_after`) for this long at most,
/// asking every `CHECK_WAIT_POLL`; then it is refused (421). Devices
/// logging in at once behind one address queue for a few hash times:
/// 1,000 first argon2id logins, ten at a time, in about 6 s.
pub const MAX_CHECK_WAIT: Duration = Duration::from_secs(10);
pub const CHECK_WAIT_POLL: Duration = Duration::from_millis(10);
/// Password checks of unknown user names running at once (auth/decoy.rs):
/// their own budget, apart from `MAX_CONCURRENT_ARGON2`, so a flood of
/// made-up names holds one core at most and never a real login's permit.
pub const MAX_CONCURRENT_DECOYS: usize = 1;
/// The total deadline of one S3 request without a large body (GetObject of
/// the users file or a certificate, CreateMultipartUpload, ...): connect,
/// headers and body. Before, only the connect and the wait for the headers
/// were bounded, and a body trickling one byte every 2 s held a reload for
/// 39 s. A users read is also cut at `users_poll_interval`, a boot read at
/// what is left of `users_boot_timeout`.
pub const S3_CALL_DEADLINE: Duration = Duration::from_secs(20);
/// The slowest a PUT body may go (bytes per second): a PUT of N bytes has
/// `S3_CALL_DEADLINE + N / S3_MIN_SEND_RATE + S3_RESPONSE_TIMEOUT` in all.
/// 256 KiB/s: a 16 MiB part in 64 s, far below an instance's bandwidth.
pub const S3_MIN_SEND_RATE: u64 = 256 * 1024;
/// TLS handshakes one client (`ClientKey`) may have in flight at once,
/// explicit (AUTH TLS) and implicit together; one more is closed at once.
/// A device makes one at a time (two with a data connection's); a flood
/// from one client no longer holds a signature's CPU and a buffer per
/// connection up to `max_sessions_per_ip`.
pub const MAX_HANDSHAKES_PER_CLIENT: usize = 4;
/// Failed TLS handshakes logged per second at most; the rest are counted
/// and the next line says how many (a flood logged 11.6 MiB in 21 s).
pub const TLS_FAILURE_LOG_PER_SECOND: u32 = 5;
/// Default of `ban_share_interval`: how often an instance publishes its
/// bans and reads the others' (server/bans.rs). A ban made on one instance
/// refuses the client on the others within about this long; each poll is
/// one ListObjectsV2 per instance, plus a GET per changed object.
pub const DEFAULT_BAN_SHARE_INTERVAL: Duration = Duration::from_secs(30);
/// Default of `ban_share_prefix`: where in `s3_bucket` the bans objects are.
pub const DEFAULT_BAN_SHARE_PREFIX: &str = "lakeftpd/bans/";
/// Bans one instance publishes, and reads from one object, at most
/// (~40 bytes a line: 400 KiB). An object with more is ignored.
pub const MAX_SHARED_BANS: usize = 10_000;
/// The largest bans object read (bytes); a larger one is ignored.
pub const MAX_BAN_SHARE_BYTES: u64 = 512 * 1024;
/// Bans objects read per poll at most (one ListObjectsV2 page): instances
/// of one fleet sharing bans. Memory: at most this many times
/// `MAX_SHARED_BANS` bans (~40 bytes each in memory).
pub const MAX_BAN_SHARE_OBJECTS: usize = 100;

// --- EC2 instance metadata (imds.rs) -----------------------------------------

/// How long `--user-data` keeps trying to reach IMDS before it gives up: at
/// boot the metadata service (or the route to it) may not answer yet. The
/// unit's `TimeoutStartSec=120s` leaves room for this plus the start-up.
/// `LAKEFTPD_IMDS_PATIENCE` (a duration, e.g. `5s`) overrides it.
pub const IMDS_PATIENCE: Duration = Duration::from_secs(60);

/// Bound on one IMDS request, connect to last byte. IMDS is link-local and
/// answers in milliseconds; a request that takes longer is retried.
pub const IMDS_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// First and longest pause between IMDS attempts (the pause doubles).
pub const IMDS_BACKOFF_FIRST: Duration = Duration::from_millis(100);
pub const IMDS_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Largest user-data accepted: EC2 limits user-data to 16 KB before base64
/// encoding (EC2 User Guide, "Run commands when you launch an EC2 instance
/// with user data input").
pub const MAX_USER_DATA: u64 = 16 * 1024;

/// Largest `public_address = file:PATH` file accepted: one address and a
/// newline (an IPv6 address is at most 45 characters).
pub const MAX_ADDRESS_FILE: u64 = 64;

/// Largest metadata value or session token accepted (an instance id, an AZ,
/// an address, a ~56-byte token).
pub const MAX_METADATA_VALUE: u64 = 1024;

// ---- S3 delivery -------------------------------------------------------

/// Default of `s3_timeout`: how long a device waits, with `ack = s3`, for S3
/// to confirm its upload before it gets 451 (the file stays queued). Common
/// FTP clients wait 60 s or more for the reply after the data connection
/// closes; 20 s leaves room for a slow PUT of a metric file.
pub const DEFAULT_S3_TIMEOUT: Duration = Duration::from_secs(20);

/// Default of `s3_uploads`: deliveries in flight at once, each on its own
/// thread with one HTTP connection. Memory is this times
/// `DELIVERY_BUFFER` plus the HTTP client's per-connection buffers: parts are
/// streamed from the spool, never held in memory.
pub const DEFAULT_S3_UPLOADS: usize = 4;
/// Most deliveries in flight at once (threads are a real cost).
pub const MAX_S3_UPLOADS: usize = 64;

/// Default of `s3_part_size`: files larger than this go up as multipart
/// uploads with parts of this size. 16 MiB keeps a 1 GiB file at 64 parts.
pub const DEFAULT_S3_PART_SIZE: u64 = 16 << 20;
/// S3's smallest part (all but the last), and its largest.
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html>
pub const MIN_S3_PART_SIZE: u64 = 5 << 20;
pub const MAX_S3_PART_SIZE: u64 = 5 << 30;
/// S3's most parts in one multipart upload (same page).
pub const MAX_S3_PARTS: u64 = 10_000;

/// The buffer one delivery uses to hash a file or part before sending it.
pub const DELIVERY_BUFFER: usize = 64 * 1024;

/// Longest object key S3 accepts, in bytes of UTF-8.
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html>
pub const MAX_S3_KEY: usize = 1024;

/// Longest S3 response body read (error documents, CreateMultipartUpload and
/// CompleteMultipartUpload results are a few hundred bytes).
pub const MAX_S3_RESPONSE: u64 = 64 * 1024;

/// Retry backoff: the first retry waits about `RETRY_BASE`, each later one
/// twice as long, at most `RETRY_MAX`; each wait is drawn at random between
/// half and all of that ("equal jitter",
/// <https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/>).
pub const RETRY_BASE: Duration = Duration::from_millis(250);
pub const RETRY_MAX: Duration = Duration::from_secs(30);
/// After a 503 SlowDown without Retry-After, every delivery pauses this long
/// (S3 asks the whole client to slow down, not one request).
pub const SLOW_DOWN_PAUSE: Duration = Duration::from_secs(2);
/// Longest Retry-After honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// HTTP timeouts towards S3: connecting, and waiting for the response once the
/// body is sent (CompleteMultipartUpload of a large object can take a while).
pub const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const S3_RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);

/// Lifetime of each presigned request: signed just before it is sent.
pub const S3_SIGNATURE_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Instance-role credentials are refreshed this long before they expire
/// (EC2 makes new ones available at least 5 minutes before:
/// <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/iam-roles-for-amazon-ec2.html>).
pub const CREDENTIALS_REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// How long one credentials fetch keeps retrying IMDS; the delivery thread
/// then retries with its own backoff (start-up uses `IMDS_PATIENCE`).
pub const CREDENTIALS_IMDS_PATIENCE: Duration = Duration::from_secs(2);
/// Lifetime asked for an IMDSv2 session token (IMDSv2 allows 1 s to 6 h).
pub const IMDS_TOKEN_TTL_SECONDS: u32 = 21_600;
/// Longest IMDS response read (the credentials document is under 2 KiB).
pub const MAX_IMDS_RESPONSE: u64 = 16 * 1024;

/// Longest spool sidecar (metadata of one queued file) read back at replay.
pub const MAX_SIDECAR: u64 = 16 * 1024;

/// Largest users file accepted (`users = ...`): a `[user NAME]` section
/// with a `$6$` hash is about 140 bytes, so this holds some 400,000 users
/// while a runaway object cannot fill memory.
pub const MAX_USERS_FILE_BYTES: usize = 64 * 1024 * 1024;

/// How often the users file is checked for changes, unless
/// `users_poll_interval` says otherwise. An unchanged S3 object costs one
/// conditional GET answered 304: 60 requests an hour per instance.
pub const DEFAULT_USERS_POLL_INTERVAL: Duration = Duration::from_secs(60);

/// How long the start waits for the users file from S3 before it falls
/// back to the cache (`users_boot_timeout`).
pub const DEFAULT_USERS_BOOT_TIMEOUT: Duration = Duration::from_secs(20);

/// Pause between attempts to read the users file from S3 during the boot
/// wait.
pub const USERS_BOOT_RETRY: Duration = Duration::from_millis(500);

/// The nice value of the users-reload thread. A reload of 100,000 users
/// parses for some 0.2 s of one core; at nice 10 the scheduler (CFS weight
/// 110 against 1024) gives the session threads the core first, so a reload
/// does not show in the latency of logins running meanwhile.
pub const USERS_RELOAD_NICE: i32 = 10;

/// How many of the oldest connections awaiting a PROXY header are looked
/// at (one non-blocking peek each) to find a silent one to shed; past
/// these, the oldest goes.
pub const MAX_SHED_SCAN: usize = 16;

/// Argon2id checks running at once. Each allocates its `m` parameter
/// (19 MiB for the OWASP recommendation `lakeftpd passwd` uses); with
/// `MAX_ARGON2_MEMORY_KIB` this caps what a login storm can allocate at
/// 4 × 64 MiB. Repeated logins are served by the credential cache.
pub const MAX_CONCURRENT_ARGON2: usize = 4;

/// Largest argon2id memory parameter accepted in a stored hash, in KiB.
pub const MAX_ARGON2_MEMORY_KIB: u32 = 64 * 1024;

/// bcrypt cost of the hashes `lakeftpd passwd --scheme bcrypt` makes
/// (2^10 rounds, some 60 ms here; the credential cache absorbs repeats).
pub const BCRYPT_COST: u32 = 10;

/// Problems of a refused users file that are logged one by one; the rest
/// are counted in one line (a file with 100,000 bad lines must not flood
/// the journal). `lakeftpd check --users` lists them all.
pub const MAX_LOGGED_PROBLEMS: usize = 100;
/// How often `tls_cert` and `tls_key` are checked for a change (file
/// mtime and size, S3 ETag): certificates on a fleet are replaced weeks
/// before they expire, so minutes are soon enough, and an S3 GET per
/// instance every 5 minutes costs nothing.
pub const DEFAULT_TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(300);

/// Longest certificate chain or key file read (file or S3 object): a chain
/// of a few certificates is under 10 KiB; anything far larger is a mistake.
pub const MAX_TLS_PEM_BYTES: usize = 256 * 1024;

/// Entries of the TLS 1.2 session-id cache (a few hundred bytes each, so
/// about 5 MiB when full). Clients that resume by session id (not by
/// ticket) need their control session's entry as long as the session runs;
/// the cache is shared by every session, so it is sized for many thousand
/// sessions, and the oldest entries make room for new ones.
pub const TLS_SESSION_CACHE: usize = 16384;

/// TLS 1.3 tickets sent after each handshake (rustls' default is 2). A
/// client that resumes its control session for every data connection needs
/// one it may reuse: the tickets are stateless (encrypted by the ticketer)
/// and so reusable, and each data connection gets fresh ones too.
pub const TLS13_TICKETS: usize = 2;

/// TLS 1.3 tickets sent after the handshake of a data connection the
/// client reads (a download or a listing; `Tls::accept_data`). OpenSSL
/// clients (curl, PHP) use a ticket once and resume the next data
/// connection with the newest they hold: one per transfer keeps them
/// resuming.
pub const TLS13_DATA_TICKETS: usize = 1;

/// Bytes rustls may hold in its plaintext and TLS send buffers per
/// connection (`set_buffer_limit`). A reply or one transfer buffer fits;
/// writes past it wait for the socket, so a slow reader cannot grow them.
pub const TLS_BUFFER_LIMIT: usize = 64 * 1024;

/// Longest a TLS handshake may take, on the control connection (after
/// `AUTH TLS` or on the implicit listener) and on a data connection.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of a TLS data connection moved per read and write (RETR of a
/// protected file: no sendfile through TLS). A TLS record holds 16 KiB.
pub const TLS_TRANSFER_CHUNK: usize = 16 * 1024;

/// How long a refused PROT P data connection (522) is kept open after our
/// close_notify, its incoming bytes read and dropped, so the client reads
/// the alert instead of a reset.
pub const TLS_REFUSAL_LINGER: Duration = Duration::from_secs(2);

/// Bytes of a ClientHello peeked before a handshake, for the versions it
/// offers (logged when the handshake fails). A hello's supported_versions
/// extension comes within the first few hundred bytes in the clients
/// tried (OpenSSL, GnuTLS, Go, Java, rustls); a cut hello falls back to
/// its client_version.
pub const TLS_HELLO_PEEK: usize = 1024;

/// Longest the close_notify at the end of a TLS control session may wait
/// for the socket: a few bytes, which a client that still reads takes at
/// once (RFC 8446 §6.1).
pub const TLS_CLOSE_NOTIFY_TIMEOUT: Duration = Duration::from_secs(1);

/// After the 200 to CCC, how long the client's close_notify is awaited
/// before ours is sent (`Stream::clear`). curl 7.88 sends its own at once
/// and waits for ours; lftp 4.9 waits for ours, and takes it for the end
/// of the connection if it comes in the same read as the 200: lftp pays
/// this wait, once per session.
pub const CCC_CLIENT_CLOSE_WAIT: Duration = Duration::from_millis(500);

/// After our close_notify, how long the client's answer is awaited before
/// the control connection is read as plain text (a client that sends its
/// next command instead ends the wait at once).
pub const CCC_PEER_CLOSE_WAIT: Duration = Duration::from_secs(3);

/// TLS records (the client's close_notify, and anything before it) read
/// and dropped after CCC before the connection is plain text.
pub const CCC_MAX_RECORDS: usize = 4;

/// The longest TLS record dropped after CCC: a close_notify is a few
/// dozen bytes; a full record (RFC 8446 §5.2: 2^14 + 256) is allowed for a
/// client that sent data before clearing.
pub const CCC_MAX_RECORD: usize = 16 * 1024 + 256;

/// Upper bounds, in microseconds, of the latency histograms' buckets
/// (`/metrics`: last data byte to 226, 226 to S3 confirmation). Fixed, so
/// the histograms are a few atomics with no allocation per upload: 1 ms
/// (an fsync on a fast disk) to 2 minutes (S3 retries with backoff, past
/// the default `s3_timeout`); Prometheus adds `+Inf` for the rest.
pub const LATENCY_BUCKETS_MICROS: [u64; 14] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    10_000_000,
    30_000_000,
    120_000_000,
];
