//! The keys that adapt lakeftpd to devices as they are, global and per
//! user: `active_address` (where PORT/EPRT data connections go),
//! `filename_encoding` (the code page of names on the wire) and
//! `auto_mkdir` (STOR into folders that do not exist yet).

use crate::protocol::encoding::NameEncoding;

/// The keys this file parses, in the global part and in `[user NAME]`.
pub const KEYS: &[&str] = &["active_address", "filename_encoding", "auto_mkdir"];

/// Where an active data connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveAddress {
    /// To the address in PORT/EPRT, which must be the client's own.
    Strict,
    /// To the client's address (after PROXY) whatever PORT/EPRT says: for
    /// devices behind NAT, which report their private address.
    Peer,
}

/// The device settings of one user (the global ones, overridden by the
/// user's section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub active_address: ActiveAddress,
    pub filename_encoding: NameEncoding,
    pub auto_mkdir: bool,
}

impl Default for Device {
    fn default() -> Device {
        Device {
            active_address: ActiveAddress::Strict,
            filename_encoding: NameEncoding::UTF8,
            auto_mkdir: false,
        }
    }
}

/// A user's overrides while its section is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceDraft {
    active_address: Option<ActiveAddress>,
    filename_encoding: Option<NameEncoding>,
    auto_mkdir: Option<bool>,
}

impl Device {
    /// A global key. (The caller refuses a key set twice.)
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let mut draft = DeviceDraft::default();
        draft.set(key, value)?;
        *self = draft.over(*self);
        Ok(())
    }
}

impl DeviceDraft {
    /// A key of a user's section; set twice is a problem.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bad = |what: String| format!("`{key}`: {what}, found `{value}`");
        let twice = || format!("`{key}` is set twice");
        match key {
            "active_address" => {
                if self.active_address.is_some() {
                    return Err(twice());
                }
                self.active_address = Some(match value {
                    "strict" => ActiveAddress::Strict,
                    "peer" => ActiveAddress::Peer,
                    _ => return Err(bad("expected `strict` or `peer`".into())),
                });
            }
            "filename_encoding" => {
                if self.filename_encoding.is_some() {
                    return Err(twice());
                }
                let known = NameEncoding::labels().collect::<Vec<_>>().join(", ");
                self.filename_encoding = Some(
                    NameEncoding::from_label(value)
                        .ok_or_else(|| bad(format!("expected one of {known}")))?,
                );
            }
            "auto_mkdir" => {
                if self.auto_mkdir.is_some() {
                    return Err(twice());
                }
                self.auto_mkdir = Some(super::parse_switch(value).map_err(bad)?);
            }
            _ => return Err(format!("unknown key `{key}`")),
        }
        Ok(())
    }

    /// The user's settings: its own, else `base` (the global ones).
    pub fn over(self, base: Device) -> Device {
        Device {
            active_address: self.active_address.unwrap_or(base.active_address),
            filename_encoding: self.filename_encoding.unwrap_or(base.filename_encoding),
            auto_mkdir: self.auto_mkdir.unwrap_or(base.auto_mkdir),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(lines: &[(&str, &str)]) -> Result<DeviceDraft, String> {
        let mut d = DeviceDraft::default();
        for (k, v) in lines {
            d.set(k, v)?;
        }
        Ok(d)
    }

    #[test]
    fn defaults_are_todays_behaviour() {
        // strict, UTF-8, no folders made: what lakeftpd did before the keys.
        let d = Device::default();
        assert_eq!(d.active_address, ActiveAddress::Strict);
        assert!(d.filename_encoding.is_utf8());
        assert!(!d.auto_mkdir);
    }

    #[test]
    fn peer_parsed() {
        let d = draft(&[("active_address", "peer")]).unwrap();
        assert_eq!(
            d.over(Device::default()).active_address,
            ActiveAddress::Peer
        );
    }

    #[test]
    fn bad_active_address_refused() {
        assert!(draft(&[("active_address", "any")])
            .unwrap_err()
            .contains("`strict` or `peer`"));
    }

    #[test]
    fn encoding_label_parsed() {
        let d = draft(&[("filename_encoding", "shift_jis")]).unwrap();
        assert_eq!(
            d.over(Device::default()).filename_encoding.label(),
            "shift_jis"
        );
    }

    #[test]
    fn unknown_encoding_lists_the_known_ones() {
        let e = draft(&[("filename_encoding", "ebcdic")]).unwrap_err();
        assert!(e.contains("shift_jis") && e.contains("gbk"), "{e}");
    }

    #[test]
    fn auto_mkdir_switch() {
        let d = draft(&[("auto_mkdir", "on")]).unwrap();
        assert!(d.over(Device::default()).auto_mkdir);
        assert!(draft(&[("auto_mkdir", "maybe")]).is_err());
    }

    #[test]
    fn set_twice_in_a_section_refused() {
        let e = draft(&[("auto_mkdir", "on"), ("auto_mkdir", "off")]).unwrap_err();
        assert!(e.contains("twice"));
    }

    #[test]
    fn user_overrides_only_what_it_sets() {
        let mut global = Device::default();
        global.set("auto_mkdir", "on").unwrap();
        global.set("filename_encoding", "latin1").unwrap();
        let user = draft(&[("filename_encoding", "gbk")]).unwrap().over(global);
        assert!(user.auto_mkdir);
        assert_eq!(user.filename_encoding.label(), "gbk");
    }
}
