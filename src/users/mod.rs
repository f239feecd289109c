//! The users who may log in: those of the configuration text and those of a
//! users file (`users = s3://BUCKET/KEY | /path`), as one set that a reload
//! replaces whole.
//!
//! - this file: the set (`Users`), looked up by name through a hash map,
//!   swapped atomically: a reader takes the lock for one look-up and an
//!   `Arc` clone, the reload builds the new set outside the lock, and the
//!   old set is dropped after the lock is released. A login in progress is
//!   never blocked for longer than one swap of a pointer. A user who did not
//!   change keeps the same `Arc` across a reload, so a session compares its
//!   `Arc` with the current one (`is_current`) and ends with 421 when its
//!   user was removed or changed;
//! - `source`: reading the users file (a conditional GET on S3, mtime and
//!   size for a local file);
//! - `cache`: the last good copy from S3 on disk, for a start without S3;
//! - `reload`: the start (boot timeout, cache, health) and the thread that
//!   polls and answers SIGHUP.

mod cache;
pub mod reload;
mod source;

use crate::config::{Config, User, UsersSource};
use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};

/// A user in the set, hashed and compared by name (so the name is stored
/// once: no separate key string per user).
struct ByName(Arc<User>);

impl Borrow<str> for ByName {
    fn borrow(&self) -> &str {
        &self.0.name
    }
}

impl Hash for ByName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The same as `str`'s hash, as `Borrow` requires.
        (*self.0.name).hash(state);
    }
}

impl PartialEq for ByName {
    fn eq(&self, other: &ByName) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for ByName {}

type Set = HashSet<ByName>;

/// `lakeftpd check`: reads `source` once as the server would at start (S3
/// with the delivery's credentials: the instance role on EC2) and checks
/// its users against `config`; how many there are, or every problem.
pub fn read_and_check(config: &Config, source: &UsersSource) -> Result<usize, String> {
    // As at boot: the read is cut at `users_boot_timeout`.
    let text = match source::Source::new(config, source)?.fetch(true, config.users_boot_timeout)? {
        source::Fetched::Text(text) => text,
        // A forced read is never answered "unchanged".
        source::Fetched::Unchanged => return Err(format!("{source}: no body")),
    };
    // Every problem, as `check --users` lists them.
    crate::config::parse_users(&text, config, usize::MAX)
        .map(|users| users.len())
        .map_err(|refused| {
            let mut message = format!("{source}: {} problem(s):", refused.problems.len());
            for p in refused.problems {
                message.push_str(&format!("\n  {source}: {p}"));
            }
            message
        })
}

/// What a replacement changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub total: usize,
}

/// The current users; see the module doc.
pub struct Users {
    current: RwLock<Arc<Set>>,
}

impl Users {
    pub fn new(users: Vec<User>) -> Users {
        let set: Set = users.into_iter().map(|u| ByName(Arc::new(u))).collect();
        Users {
            current: RwLock::new(Arc::new(set)),
        }
    }

    fn snapshot(&self) -> Arc<Set> {
        // A panic cannot leave the pointer half-written: take it as it is.
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The user called `name`, if any: one hash look-up.
    pub fn get(&self, name: &str) -> Option<Arc<User>> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current.get(name).map(|u| u.0.clone())
    }

    /// Whether `user` is still the current definition of its name (not
    /// removed, not changed by a reload).
    pub fn is_current(&self, user: &Arc<User>) -> bool {
        self.get(&user.name)
            .is_some_and(|now| Arc::ptr_eq(&now, user))
    }

    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the whole set by `users`. Users equal to their current
    /// definition keep their `Arc` (their sessions go on). Called by one
    /// thread at a time (the reload).
    pub fn replace(&self, users: Vec<User>) -> Changes {
        let old = self.snapshot();
        let mut changes = Changes {
            total: users.len(),
            ..Changes::default()
        };
        let mut set = Set::with_capacity(users.len());
        for user in users {
            let kept = match old.get(&*user.name) {
                Some(existing) if *existing.0 == user => existing.0.clone(),
                Some(_) => {
                    changes.changed += 1;
                    Arc::new(user)
                }
                None => {
                    changes.added += 1;
                    Arc::new(user)
                }
            };
            set.insert(ByName(kept));
        }
        changes.removed = old.len() + changes.added - set.len();
        let new = Arc::new(set);
        let previous = {
            let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *current, new)
        };
        // The old set is freed here, outside the lock (100,000 users take
        // milliseconds to free), and only once no reader holds it.
        drop(previous);
        drop(old);
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Permissions;

    fn user(name: &str, hash: &str) -> User {
        User::new(name, hash.to_string(), format!("/h/{name}").into())
    }

    #[test]
    fn lookup_by_name() {
        let users = Users::new(vec![user("a", "$6$x$1"), user("b", "$6$x$2")]);
        assert_eq!(&*users.get("b").unwrap().password_hash, "$6$x$2");
        assert!(users.get("c").is_none());
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn unchanged_users_keep_their_identity() {
        let users = Users::new(vec![user("a", "$6$x$1"), user("b", "$6$x$2")]);
        let a = users.get("a").unwrap();
        let changes = users.replace(vec![user("a", "$6$x$1"), user("b", "$6$x$2")]);
        assert_eq!(changes.changed + changes.added + changes.removed, 0);
        assert!(users.is_current(&a));
    }

    #[test]
    fn a_changed_password_ends_the_identity() {
        let users = Users::new(vec![user("a", "$6$x$1")]);
        let a = users.get("a").unwrap();
        let changes = users.replace(vec![user("a", "$6$x$NEW")]);
        assert_eq!(changes.changed, 1);
        assert!(!users.is_current(&a));
    }

    #[test]
    fn changed_permissions_end_the_identity() {
        let users = Users::new(vec![user("a", "$6$x$1")]);
        let a = users.get("a").unwrap();
        let mut changed = user("a", "$6$x$1");
        changed.permissions = Permissions::FULL;
        users.replace(vec![changed]);
        assert!(!users.is_current(&a));
    }

    #[test]
    fn a_removed_user_is_gone() {
        let users = Users::new(vec![user("a", "$6$x$1"), user("b", "$6$x$2")]);
        let b = users.get("b").unwrap();
        let changes = users.replace(vec![user("a", "$6$x$1"), user("c", "$6$x$3")]);
        assert_eq!((changes.added, changes.removed, changes.total), (1, 1, 2));
        assert!(users.get("b").is_none());
        assert!(!users.is_current(&b));
        assert!(users.get("c").is_some());
    }

    #[test]
    fn a_reader_keeps_its_user_across_a_swap() {
        let users = Users::new(vec![user("a", "$6$x$1")]);
        let a = users.get("a").unwrap();
        users.replace(Vec::new());
        // The session's copy stays valid (it only learns it is stale).
        assert_eq!(&*a.name, "a");
    }
}
