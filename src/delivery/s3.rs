//! The S3 client: requests signed by rusty-s3 (SigV4 as presigned URLs,
//! computed just before each request), sent by ureq over rustls. Blocking: it
//! runs on the delivery threads (delivery.rs), never on the executor.
//!
//! Integrity: every body carries `Content-MD5`, which S3 checks against the
//! bytes it received and refuses with `BadDigest` on a mismatch
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPart.html>).
//! The digest is computed from the spooled file in a first pass, then the
//! same bytes are streamed: no file or part is ever held in memory.
//!
//! Files up to `s3_part_size` go up in one PutObject; larger ones as a
//! multipart upload whose parts are sent one after another (concurrency comes
//! from several files in flight). A multipart upload that fails is aborted.
//!
//! Reading: `get_object` is one GetObject, conditional on an ETag when the
//! caller holds a copy (`If-None-Match`, RFC 9110 §13.1.2: S3 answers 304
//! Not Modified without a body), with a bounded body.

use crate::config::s3::S3Settings;
use crate::delivery::credentials::Provider;
use crate::limits::{
    DELIVERY_BUFFER, MAX_RETRY_AFTER, MAX_S3_PARTS, MAX_S3_RESPONSE, S3_CONNECT_TIMEOUT,
    S3_RESPONSE_TIMEOUT, S3_SIGNATURE_LIFETIME, SLOW_DOWN_PAUSE,
};
use base64::Engine as _;
use md5::{Digest, Md5};
use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, GetObject, PutObject,
    S3Action, UploadPart,
};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use ureq::http::Response;
use ureq::{Body, SendBody};

#[derive(Debug)]
pub enum Error {
    /// The spooled file cannot be read: retrying cannot help.
    Local(io::Error),
    /// The network or S3 failed: retry later.
    Remote {
        message: String,
        /// S3 asked the client to slow down (503 SlowDown), for this long.
        slow_down: Option<Duration>,
        /// S3 refused the credentials: fetch new ones.
        credentials: bool,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Local(e) => write!(f, "spooled file unreadable: {e}"),
            Error::Remote { message, .. } => f.write_str(message),
        }
    }
}

fn remote(message: String) -> Error {
    Error::Remote {
        message,
        slow_down: None,
        credentials: false,
    }
}

/// One object to store.
pub struct Object<'a> {
    pub key: &'a str,
    pub file: &'a Path,
    /// `x-amz-meta-NAME` headers; values are percent-encoded here.
    pub metadata: &'a [(&'static str, String)],
}

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

pub struct Client {
    bucket: Bucket,
    agent: ureq::Agent,
    credentials: Arc<Provider>,
    part_size: u64,
}

impl Client {
    pub fn new(settings: &S3Settings, credentials: Arc<Provider>) -> Result<Client, String> {
        let bucket_name = settings.bucket.clone().ok_or("no s3_bucket")?;
        Client::for_bucket(settings, bucket_name, credentials)
    }

    /// A client of `bucket_name` with the endpoint, region and part size of
    /// `settings` (another bucket than `s3_bucket`: the users file's, the
    /// TLS certificate's), read with the same credentials.
    pub fn for_bucket(
        settings: &S3Settings,
        bucket_name: String,
        credentials: Arc<Provider>,
    ) -> Result<Client, String> {
        let (endpoint, style) = match &settings.endpoint {
            // S3-compatible servers are addressed path-style.
            Some(url) => (url.clone(), UrlStyle::Path),
            None => {
                let domain = if settings.region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                let url = format!("https://s3.{}.{domain}", settings.region);
                // A dotted bucket name breaks the TLS wildcard of
                // virtual-hosted addressing; S3 still serves it path-style.
                let style = if bucket_name.contains('.') {
                    UrlStyle::Path
                } else {
                    UrlStyle::VirtualHost
                };
                (url::Url::parse(&url).map_err(|e| e.to_string())?, style)
            }
        };
        let bucket = Bucket::new(endpoint, style, bucket_name, settings.region.clone())
            .map_err(|e| format!("s3 endpoint: {e}"))?;
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(S3_CONNECT_TIMEOUT))
            .timeout_recv_response(Some(S3_RESPONSE_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("lakeftpd/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client {
            bucket,
            agent,
            credentials,
            part_size: settings.part_size,
        })
    }

    pub fn bucket_url(&self) -> &url::Url {
        self.bucket.base_url()
    }

    fn credentials(&self) -> Result<Arc<Credentials>, Error> {
        self.credentials.get().map_err(|message| Error::Remote {
            message: format!("no credentials: {message}"),
            slow_down: None,
            credentials: false,
        })
    }

    /// Reads a small object whole: at most `max` bytes, and its ETag (which
    /// changes whenever the object is replaced).
    pub fn get(&self, key: &str, max: usize) -> Result<(Vec<u8>, Option<String>), Error> {
        match self.get_object(key, None, max as u64)? {
            Got::Object { body, etag } => Ok((body, etag)),
            Got::NotModified => unreachable!("an unconditional GET is never 304"),
        }
    }

