//! Every rule between keys, in one place: `Config::check` runs once the
//! whole text is read (`parse` calls it) and reports every problem at once,
//! each with line 0 (it concerns the text, not one line).

use super::s3::Ack;
use super::{Config, Problem};

impl Config {
    /// The problems between keys; empty when the configuration is coherent.
    pub fn check(&self) -> Vec<Problem> {
        let mut messages = Vec::new();
        self.check_s3(&mut messages);
        self.check_users(&mut messages);
        self.check_tls(&mut messages);
        // SECURITY: the transfer records name every user, address and file;
        // inside `root` a user could read or replace them over FTP.
        if let Some(log) = self
            .transfer_log
            .as_ref()
            .filter(|l| l.starts_with(&self.root))
        {
            messages.push(format!(
                "`transfer_log` ({}) must not lie inside `root` ({})",
                log.display(),
                self.root.display()
            ));
        }
        self.check_exempt(&mut messages);
        if self.passive_ports.0 > self.passive_ports.1 {
            messages.push("passive_ports: the first port is above the last".to_string());
        }
        // SECURITY: with PROXY on, the header names the client; only listed
        // balancers may send one, so an empty list would refuse everyone.
        match (self.proxy_protocol, self.proxy_from.is_empty()) {
            (Some(_), true) => messages.push(
                "proxy_protocol is on but proxy_from is not set (list the balancers' addresses)"
                    .to_string(),
            ),
            (None, false) => {
                messages.push("proxy_from is set but proxy_protocol = off".to_string())
            }
            _ => {}
        }
        messages
            .into_iter()
            .map(|message| Problem { line: 0, message })
            .collect()
    }

    /// FTPS: TLS needs a certificate and key; what needs TLS.
    /// Clients are counted by their IPv6 prefix (`ClientKey`): an exempt
    /// block inside one client's prefix could not be told apart from it.
    fn check_exempt(&self, messages: &mut Vec<String>) {
        let prefix = self.defence.ipv6_prefix;
        for block in &self.defence.ban_exempt {
            if block.ipv6_longer_than(prefix) {
                messages.push(format!(
                    "ban_exempt: `{block}` is smaller than one client (IPv6 clients are counted by their /{prefix}, `ipv6_prefix`): exempt the /{prefix} or lengthen `ipv6_prefix`"
                ));
            }
        }
    }

    fn check_tls(&self, messages: &mut Vec<String>) {
        let tls = &self.tls;
        if !tls.enabled() {
            if tls.implicit_listen.is_some() {
                messages.push("`implicit_tls_listen` needs `tls = on` or `required`".into());
            }
            if tls.cert.is_some() || tls.key.is_some() {
                messages.push("`tls_cert`/`tls_key` are set but `tls = off`".into());
            }
            for user in self.users.iter().filter(|u| u.tls_required) {
                messages.push(format!(
                    "user `{}` has `tls = required` but `tls = off`",
                    user.name
                ));
            }
            for user in self.users.iter().filter(|u| u.tls_session_reuse.is_some()) {
                messages.push(format!(
                    "user `{}` sets `tls_session_reuse` but `tls = off`",
                    user.name
                ));
            }
            return;
        }
        if tls.cert.is_none() {
            messages.push("`tls` is on but `tls_cert` is not set".into());
        }
        if tls.key.is_none() {
            messages.push("`tls` is on but `tls_key` is not set".into());
        }
        if tls.implicit_listen == Some(self.listen) && self.listen.port() != 0 {
            messages.push("`implicit_tls_listen` and `listen` are the same address".into());
        }
    }

    /// S3 delivery: what needs a bucket, and where the spool may lie.
    fn check_s3(&self, messages: &mut Vec<String>) {
        let s3 = &self.s3;
        if s3.bucket.is_none() {
            if s3.ack == Some(Ack::S3) {
                messages.push("`ack = s3` needs `s3_bucket`".to_string());
            }
            if s3.keep_local == Some(false) {
                messages
                    .push("`keep_local = off` needs `s3_bucket` (files would vanish)".to_string());
            }
            return;
        }
        // SECURITY: the spool is the delivery queue; a user who could reach it
        // could plant files to be delivered under another user's name.
        if s3.spool.starts_with(&self.root) && s3.spool != self.root {
            messages.push(format!(
                "`spool` ({}) must not lie inside `root` ({})",
                s3.spool.display(),
                self.root.display()
            ));
        }
        messages.extend(self.check_homes(&self.users).into_iter().map(|(_, m)| m));
    }

