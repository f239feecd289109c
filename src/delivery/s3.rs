//! The S3 client: requests signed by rusty-s3 (SigV4 as presigned URLs,
//! computed just before each request), sent by ureq over rustls. Blocking: it
//! runs on the delivery threads (delivery.rs), never on the executor.
//!
//! Integrity, end to end: the CRC64NVME computed while the upload was
//! received (storage/upload.rs, kept in the spool sidecar) travels with the
//! object and S3 checks the bytes it stored against it:
//! - PutObject carries `x-amz-checksum-crc64nvme`; S3 refuses a body that
//!   does not match (BadDigest) and returns the checksum it computed, which
//!   is compared too. Content-MD5 would protect the same bytes a second
//!   time at the cost of a read pass, so a single PUT does not carry it.
//! - A multipart upload is created as `CRC64NVME`/`FULL_OBJECT`; each part
//!   carries `Content-MD5` (S3 checks each part on arrival, so a bad part is
//!   resent alone), and CompleteMultipartUpload carries the whole file's
//!   CRC64NVME, which S3 checks against the object it assembled and returns.
//!
//! A mismatch is a failed delivery, retried like any other
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html>).
//!
//! Files up to `s3_part_size` go up in one PutObject; larger ones as a
//! multipart upload whose parts are sent one after another (concurrency comes
//! from several files in flight). A multipart upload that fails is aborted.
//!
//! Reading (`get.rs`): `get_object`, a GetObject conditional on an ETag.

use crate::config::s3::S3Settings;
use crate::delivery::credentials::Provider;
use crate::limits::{
    DELIVERY_BUFFER, MAX_RETRY_AFTER, MAX_S3_PARTS, MAX_S3_RESPONSE, S3_CALL_DEADLINE,
    S3_CONNECT_TIMEOUT, S3_MIN_SEND_RATE, S3_RESPONSE_TIMEOUT, S3_SIGNATURE_LIFETIME,
    SLOW_DOWN_PAUSE,
};
use base64::Engine as _;
use md5::{Digest, Md5};
use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, PutObject, S3Action,
    UploadPart,
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

pub(super) fn remote(message: String) -> Error {
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
    /// The file's CRC64NVME when it was computed on receipt; else it is
    /// computed here, from the file.
    pub crc64nvme: Option<u64>,
}

/// The total deadline of a PUT of `len` bytes: the body at
/// `S3_MIN_SEND_RATE` at least, then S3's answer.
fn put_deadline(len: u64) -> std::time::Duration {
    let sending = std::time::Duration::from_secs(len / S3_MIN_SEND_RATE);
    S3_CALL_DEADLINE + sending + S3_RESPONSE_TIMEOUT
}

