//! The binary's entry point: the command line (argh) and what each
//! subcommand does; `lakeftpd` alone runs the demo.

pub mod args;

use crate::{auth, aws::imds, config, limits, server, sys, users};

use args::{Cli, Command, Source};
use config::{Config, Permissions, PublicAddress, User};
use log::LevelFilter;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

/// Runs the command line; the exit code is the process's.
pub fn main() -> ExitCode {
    // Before anything touches the blocking pool (it reads this once); an
    // operator's own setting wins. No other thread exists yet.
    if std::env::var_os("BLOCKING_MAX_THREADS").is_none() {
        std::env::set_var("BLOCKING_MAX_THREADS", limits::BLOCKING_THREADS.to_string());
    }
    let cli: Cli = argh::from_env();
    if cli.version {
        println!("lakeftpd {}", crate::ops::VERSION);
        return ExitCode::SUCCESS;
    }
    match cli.command {
        None => demo(),
        Some(Command::Serve(serve)) => {
            let source = match args::source(&serve.config, serve.user_data) {
                Ok(source) => source,
                Err(e) => return fail(&e),
            };
            let cli_level = match serve.log_level.as_deref().map(config::parse_log_level) {
                Some(Err(e)) => return fail(&format!("--log-level: {e}")),
                Some(Ok(level)) => Some(level),
                None => None,
            };
            // Log from the start (IMDS retries, problems) at the CLI level or info.
            init_logging(cli_level.unwrap_or(LevelFilter::Info));
            let config = match load(&source) {
                Ok(config) => config,
                Err(message) => return fail(&message),
            };
            log::set_max_level(cli_level.unwrap_or(config.log_level));
            // imds: which instance this is, and the PASV address from IMDS.
            let instance = imds::describe(source == Source::UserData, &config.public_address);
            match instance {
                Ok(instance) => serve_config(config, instance),
                Err(message) => fail(&message),
            }
        }
        Some(Command::Check(check)) => check_command(&check),
        Some(Command::Passwd(p)) => match auth::NewHash::parse(&p.scheme) {
            Ok(scheme) => passwd(scheme),
            Err(e) => fail(&format!("--scheme: {e}")),
        },
    }
}

/// `lakeftpd check`: a configuration, a users file, or both.
fn check_command(check: &args::Check) -> ExitCode {
    let config = if check.users.is_some() && check.config.is_none() && !check.user_data {
        Config::defaults()
    } else {
        let source = match args::source(&check.config, check.user_data) {
            Ok(source) => source,
            Err(e) => return fail(&e),
        };
        match load(&source) {
            Ok(config) => {
                if let Err(message) = check_tls(&config) {
                    return fail(&message);
                }
                println!(
                    "configuration ok: {} users, listening on {}",
                    config.users.len(),
                    config.listen
                );
                config
            }
            Err(message) => return fail(&message),
        }
    };
    let Some(path) = &check.users else {
        return check_users_source(&config);
    };
    let text = match read_users_file(path) {
        Ok(text) => text,
        Err(message) => return fail(&message),
    };
    // Every problem: an operator's one-shot check lists them all.
    match config::parse_users(&text, &config, usize::MAX) {
        Ok(users) => {
            println!("users file ok: {} users", users.len());
            ExitCode::SUCCESS
        }
        Err(refused) => {
            let origin = path.display();
            let mut message = format!("{origin}: {} problem(s):", refused.problems.len());
            for p in refused.problems {
                message.push_str(&format!("\n  {origin}: {p}"));
            }
            fail(&message)
        }
    }
}

/// `check`: the configuration's `users = ...`, read and checked as the
/// server would at start, so a users object that cannot be read (a wrong
/// bucket, a missing key, no permission) or holds a problem fails the
/// check instead of the fleet's logins.
fn check_users_source(config: &Config) -> ExitCode {
    let Some(source) = &config.users_source else {
        return ExitCode::SUCCESS;
    };
    match users::read_and_check(config, source) {
        Ok(n) => {
            println!("users file ok: {n} users from {source}");
            ExitCode::SUCCESS
        }
        Err(message) => fail(&format!("users = {source}: {message}")),
    }
}

/// `check`: reads and checks `tls_cert` and `tls_key` as the server
/// would at start (key matches, not expired, chain in order).
fn check_tls(config: &Config) -> Result<(), String> {
    let Some(reader) = server::certs::Reader::new(config) else {
        return Ok(());
    };
    let now = server::certs::now();
    match reader.load(now) {
        Ok((pair, _)) => {
            println!(
                "tls: certificate ok: {}, expires in {} days",
                pair.subject,
                pair.seconds_left(now) / 86_400
            );
            Ok(())
        }
        Err(problems) => {
            let mut message = format!("tls_cert/tls_key: {} problem(s):", problems.len());
            for p in problems {
                message.push_str(&format!("\n  {p}"));
            }
            Err(message)
        }
    }
}

