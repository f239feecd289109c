//! The command line (argh). `lakeftpd` alone runs the demo; see README.

use argh::FromArgs;
use std::path::PathBuf;

/// lakeftpd: an FTP server for IoT fleets (active and passive mode).
/// Without a subcommand: a demo on 127.0.0.1:2121 serving ./lakeftpd-data,
/// user `demo` with a random password printed once.
#[derive(FromArgs, Debug, PartialEq)]
pub struct Cli {
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
    #[argh(subcommand)]
    pub command: Option<Command>,
}

#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand)]
pub enum Command {
    Serve(Serve),
    Check(Check),
    Passwd(Passwd),
}

/// Run the server.
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand, name = "serve")]
pub struct Serve {
    /// the configuration file
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// fetch the configuration from EC2 user-data (IMDSv2)
    #[argh(switch)]
    pub user_data: bool,
    /// log level (error, warn, info, debug, trace); overrides `log_level`
    #[argh(option)]
    pub log_level: Option<String>,
}

/// Validate a configuration, a users file, or both: print every problem
/// with its line number and exit 1 on any.
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand, name = "check")]
pub struct Check {
    /// the configuration file
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// fetch the configuration from EC2 user-data (IMDSv2)
    #[argh(switch)]
    pub user_data: bool,
    /// a users file (`[user NAME]` sections only); with a configuration,
    /// also checked against it (names in both, homes and the spool).
    /// Without it, the configuration's own `users = ...` is read (S3 with
    /// the instance role) and checked
    #[argh(option)]
    pub users: Option<PathBuf>,
}

/// Read a password on standard input, print its hash (`$6$` SHA-512 crypt
/// unless --scheme says otherwise).
#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand, name = "passwd")]
pub struct Passwd {
    /// sha512 (default), bcrypt or argon2id
    #[argh(option, default = "String::from(\"sha512\")")]
    pub scheme: String,
}

/// Where the configuration comes from.
#[derive(Debug, PartialEq)]
pub enum Source {
    File(PathBuf),
    UserData,
}

/// `--config FILE` and `--user-data` are exclusive and one is required.
pub fn source(config: &Option<PathBuf>, user_data: bool) -> Result<Source, String> {
    match (config, user_data) {
        (Some(path), false) => Ok(Source::File(path.clone())),
        (None, true) => Ok(Source::UserData),
        (Some(_), true) => Err("give either --config FILE or --user-data, not both".into()),
        (None, false) => Err("give --config FILE or --user-data".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::from_args(&["lakeftpd"], args).map_err(|e| e.output)
    }

    #[test]
    fn no_arguments_is_the_demo() {
        assert_eq!(parse(&[]).unwrap().command, None);
    }

    #[test]
    fn serve_with_config() {
        let cli = parse(&["serve", "--config", "/etc/lakeftpd.conf"]).unwrap();
        let Some(Command::Serve(s)) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(
            source(&s.config, s.user_data),
            Ok(Source::File("/etc/lakeftpd.conf".into()))
        );
    }

    #[test]
    fn serve_with_user_data() {
        let cli = parse(&["serve", "--user-data"]).unwrap();
        let Some(Command::Serve(s)) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(source(&s.config, s.user_data), Ok(Source::UserData));
    }

    #[test]
    fn both_sources_refused() {
        assert!(source(&Some("/x".into()), true).is_err());
    }

    #[test]
    fn no_source_refused() {
        assert!(source(&None, false).is_err());
    }

    #[test]
    fn check_with_config() {
        let cli = parse(&["check", "--config", "a.conf"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Check(_))));
    }

    #[test]
    fn passwd_takes_no_positional_arguments() {
        assert!(parse(&["passwd"]).is_ok());
        assert!(parse(&["passwd", "secret"]).is_err());
    }

    #[test]
    fn passwd_takes_a_scheme() {
        let cli = parse(&["passwd", "--scheme", "argon2id"]).unwrap();
        assert_eq!(
            cli.command,
            Some(Command::Passwd(Passwd {
                scheme: "argon2id".into()
            }))
        );
    }

    #[test]
    fn check_with_users_alone() {
        let cli = parse(&["check", "--users", "users.conf"]).unwrap();
        let Some(Command::Check(c)) = cli.command else {
            panic!("not check")
        };
        assert_eq!(c.users, Some("users.conf".into()));
        assert_eq!(c.config, None);
    }

    #[test]
    fn version_switch() {
        assert!(parse(&["--version"]).unwrap().version);
        assert!(!parse(&[]).unwrap().version);
    }

    #[test]
    fn unknown_subcommand_refused() {
        assert!(parse(&["run"]).is_err());
    }

    #[test]
    fn help_is_offered() {
        let help = parse(&["serve", "--help"]).unwrap_err();
        assert!(help.contains("--user-data"));
    }
}