/// The header form of a CRC64NVME: base64 of its 8 big-endian bytes.
pub fn crc64nvme_base64(crc: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

pub struct Client {
    pub(super) bucket: Bucket,
    pub(super) agent: ureq::Agent,
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
        // SECURITY: every request has a total deadline (connect, headers
        // and body): by default the longest a request without a large body
        // may take; reads and PUTs set their own (`get.rs`, `put_deadline`).
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(S3_CONNECT_TIMEOUT))
            .timeout_recv_response(Some(S3_RESPONSE_TIMEOUT))
            .timeout_global(Some(S3_CALL_DEADLINE + S3_RESPONSE_TIMEOUT))
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

    pub(super) fn credentials(&self) -> Result<Arc<Credentials>, Error> {
        self.credentials.get().map_err(|message| Error::Remote {
            message: format!("no credentials: {message}"),
            slow_down: None,
            credentials: false,
        })
    }

    /// Stores `object`; returns the bytes sent.
    pub fn put(&self, object: &Object<'_>) -> Result<u64, Error> {
        let file = File::open(object.file).map_err(Error::Local)?;
        let size = file.metadata().map_err(Error::Local)?.len();
        let mut buffer = vec![0u8; DELIVERY_BUFFER];
        let crc = match object.crc64nvme {
            Some(crc) => crc,
            None => crc64nvme_of(&file, size, &mut buffer)?,
        };
        let mut metadata: Vec<(String, String)> = object
            .metadata
            .iter()
            .map(|(name, value)| (format!("x-amz-meta-{name}"), encode_metadata(value)))
            .collect();
        metadata.push((
            "x-amz-meta-crc64nvme".into(),
            encode_metadata(&crc64nvme_base64(crc)),
        ));
        if size <= self.part_size {
            self.put_single(object.key, &file, size, crc, &metadata)?;
        } else {
            self.put_multipart(object.key, &file, size, crc, &metadata, &mut buffer)?;
        }
        Ok(size)
    }

    fn put_single(
        &self,
        key: &str,
        file: &File,
        size: u64,
        crc: u64,
        metadata: &[(String, String)],
    ) -> Result<(), Error> {
        let checksum = crc64nvme_base64(crc);
        let credentials = self.credentials()?;
        let mut action = PutObject::new(&self.bucket, Some(&credentials), key);
        action
            .headers_mut()
            .insert(CHECKSUM_HEADER, checksum.clone());
        for (name, value) in metadata {
            action.headers_mut().insert(name.clone(), value.clone());
        }
        let url = action.sign(S3_SIGNATURE_LIFETIME);
        let mut request = self
            .agent
            .put(url.as_str())
            .config()
            .timeout_global(Some(put_deadline(size)))
            .build()
            .header(CHECKSUM_HEADER, &checksum)
            .header("content-length", size.to_string());
        for (name, value) in metadata {
            request = request.header(name, value);
        }
        let mut body = Range::new(file, 0, size);
        let result = request.send(SendBody::from_reader(&mut body));
        let response = check(result, "PutObject")?;
        let returned = response
            .headers()
            .get(CHECKSUM_HEADER)
            .and_then(|v| v.to_str().ok());
        compare_checksum("PutObject", &checksum, returned)
    }

    fn put_multipart(
        &self,
        key: &str,
        file: &File,
        size: u64,
        crc: u64,
        metadata: &[(String, String)],
        buffer: &mut [u8],
    ) -> Result<(), Error> {
        let credentials = self.credentials()?;
        let mut action = CreateMultipartUpload::new(&self.bucket, Some(&credentials), key);
        let mut headers: Vec<(String, String)> = vec![
            ("x-amz-checksum-algorithm".into(), "CRC64NVME".into()),
            ("x-amz-checksum-type".into(), "FULL_OBJECT".into()),
        ];
        headers.extend(metadata.iter().cloned());
        for (name, value) in &headers {
            action.headers_mut().insert(name.clone(), value.clone());
        }
        let url = action.sign(S3_SIGNATURE_LIFETIME);
        let mut request = self.agent.post(url.as_str());
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let mut response = check(request.send_empty(), "CreateMultipartUpload")?;
        let text = read_body(&mut response);
        let created = CreateMultipartUpload::parse_response(&text)
            .map_err(|e| remote(format!("CreateMultipartUpload: unreadable response: {e}")))?;
        let upload_id = created.upload_id().to_string();

        let result = self.send_parts(key, &upload_id, file, size, crc, buffer);
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
        crc: u64,
        buffer: &mut [u8],
    ) -> Result<(), Error> {
        let part_size = part_size(size, self.part_size);
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
                .config()
                .timeout_global(Some(put_deadline(len)))
                .build()
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
        let checksum = crc64nvme_base64(crc);
        let mut action = CompleteMultipartUpload::new(
            &self.bucket,
            Some(&credentials),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        action
            .headers_mut()
            .insert(CHECKSUM_HEADER, checksum.clone());
        action
            .headers_mut()
            .insert("x-amz-checksum-type", "FULL_OBJECT");
        let url = action.sign(S3_SIGNATURE_LIFETIME);
        let body = action.body();
        let result = self
            .agent
            .post(url.as_str())
            .header(CHECKSUM_HEADER, &checksum)
            .header("x-amz-checksum-type", "FULL_OBJECT")
            .send(body.as_bytes());
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
        let returned = xml_field(&text, "ChecksumCRC64NVME");
        compare_checksum(
            "CompleteMultipartUpload",
            &checksum,
            (!returned.is_empty()).then_some(returned.as_str()),
        )
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

/// The checksum header of S3's default algorithm.
const CHECKSUM_HEADER: &str = "x-amz-checksum-crc64nvme";

/// What S3 says it stored must be what was received. S3 returns the checksum
/// when the request carried one; a server that returns none has still
/// checked the header against the body.
fn compare_checksum(what: &str, sent: &str, returned: Option<&str>) -> Result<(), Error> {
    match returned {
        Some(value) if value.trim() != sent => Err(remote(format!(
            "{what}: S3 stored CRC64NVME {value}, the upload's is {sent}"
        ))),
        _ => Ok(()),
    }
}

/// CRC64NVME of a spooled file whose sidecar carries none: one spooled by a
/// build before checksums (sidecar version 1) and replayed after an upgrade.
fn crc64nvme_of(file: &File, size: u64, buffer: &mut [u8]) -> Result<u64, Error> {
    let mut range = Range::new(file, 0, size);
    let mut crc = crc64fast_nvme::Digest::new();
    loop {
        match range.read(buffer) {
            Ok(0) => return Ok(crc.sum64()),
            Ok(n) => crc.write(&buffer[..n]),
            Err(e) => return Err(Error::Local(e)),
        }
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

pub(super) fn read_body(response: &mut Response<Body>) -> String {
    // An unreadable body reads as empty; the status already told the outcome.
    response
        .body_mut()
        .with_config()
        .limit(MAX_S3_RESPONSE)
        .read_to_string()
        .unwrap_or_default()
}

/// The text of the first `<name>` element of an S3 XML document (empty
/// when there is none).
pub(super) fn xml_field(text: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    text.split_once(&open)
        .and_then(|(_, rest)| rest.split_once(&close))
        .map_or(String::new(), |(value, _)| value.to_string())
}

/// `<Code>` and `<Message>` of an S3 error document.
fn error_fields(text: &str) -> (String, String) {
    (xml_field(text, "Code"), xml_field(text, "Message"))
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
pub(super) fn check(
    result: Result<Response<Body>, ureq::Error>,
    what: &str,
) -> Result<Response<Body>, Error> {
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

    fn crc64(bytes: &[u8]) -> u64 {
        let mut digest = crc64fast_nvme::Digest::new();
        digest.write(bytes);
        digest.sum64()
    }

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
    fn crc64nvme_check_value() {
        // CRC-64/NVME's check value (the CRC of "123456789"), and its header
        // form: base64 of the big-endian bytes.
        let crc = crc64(b"123456789");
        assert_eq!(crc, 0xae8b_1486_0a79_9888);
        assert_eq!(crc64nvme_base64(crc), "rosUhgp5mIg=");
    }

    #[test]
    fn returned_checksum_must_match() {
        assert!(compare_checksum("PutObject", "rosUhgp5mIg=", Some("rosUhgp5mIg=")).is_ok());
        assert!(compare_checksum("PutObject", "rosUhgp5mIg=", None).is_ok());
        assert!(compare_checksum("PutObject", "rosUhgp5mIg=", Some("AAAAAAAAAAA=")).is_err());
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
