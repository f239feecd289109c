//! Small objects under one prefix, for the bans the instances of a fleet
//! share (`server/bans.rs`): a listing of the prefix with each object's
//! ETag (ListObjectsV2), and a PUT that succeeds only if the object is
//! still the version the writer last saw (`If-Match`) or does not exist
//! yet (`If-None-Match: *`): S3's conditional writes (Amazon S3 User
//! Guide, "Add preconditions to S3 operations with conditional requests").
//! Every request within `S3_CALL_DEADLINE`.

use super::s3::{check, read_body, xml_field, Client, Error};
use crate::limits::{S3_CALL_DEADLINE, S3_SIGNATURE_LIFETIME};
use rusty_s3::actions::{ListObjectsV2, PutObject, S3Action};

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    /// As S3 sent it, quotes included; `None` from a server that leaves it
    /// out (s3s-fs 0.14): the object is then read conditionally.
    pub etag: Option<String>,
    pub size: u64,
}

/// The objects of a ListObjectsV2 answer (`<Contents>` elements), the
/// first `max`. Read by hand rather than with rusty-s3's parser, which
/// requires an ETag in each.
fn parse_listing(text: &str, max: usize) -> Vec<Listed> {
    text.split("<Contents>")
        .skip(1)
        .take(max)
        .map(|contents| {
            let contents = contents.split("</Contents>").next().unwrap_or_default();
            let etag = xml_field(contents, "ETag").replace("&quot;", "\"");
            Listed {
                key: xml_field(contents, "Key"),
                etag: (!etag.is_empty()).then_some(etag),
                size: xml_field(contents, "Size").parse().unwrap_or(u64::MAX),
            }
        })
        .filter(|listed| !listed.key.is_empty())
        .collect()
}

/// What a conditional PUT expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect<'a> {
    /// No object yet (`If-None-Match: *`).
    Absent,
    /// The version with this ETag (`If-Match`).
    Version(&'a str),
}

/// How a conditional PUT ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Put {
    /// Written; the new version's ETag.
    Done(Option<String>),
    /// 412: the object is not what was expected (someone else wrote it).
    Conflict,
}

impl Client {
    /// The first `max` objects under `prefix` (one page), in key order.
    pub fn list(&self, prefix: &str, max: usize) -> Result<Vec<Listed>, Error> {
        let credentials = self.credentials()?;
        let mut action = ListObjectsV2::new(&self.bucket, Some(&credentials));
        action.with_prefix(prefix);
        action.with_max_keys(max);
        let url = action.sign(S3_SIGNATURE_LIFETIME);
        let result = self
            .agent
            .get(url.as_str())
            .config()
            .timeout_global(Some(S3_CALL_DEADLINE))
            .build()
            .call();
        let mut response = check(result, "ListObjectsV2")?;
        Ok(parse_listing(&read_body(&mut response), max))
    }

    /// Writes `body` to `key` if the object is as `expect` says.
    pub fn put_if(&self, key: &str, body: &[u8], expect: Expect<'_>) -> Result<Put, Error> {
        let credentials = self.credentials()?;
        let (name, value) = match expect {
            Expect::Absent => ("if-none-match", "*"),
            Expect::Version(etag) => ("if-match", etag),
        };
        let mut action = PutObject::new(&self.bucket, Some(&credentials), key);
        action.headers_mut().insert(name, value.to_string());
        let url = action.sign(S3_SIGNATURE_LIFETIME);
        let result = self
            .agent
            .put(url.as_str())
            .config()
            .timeout_global(Some(S3_CALL_DEADLINE))
            .build()
            .header(name, value)
            .send(body);
        if let Ok(response) = &result {
            // 412 Precondition Failed; 409 ConditionalRequestConflict when
            // another conditional write of the key was in flight.
            if matches!(response.status().as_u16(), 412 | 409) {
                return Ok(Put::Conflict);
            }
        }
        let response = check(result, "PutObject")?;
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Put::Done(etag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_reads_keys_etags_and_sizes() {
        // As S3 writes it (ETag quoted, as an entity), and without an ETag.
        let text = "<ListBucketResult><Name>b</Name><Contents><Key>p/a.bans</Key><ETag>&quot;abc&quot;</ETag><Size>12</Size></Contents><Contents><Key>p/b.bans</Key><Size>3</Size></Contents></ListBucketResult>";
        let listed = parse_listing(text, 10);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].etag.as_deref(), Some("\"abc\""));
        assert_eq!(listed[0].size, 12);
        assert_eq!(listed[1].etag, None);
        assert_eq!(parse_listing(text, 1).len(), 1);
    }
}