    /// Reads `key`, unless its ETag is still `if_none_match`; a body above
    /// `limit` bytes is an error.
    pub fn get_object(
        &self,
        key: &str,
        if_none_match: Option<&str>,
        limit: u64,
    ) -> Result<Got, Error> {
        let credentials = self.credentials()?;
        let action = GetObject::new(&self.bucket, Some(&credentials), key);
        let url = action.sign(S3_SIGNATURE_LIFETIME);
        let mut request = self.agent.get(url.as_str());
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

    /// Stores `object`; returns the bytes sent.
    pub fn put(&self, object: &Object<'_>) -> Result<u64, Error> {
        let file = File::open(object.file).map_err(Error::Local)?;
        let size = file.metadata().map_err(Error::Local)?.len();
        let metadata: Vec<(String, String)> = object
            .metadata
            .iter()
            .map(|(name, value)| (format!("x-amz-meta-{name}"), encode_metadata(value)))
            .collect();
        let mut buffer = vec![0u8; DELIVERY_BUFFER];
        if size <= self.part_size {
            self.put_single(object.key, &file, size, &metadata, &mut buffer)?;
        } else {
            self.put_multipart(object.key, &file, size, &metadata, &mut buffer)?;
        }
        Ok(size)
    }

    fn put_single(
        &self,
        key: &str,
        file: &File,
        size: u64,
        metadata: &[(String, String)],
        buffer: &mut [u8],
    ) -> Result<(), Error> {
        let md5 = md5_base64(file, 0, size, buffer)?;
        let credentials = self.credentials()?;
        let mut action = PutObject::new(&self.bucket, Some(&credentials), key);
        action.headers_mut().insert("content-md5", md5.clone());
        for (name, value) in metadata {
            action.headers_mut().insert(name.clone(), value.clone());
        }
        let url = action.sign(S3_SIGNATURE_LIFETIME);
        let mut request = self
            .agent
            .put(url.as_str())
            .header("content-md5", &md5)
            .header("content-length", size.to_string());
        for (name, value) in metadata {
            request = request.header(name, value);
        }
        let mut body = Range::new(file, 0, size);
        let result = request.send(SendBody::from_reader(&mut body));
        check(result, "PutObject").map(drop)
    }

    fn put_multipart(
        &self,
        key: &str,
        file: &File,
        size: u64,
        metadata: &[(String, String)],
        buffer: &mut [u8],
    ) -> Result<(), Error> {
        let part_size = part_size(size, self.part_size);
        let credentials = self.credentials()?;
        let mut action = CreateMultipartUpload::new(&self.bucket, Some(&credentials), key);
        for (name, value) in metadata {
            action.headers_mut().insert(name.clone(), value.clone());
        }
        let url = action.sign(S3_SIGNATURE_LIFETIME);
        let mut request = self.agent.post(url.as_str());
        for (name, value) in metadata {
            request = request.header(name, value);
        }
        let mut response = check(request.send_empty(), "CreateMultipartUpload")?;
        let text = read_body(&mut response);
        let created = CreateMultipartUpload::parse_response(&text)
            .map_err(|e| remote(format!("CreateMultipartUpload: unreadable response: {e}")))?;
        let upload_id = created.upload_id().to_string();

        let result = self.send_parts(key, &upload_id, file, size, part_size, buffer);
        if result.is_err() {
            self.abort(key, &upload_id);
        }
        result
    }

    fn send_parts(
        &self,
        key: &str,
        upload_id: &str,
        file: &File,
        size: u64,
        part_size: u64,
        buffer: &mut [u8],
    ) -> Result<(), Error> {
        let mut etags = Vec::new();
        let mut offset = 0;
        while offset < size {
            let len = part_size.min(size - offset);
            let number = etags.len() as u16 + 1;
            let md5 = md5_base64(file, offset, len, buffer)?;
            // Per part: credentials may rotate during a long upload.
            let credentials = self.credentials()?;
            let mut action =
                UploadPart::new(&self.bucket, Some(&credentials), key, number, upload_id);
            action.headers_mut().insert("content-md5", md5.clone());
            let url = action.sign(S3_SIGNATURE_LIFETIME);
            let mut body = Range::new(file, offset, len);
            let result = self
                .agent
                .put(url.as_str())
                .header("content-md5", &md5)
                .header("content-length", len.to_string())
                .send(SendBody::from_reader(&mut body));
            let response = check(result, "UploadPart")?;
            let etag = response
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| remote("UploadPart: response without ETag".into()))?
                .to_string();
            etags.push(etag);
            offset += len;
        }
        let credentials = self.credentials()?;
        let action = CompleteMultipartUpload::new(
            &self.bucket,
            Some(&credentials),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(S3_SIGNATURE_LIFETIME);
        let body = action.body();
        let result = self.agent.post(url.as_str()).send(body.as_bytes());
        let mut response = check(result, "CompleteMultipartUpload")?;
        // S3 may answer 200 and still fail: the error is in the body
        // (API_CompleteMultipartUpload.html, "Special errors").
        let text = read_body(&mut response);
        if text.contains("<Error>") {
            let (code, message) = error_fields(&text);
            return Err(remote(format!(
                "CompleteMultipartUpload failed: {code}: {message}"
            )));
        }
        Ok(())
    }

    /// Best effort: an upload left behind costs storage until a lifecycle
    /// rule (AbortIncompleteMultipartUpload, see docs/s3-and-durability.md) removes it.
    fn abort(&self, key: &str, upload_id: &str) {
        let Ok(credentials) = self.credentials() else {
            return;
        };
        let action = AbortMultipartUpload::new(&self.bucket, Some(&credentials), key, upload_id);
        let url = action.sign(S3_SIGNATURE_LIFETIME);
        match check(
            self.agent.delete(url.as_str()).call(),
            "AbortMultipartUpload",
        ) {
            Ok(_) => log::info!("s3: aborted the failed multipart upload of {key:?}"),
            Err(e) => log::warn!("s3: cannot abort the multipart upload of {key:?}: {e}"),
        }
    }
}

/// Parts of at least `configured` bytes, and few enough for S3's limit of
/// 10,000 (rounded up to whole MiB).
fn part_size(size: u64, configured: u64) -> u64 {
    let needed = size.div_ceil(MAX_S3_PARTS).div_ceil(1 << 20) << 20;
    configured.max(needed)
}

/// A section of a file as a `Read`, by positional reads (no shared offset).
struct Range<'a> {
    file: &'a File,
    offset: u64,
    remaining: u64,
}

