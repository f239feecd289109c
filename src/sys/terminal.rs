//! Reading a password from a terminal without echo (`lakeftpd passwd`):
//! the terminal's ECHO flag is cleared while the line is read and restored
//! afterwards, also when reading fails (termios(3), as getpass(3) does).

use rustix::termios::{self, LocalModes, OptionalActions};
use std::io::{self, BufRead, Write};

/// Whether standard input is a terminal.
pub fn stdin_is_terminal() -> bool {
    termios::isatty(io::stdin())
}

/// Restores the terminal's modes when dropped.
struct EchoOff {
    saved: termios::Termios,
}

impl EchoOff {
    fn new() -> io::Result<EchoOff> {
        let saved = termios::tcgetattr(io::stdin())?;
        let mut quiet = saved.clone();
        // ECHONL is kept off too: the newline is written by us after the
        // line, once, on standard error.
        quiet
            .local_modes
            .remove(LocalModes::ECHO | LocalModes::ECHONL);
        termios::tcsetattr(io::stdin(), OptionalActions::Flush, &quiet)?;
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // Ignore errors: nothing better can be done for the terminal.
        let _ = termios::tcsetattr(io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Writes `prompt` on standard error, reads one line from the terminal
/// with echo off, and returns it without its line end.
pub fn read_secret(prompt: &str) -> io::Result<String> {
    let mut err = io::stderr();
    err.write_all(prompt.as_bytes())?;
    err.flush()?;
    let mut line = String::new();
    {
        let _quiet = EchoOff::new()?;
        io::stdin().lock().read_line(&mut line)?;
    }
    err.write_all(b"\n")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
