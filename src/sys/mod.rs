//! The few operating-system calls std does not offer, made through rustix
//! (already in the tree through async-io), so the crate stays free of
//! `unsafe`: sockets with a chosen backlog or source port, the open-file
//! limit, and systemd's readiness notification.

pub mod budget;
pub mod client;
pub mod errno;
pub mod inflight;
pub mod random;
pub mod ratelimit;
pub mod terminal;
pub mod timeout;
pub mod unauthenticated;

pub use random::random_bytes;

use smol::Async;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};

fn tcp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    Ok(rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?)
}

/// A listening socket with an explicit backlog (std fixes it at 128).
pub fn listen(addr: SocketAddr, backlog: i32) -> io::Result<Async<TcpListener>> {
    let fd = tcp_socket(&addr)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    rustix::net::bind(&fd, &addr)?;
    rustix::net::listen(&fd, backlog)?;
    Async::new(TcpListener::from(fd))
}

/// Connects to `dest`, from `source_port` on `source_ip` when the port is not
/// 0. SO_REUSEADDR lets every concurrent active-mode connection leave from
/// port 20 (they differ in destination, so the 4-tuples stay unique).
pub async fn connect_from(
    source_ip: std::net::IpAddr,
    source_port: u16,
    dest: SocketAddr,
) -> io::Result<Async<TcpStream>> {
    let fd = tcp_socket(&dest)?;
    if source_port != 0 {
        sockopt::set_socket_reuseaddr(&fd, true)?;
        rustix::net::bind(&fd, &SocketAddr::new(source_ip, source_port))?;
    }
    match rustix::net::connect(&fd, &dest) {
        Ok(()) => {}
        Err(rustix::io::Errno::INPROGRESS) => {}
        Err(e) => return Err(e.into()),
    }
    let stream = Async::new(TcpStream::from(fd))?;
    // A non-blocking connect completes when the socket becomes writable;
    // SO_ERROR then says whether it succeeded.
    stream.writable().await?;
    match sockopt::socket_error(&stream)? {
        Ok(()) => Ok(stream),
        Err(errno) => Err(errno.into()),
    }
}

/// TCP keepalive on a control connection, so a balancer's idle timeout
/// (NLB: 350 s) never cuts it during a long transfer.
pub fn set_keepalive(stream: &TcpStream, idle: Duration) -> io::Result<()> {
    sockopt::set_socket_keepalive(stream, true)?;
    sockopt::set_tcp_keepidle(stream, idle)?;
    sockopt::set_tcp_keepintvl(stream, crate::limits::KEEPALIVE_INTERVAL.min(idle))?;
    sockopt::set_tcp_keepcnt(stream, crate::limits::KEEPALIVE_PROBES)?;
    Ok(())
}

/// Raises the open-file soft limit to the hard limit; returns the new soft
/// limit (the process's session capacity follows from it).
pub fn raise_open_file_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum.unwrap_or(u64::MAX),
        Err(_) => limit.current.unwrap_or(u64::MAX),
    }
}

/// Copies up to `count` bytes of `file` from `offset` to `socket` in the
/// kernel (RETR in binary mode). Returns bytes sent; WouldBlock when the
/// socket buffer is full.
pub fn sendfile(
    socket: &TcpStream,
    file: &std::fs::File,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    Ok(rustix::fs::sendfile(socket, file, Some(offset), count)?)
}

/// Sends a state line to systemd (`READY=1`, `STOPPING=1`, `WATCHDOG=1`)
/// when started with Type=notify; does nothing otherwise (sd_notify(3)).
pub fn notify_systemd(state: &str) {
    use std::os::unix::net::UnixDatagram;
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let sent = if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
    } else {
        socket.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = sent {
        log::warn!("could not notify systemd ({state}): {e}");
    }
}

/// True when the peer has closed `socket` (an orderly EOF is waiting and
/// nothing before it). Never blocks.
pub fn peer_closed(socket: &TcpStream) -> bool {
    use rustix::net::RecvFlags;
    let mut byte = [0u8; 1];
    match rustix::net::recv(socket, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
        Ok((0, _)) => true,
        Ok(_) => false,
        Err(rustix::io::Errno::AGAIN) => false,
        // ECONNRESET and the like: gone as well.
        Err(_) => true,
    }
}

/// Whether bytes from the peer wait on `socket` now (a data connection's
/// client has started its TLS handshake), without waiting or taking them.
pub fn has_bytes(socket: &TcpStream) -> bool {
    use rustix::net::RecvFlags;
    let mut byte = [0u8; 1];
    matches!(
        rustix::net::recv(socket, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT),
        Ok((1, _))
    )
}

/// Lowers the calling thread's CPU priority to `nice`. On Linux the nice
/// value belongs to the thread, not the process (setpriority(2), NOTES), so
/// this touches no other thread. Failure only costs priority: logged.
pub fn lower_thread_priority(nice: i32) {
    if let Err(e) = rustix::process::setpriority_process(None, nice) {
        log::warn!("could not lower a background thread's priority: {e}");
    }
}