impl<'a> Range<'a> {
    fn new(file: &'a File, offset: u64, len: u64) -> Range<'a> {
        Range {
            file,
            offset,
            remaining: len,
        }
    }
}

impl Read for Range<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        if n == 0 {
            // The spooled file shrank: refuse to send a short body.
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.offset += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn md5_base64(file: &File, offset: u64, len: u64, buffer: &mut [u8]) -> Result<String, Error> {
    let mut range = Range::new(file, offset, len);
    let mut hasher = Md5::new();
    loop {
        match range.read(buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) => return Err(Error::Local(e)),
        }
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(hasher.finalize()))
}

/// Metadata travels in HTTP headers, which carry ASCII only: UTF-8 bytes
/// outside a conservative set (space included, which SigV4 would trim and
/// collapse) are percent-encoded (RFC 3986 §2.1). docs/s3-and-durability.md says how to read them.
pub fn encode_metadata(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:=@+,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn read_body(response: &mut Response<Body>) -> String {
    // An unreadable body reads as empty; the status already told the outcome.
    response
        .body_mut()
        .with_config()
        .limit(MAX_S3_RESPONSE)
        .read_to_string()
        .unwrap_or_default()
}

/// `<Code>` and `<Message>` of an S3 error document.
fn error_fields(text: &str) -> (String, String) {
    let field = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        text.split_once(&open)
            .and_then(|(_, rest)| rest.split_once(&close))
            .map_or(String::new(), |(value, _)| value.to_string())
    };
    (field("Code"), field("Message"))
}

/// Error codes after which new credentials may help.
/// <https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>
const CREDENTIAL_CODES: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AccessDenied",
];

/// A 2xx response, or the error it stands for.
fn check(result: Result<Response<Body>, ureq::Error>, what: &str) -> Result<Response<Body>, Error> {
    let mut response = result.map_err(|e| remote(format!("{what}: {e}")))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
    let text = read_body(&mut response);
    let (code, message) = error_fields(&text);
    let slow_down = (status == 503 || status == 429 || code == "SlowDown")
        .then(|| retry_after.unwrap_or(SLOW_DOWN_PAUSE));
    Err(Error::Remote {
        message: format!("{what}: HTTP {status} {code}: {message}"),
        slow_down,
        credentials: CREDENTIAL_CODES.contains(&code.as_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_encoding() {
        assert_eq!(encode_metadata("/a/b-1.csv"), "/a/b-1.csv");
        assert_eq!(encode_metadata("a b%"), "a%20b%25");
        assert_eq!(encode_metadata("温度.csv"), "%E6%B8%A9%E5%BA%A6.csv");
    }

    #[test]
    fn parts_fit_s3_limits() {
        let mib = 1 << 20;
        assert_eq!(part_size(1 << 30, 16 * mib), 16 * mib);
        // 5 TiB at 16 MiB would be 327,680 parts: larger parts instead.
        let big = part_size(5 << 40, 16 * mib);
        assert!((5u64 << 40).div_ceil(big) <= MAX_S3_PARTS);
    }

    #[test]
    fn error_document() {
        let text = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>";
        assert_eq!(
            error_fields(text),
            ("SlowDown".into(), "Reduce your request rate.".into())
        );
    }
}
