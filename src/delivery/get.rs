//! Reading objects: `get_object` is one GetObject, conditional on an ETag
//! when the caller holds a copy (`If-None-Match`, RFC 9110 §13.1.2: S3
//! answers 304 Not Modified without a body), with a bounded body and a
//! total deadline (connect, headers and body: a server that trickles one
//! byte every few seconds is cut off at it). Used for the users file and
//! the TLS certificate and key.

use super::s3::{check, remote, Client, Error};
use crate::limits::{S3_CALL_DEADLINE, S3_SIGNATURE_LIFETIME};
use rusty_s3::actions::{GetObject, S3Action};
use std::time::Duration;

/// What a GetObject found.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    /// The object still has the ETag given (304, or 200 with that ETag
    /// from a server that ignores the condition).
    NotModified,
    Object {
        body: Vec<u8>,
        /// As S3 sent it, quotes included.
        etag: Option<String>,
    },
}

impl Client {
    /// Reads a small object whole: at most `max` bytes, and its ETag (which
    /// changes whenever the object is replaced), within `S3_CALL_DEADLINE`.
    pub fn get(&self, key: &str, max: usize) -> Result<(Vec<u8>, Option<String>), Error> {
        match self.get_object(key, None, max as u64, S3_CALL_DEADLINE)? {
            Got::Object { body, etag } => Ok((body, etag)),
            Got::NotModified => unreachable!("an unconditional GET is never 304"),
        }
    }

    /// Reads `key`, unless its ETag is still `if_none_match`; a body above
    /// `limit` bytes is an error, and so is a request not done, body
    /// included, within `deadline`.
    pub fn get_object(
        &self,
        key: &str,
        if_none_match: Option<&str>,
        limit: u64,
        deadline: Duration,
    ) -> Result<Got, Error> {
        let credentials = self.credentials()?;
        let action = GetObject::new(&self.bucket, Some(&credentials), key);
        let url = action.sign(S3_SIGNATURE_LIFETIME);
        // SECURITY: a total deadline, body included (ureq's global timeout
        // covers connect, headers and body alike).
        let mut request = self
            .agent
            .get(url.as_str())
            .config()
            .timeout_global(Some(deadline))
            .build();
        if let Some(etag) = if_none_match {
            request = request.header("if-none-match", etag);
        }
        let result = request.call();
        if let Ok(response) = &result {
            if response.status().as_u16() == 304 {
                return Ok(Got::NotModified);
            }
        }
        let mut response = check(result, "GetObject")?;
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if if_none_match.is_some() && etag.as_deref() == if_none_match {
            return Ok(Got::NotModified);
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| remote(format!("GetObject: body: {e}")))?;
        Ok(Got::Object { body, etag })
    }
}