fn read_users_file(path: &Path) -> Result<String, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > limits::MAX_USERS_FILE_BYTES as u64 {
        return Err(format!(
            "{}: larger than {} bytes",
            path.display(),
            limits::MAX_USERS_FILE_BYTES
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// One line on standard error (and so on the serial console under systemd).
fn fail(message: &str) -> ExitCode {
    eprintln!("lakeftpd: {message}");
    ExitCode::FAILURE
}

fn init_logging(level: LevelFilter) {
    // Ignore a second initialisation (cannot happen outside tests).
    let _ = simple_logger::SimpleLogger::new()
        .with_level(LevelFilter::Trace)
        .with_utc_timestamps()
        .init();
    log::set_max_level(level);
}

/// Reads and parses the configuration; every problem in one message.
fn load(source: &Source) -> Result<Config, String> {
    let (text, origin) = match source {
        Source::File(path) => (read_config_file(path)?, path.display().to_string()),
        Source::UserData => (imds::user_data()?, "user-data".to_string()),
    };
    // imds: user-data problems reach the serial console, where each line
    // must make sense alone.
    let indent = match source {
        Source::UserData => "lakeftpd: ",
        Source::File(_) => "  ",
    };
    config::parse(&text).map_err(|problems| {
        let mut message = format!("{origin}: {} problem(s):", problems.len());
        for p in problems {
            message.push_str(&format!("\n{indent}{origin}: {p}"));
        }
        message
    })
}

fn read_config_file(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > limits::MAX_CONFIG_BYTES as u64 {
        return Err(format!(
            "{}: larger than {} bytes",
            path.display(),
            limits::MAX_CONFIG_BYTES
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // SECURITY: password hashes can be attacked offline by whoever reads them.
    if meta.permissions().mode() & 0o004 != 0 && text.contains("password") {
        eprintln!(
            "lakeftpd: warning: {} holds password hashes and is readable by every user; chmod o-r it",
            path.display()
        );
    }
    Ok(text)
}

/// Serves `config`; `instance` (from EC2 metadata, when asked for) gives
/// the PASV address and the instance id for metrics and object keys.
fn serve_config(config: Config, instance: Option<imds::Instance>) -> ExitCode {
    let public_ip = match &config.public_address {
        // The address lakeftpd-claim took for this instance (direct topology).
        PublicAddress::File(path) => match config::address_file::read(path) {
            Ok(ip) => {
                log::info!(
                    "PASV advertises {ip} (public_address = file:{})",
                    path.display()
                );
                Some(ip)
            }
            Err(message) => return fail(&message),
        },
        _ => instance.as_ref().and_then(|i| i.pasv_address),
    };
    match server::run(config, public_ip, instance.map(|i| i.id)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

/// The demo: 127.0.0.1:2121, ./lakeftpd-data, user `demo` with a random
/// password printed once.
fn demo() -> ExitCode {
    init_logging(LevelFilter::Info);
    let root = match std::env::current_dir() {
        Ok(dir) => dir.join("lakeftpd-data"),
        Err(e) => return fail(&format!("cannot find the current directory: {e}")),
    };
    let password: String = sys::random_bytes::<9>()
        .iter()
        .map(|b| {
            char::from(b"abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY34679"[usize::from(*b) % 50])
        })
        .collect();
    let hash = match auth::hash(&password) {
        Ok(hash) => hash,
        Err(e) => return fail(&e),
    };
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:2121".parse().expect("a valid address");
    config.root = root.clone();
    // The demo runs unprivileged: active connections leave from any port.
    config.active_source_port = 0;
    let mut demo = User::new("demo", hash, root.clone());
    demo.permissions = Permissions::FULL;
    config.users.push(demo);
    config.max_sessions = 1000;
    // Ignore errors: stdout may be closed (piped to `head`); the demo serves anyway.
    let _ = writeln!(
        std::io::stdout(),
        "lakeftpd demo: ftp://demo:{password}@127.0.0.1:2121/ serving {}\n(the password is random and shown only now)",
        root.display()
    );
    let _ = std::io::stdout().flush();
    serve_config(config, None)
}

/// `lakeftpd passwd`: a password on standard input, its hash on standard
/// output. On a terminal: asked twice, without echo; from a pipe: one line.
fn passwd(scheme: auth::NewHash) -> ExitCode {
    let password = if sys::terminal::stdin_is_terminal() {
        match read_twice() {
            Ok(password) => password,
            Err(message) => return fail(&message),
        }
    } else {
        let mut line = String::new();
        if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
            return fail(&format!("cannot read the password: {e}"));
        }
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        return fail("empty password (give it on standard input)");
    }
    match auth::hash_with(&password, scheme) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// The password typed twice on the terminal, echo off; they must match.
fn read_twice() -> Result<String, String> {
    let read = |prompt| {
        sys::terminal::read_secret(prompt).map_err(|e| format!("cannot read the password: {e}"))
    };
    let first = read("Password: ")?;
    let second = read("Again: ")?;
    if first != second {
        return Err("the two passwords differ".into());
    }
    Ok(first)
}