    /// Users' homes against the spool (also for a users file): each problem
    /// with the user's name.
    pub fn check_homes<'a>(
        &self,
        users: impl IntoIterator<Item = &'a super::User>,
    ) -> Vec<(String, String)> {
        let s3 = &self.s3;
        if s3.bucket.is_none() {
            return Vec::new();
        }
        users
            .into_iter()
            .filter(|u| s3.spool.starts_with(&u.home) || u.home.starts_with(&s3.spool))
            .map(|user| {
                let message = format!(
                    "`spool` ({}) and the home of user `{}` ({}) must not contain each other",
                    s3.spool.display(),
                    user.name,
                    user.home.display()
                );
                (user.name.to_string(), message)
            })
            .collect()
    }

    /// The users keys: a cache and a boot timeout only mean something for S3.
    fn check_users(&self, messages: &mut Vec<String>) {
        let from_s3 = matches!(self.users_source, Some(super::UsersSource::S3 { .. }));
        if !from_s3 && self.users_cache.is_some() {
            messages.push("`users_cache` needs `users = s3://BUCKET/KEY`".to_string());
        }
        if !from_s3 && self.users_boot_timeout != crate::limits::DEFAULT_USERS_BOOT_TIMEOUT {
            messages.push("`users_boot_timeout` needs `users = s3://BUCKET/KEY`".to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::User;
    use std::path::PathBuf;

    fn with(edit: impl FnOnce(&mut Config)) -> Vec<Problem> {
        let mut c = Config::defaults();
        edit(&mut c);
        c.check()
    }

    #[test]
    fn defaults_are_coherent() {
        assert_eq!(Config::defaults().check(), vec![]);
    }

    #[test]
    fn ack_s3_without_bucket_is_a_problem() {
        let p = with(|c| c.s3.ack = Some(Ack::S3));
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("s3_bucket"));
    }

    #[test]
    fn transfer_log_inside_root_is_a_problem() {
        assert_eq!(
            with(|c| c.transfer_log = Some(c.root.join("dev/t.jsonl"))).len(),
            1
        );
        assert!(with(|c| c.transfer_log = Some("/var/log/lakeftpd/t.jsonl".into())).is_empty());
    }

    #[test]
    fn keep_local_off_without_bucket_is_a_problem() {
        assert_eq!(with(|c| c.s3.keep_local = Some(false)).len(), 1);
    }

    #[test]
    fn spool_inside_root_is_a_problem() {
        let p = with(|c| {
            c.root = PathBuf::from("/srv/ftp");
            c.s3.bucket = Some("lake".into());
            c.s3.spool = PathBuf::from("/srv/ftp/spool");
        });
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn spool_inside_root_without_bucket_is_fine() {
        // Nothing is delivered, so the spool is never read.
        let p = with(|c| {
            c.root = PathBuf::from("/srv/ftp");
            c.s3.spool = PathBuf::from("/srv/ftp/spool");
        });
        assert_eq!(p, vec![]);
    }

    #[test]
    fn spool_containing_a_home_is_a_problem() {
        let p = with(|c| {
            c.s3.bucket = Some("lake".into());
            c.s3.spool = PathBuf::from("/data");
            c.users
                .push(User::new("a", "$6$s$h".into(), PathBuf::from("/data/a")));
        });
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("user `a`"));
    }

    #[test]
    fn passive_range_reversed_is_a_problem() {
        assert_eq!(with(|c| c.passive_ports = (50999, 50000)).len(), 1);
    }

    #[test]
    fn proxy_protocol_without_proxy_from_is_a_problem() {
        let p = with(|c| c.proxy_protocol = Some(crate::protocol::proxy::Version::V2));
        assert!(p[0].message.contains("proxy_from"));
    }

    #[test]
    fn proxy_from_without_proxy_protocol_is_a_problem() {
        let p = with(|c| c.proxy_from = crate::config::cidr::parse_list("10.0.0.0/8").unwrap());
        assert!(p[0].message.contains("proxy_protocol = off"));
    }

    #[test]
    fn every_problem_at_once() {
        let p = with(|c| {
            c.s3.ack = Some(Ack::S3);
            c.s3.keep_local = Some(false);
            c.passive_ports = (2, 1);
            c.proxy_protocol = Some(crate::protocol::proxy::Version::V1);
        });
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|p| p.line == 0));
    }

    #[test]
    fn tls_on_needs_cert_and_key() {
        assert_eq!(with(|c| c.tls.mode = crate::config::tls::Mode::On).len(), 2);
    }

    #[test]
    fn implicit_listener_needs_tls() {
        let p = with(|c| c.tls.implicit_listen = Some("0.0.0.0:990".parse().unwrap()));
        assert!(p[0].message.contains("implicit_tls_listen"));
    }
}
