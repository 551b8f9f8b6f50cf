//! AWS Signature Version 4 verification for the emulator's API requests.
//!
//! This module owns one decision: is an incoming HTTP request signed, with a secret key the emulator knows
//! for its access key id, for an enabled region and this service, recently enough? It reads and checks the
//! `Authorization` header itself, then has the `aws-sigv4` crate (the signer of the Rust SDK) sign the same
//! request again with that secret, and compares the two signatures in constant time. Which keys exist (the
//! static pair, the session credentials STS issued) is the caller's business ([`verify_scoped`] takes a
//! lookup); so is what a session key's `X-Amz-Security-Token` must be (see [`super::identity`]).
//!
//! What is verified, in order:
//! 1. An `Authorization` header exists (else `MissingAuthenticationTokenException`). Presigned URLs
//!    (`X-Amz-Signature` in the query) are not accepted: no IVS Chat client uses them.
//! 2. It has the form `AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/<region>/<service>/aws4_request,
//!    SignedHeaders=<a;b;c>, Signature=<64 hex>` (else `InvalidSignatureException`; AWS would say
//!    `IncompleteSignatureException`, which the emulator folds into the invalid-signature case).
//! 3. The access key id is a known one (else `UnrecognizedClientException`).
//! 4. `X-Amz-Date` is present and is `YYYYMMDDTHHMMSSZ`; the scope date is its day; the scope region is
//!    one of the enabled regions and the service the expected one; the request time is within 15 minutes of
//!    `now` either way (AWS's window).
//! 5. `host` is among the signed headers, the signed header names are lowercase, sorted and unique, and each
//!    one is present in the request (`host` may come from the URI authority, as with HTTP/2).
//! 6. The payload hash is SHA-256 of the body; when the client sends `x-amz-content-sha256`, that value is
//!    used instead, but a hex value must equal the real hash (so a signed header cannot vouch for a body it
//!    does not describe). `UNSIGNED-PAYLOAD` is accepted as AWS accepts it.
//! 7. The signature that `aws-sigv4` computes for the request matches.
//!
//! # The request handed to `aws-sigv4`
//! It is rebuilt from exactly what the client signed: the method, the request target as received, the
//! signed headers and no other, the payload hash of step 6, and the time of `X-Amz-Date`; the signer runs
//! with the settings of every service but S3 (the SDK's defaults): double percent-encoding of the path, dot
//! and empty segments removed, no `x-amz-content-sha256` added, and no header excluded other than
//! `x-amz-date` when the client did not sign it (the signer always adds that one). The signer then applies
//! the canonical rules the SDK and botocore sign with: the query decoded (`+` as a space, invalid UTF-8 as
//! U+FFFD) and re-encoded, sorted by encoded name and value; each signed header's values in arrival order,
//! joined with `,`.
//!
//! What stays this module's own, because the signer does not do it or cannot be given it:
//! - Everything before step 7 (parsing, scope, clock skew, payload hash) and the AWS-worded errors.
//! - Header values are trimmed and inner runs of spaces **or tabs** collapsed to one space before they go to
//!   the signer, which collapses spaces only: botocore (the AWS CLI) collapses both, so both must verify.
//! - The signer takes header values as text: a signed header whose value is not UTF-8 is refused with its
//!   own message (the earlier hand-written verifier compared such values as bytes; the SDK, whose signer
//!   this is, cannot sign one at all).
//! - The signer has one date: a request that repeats a signed `X-Amz-Date` header is verified as if only
//!   the first value had been signed.
//! - The signer does not expose its canonical request, so the mismatch error carries AWS's wording without
//!   the canonical request and string to sign that AWS appends.
//! - `X-Amz-Security-Token` is not judged here: signed or not, it passes this module exactly like the AWS
//!   test suite's `post-sts-header-before` / `post-sts-header-after` cases. Whether a key needs one and
//!   which value (session credentials) is [`super::identity`]'s check, made after the signature verified.
//! - The `Date` header is not accepted as an alternative to `X-Amz-Date`: both AWS clients send `X-Amz-Date`.
//!
//! The AWS SigV4 test-suite vectors that the verifier must accept are data files under
//! `emulator/tests/data/sigv4/` (see the README there).

use std::fmt;
use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_smithy_runtime_api::client::identity::Identity;
use axum::http::{HeaderMap, Method, Uri, header};
use jiff::{SignedDuration, Timestamp, civil::DateTime, tz::TimeZone};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

/// The only signing algorithm the emulator accepts.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far the request time may be from the server's clock, either way (AWS uses 15 minutes).
pub const MAX_CLOCK_SKEW: SignedDuration = SignedDuration::from_mins(15);

/// The last element of every SigV4 credential scope.
const SCOPE_TERMINATOR: &str = "aws4_request";

/// `x-amz-content-sha256` value that exempts the body from the signature.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The header the signer always signs, from the time it is given.
const X_AMZ_DATE: &str = "x-amz-date";

/// The `X-Amz-Date` layout, e.g. `20150830T123600Z`.
const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// The one key pair the emulator accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// The secret never appears in logs or panic messages.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

/// Why a request was refused; every variant is answered with HTTP 403.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization` header at all.
    MissingAuthentication,
    /// The access key id is not the configured one.
    UnrecognizedClient,
    /// Anything else: malformed header, wrong scope, expired, or a signature that does not match.
    /// The string is the full message returned to the client.
    InvalidSignature(String),
}

impl AuthError {
    /// The AWS error type name, for the `X-Amzn-Errortype` header.
    pub fn error_type(&self) -> &'static str {
        match self {
            AuthError::MissingAuthentication => "MissingAuthenticationTokenException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
            AuthError::InvalidSignature(_) => "InvalidSignatureException",
        }
    }

    /// The message for the response body, worded like AWS's.
    pub fn message(&self) -> String {
        match self {
            AuthError::MissingAuthentication => "Missing Authentication Token".to_owned(),
            AuthError::UnrecognizedClient => {
                "The security token included in the request is invalid.".to_owned()
            }
            AuthError::InvalidSignature(message) => message.clone(),
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type(), self.message())
    }
}

impl std::error::Error for AuthError {}

fn invalid(message: impl Into<String>) -> AuthError {
    AuthError::InvalidSignature(message.into())
}

/// Verifies the SigV4 signature of one request against one key pair and one region; see the module docs
/// for every check made.
#[allow(clippy::too_many_arguments)] // the agreed interface: the request parts plus what they are checked against
pub fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    service: &str,
    now: Timestamp,
) -> Result<(), AuthError> {
    let secret_for = |access_key_id: &str| {
        (access_key_id == credentials.access_key_id).then(|| credentials.secret_access_key.clone())
    };
    let request = SignedParts {
        method,
        uri,
        headers,
        body,
    };
    verify_scoped(&request, &secret_for, &[region], service, now).map(drop)
}

/// The parts of an HTTP request that SigV4 covers.
#[derive(Clone, Copy)]
pub struct SignedParts<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// What a verified signature vouches for: the key that signed and the scope it signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedScope {
    pub access_key_id: String,
    pub region: String,
}

/// The service of a request's credential scope (`ivschat`, `sts`), read without verifying anything: how the
/// front end tells which protocol a signed request speaks. `None` without a parsable `Authorization` header.
pub fn scope_service(headers: &HeaderMap) -> Option<String> {
    let authorization = headers.get(header::AUTHORIZATION)?;
    AuthorizationHeader::parse(authorization.as_bytes())
        .ok()
        .map(|authorization| authorization.scope_service)
}

/// Verifies the SigV4 signature of one request: the secret comes from `secret_for(access key id)` (`None`:
/// an unknown key), the scope's region must be one of `regions` and its service `service`. Returns the key
/// and the region it was signed for.
pub fn verify_scoped(
    request: &SignedParts<'_>,
    secret_for: &dyn Fn(&str) -> Option<String>,
    regions: &[&str],
    service: &str,
    now: Timestamp,
) -> Result<VerifiedScope, AuthError> {
    let SignedParts {
        method,
        uri,
        headers,
        body,
    } = *request;
    let authorization = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::MissingAuthentication)?;
    let authorization = AuthorizationHeader::parse(authorization.as_bytes())?;
    let secret_access_key =
        secret_for(&authorization.access_key_id).ok_or(AuthError::UnrecognizedClient)?;
    let credentials = Credentials {
        access_key_id: authorization.access_key_id.clone(),
        secret_access_key,
    };

    let amz_date = header_str(headers, X_AMZ_DATE)?.ok_or_else(|| {
        invalid(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    })?;
    let request_time = parse_amz_date(amz_date)?;
    check_scope(&authorization, amz_date, regions, service)?;
    check_clock_skew(amz_date, request_time, now)?;
    check_signed_header_names(&authorization.signed_headers)?;

    let payload_hash = payload_hash(headers, body)?;
    let signed_headers = signed_header_values(&authorization.signed_headers, uri, headers)?;
    let expected = expected_signature(
        &SignedRequest {
            method,
            uri,
            headers: &signed_headers,
            payload_hash,
            time: request_time,
        },
        &credentials,
        &authorization,
    )?;

    // The provided signature is compared as bytes in constant time, so response timing reveals nothing
    // about how much of a forged signature was right.
    let provided = hex::decode(&authorization.signature).map_err(|_| {
        invalid("The signature in the Authorization header must be 64 hexadecimal characters.")
    })?;
    if bool::from(provided.ct_eq(&expected)) {
        Ok(VerifiedScope {
            access_key_id: authorization.access_key_id,
            region: authorization.scope_region,
        })
    } else {
        Err(invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS \
             Secret Access Key and signing method. Consult the service documentation for details.",
        ))
    }
}

/// The parsed `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
struct AuthorizationHeader {
    access_key_id: String,
    scope_date: String,
    scope_region: String,
    scope_service: String,
    scope_terminator: String,
    signed_headers: Vec<String>,
    signature: String,
}

impl AuthorizationHeader {
    fn parse(raw: &[u8]) -> Result<Self, AuthError> {
        let raw = std::str::from_utf8(raw)
            .map_err(|_| invalid("The Authorization header is not valid UTF-8."))?
            .trim();
        let (algorithm, rest) = raw.split_once(' ').unwrap_or((raw, ""));
        if algorithm != ALGORITHM {
            return Err(invalid(format!(
                "Unsupported signing algorithm '{algorithm}' in the Authorization header; only {ALGORITHM} is accepted."
            )));
        }

        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for component in rest.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let (name, value) = component.split_once('=').ok_or_else(|| {
                invalid(format!(
                    "Authorization header component '{component}' is not of the form name=value."
                ))
            })?;
            let slot = match name {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed_headers,
                "Signature" => &mut signature,
                other => {
                    return Err(invalid(format!(
                        "Unknown component '{other}' in the Authorization header."
                    )));
                }
            };
            if slot.replace(value).is_some() {
                return Err(invalid(format!(
                    "Component '{name}' appears more than once in the Authorization header."
                )));
            }
        }

        let missing: Vec<&str> = [
            ("Credential", credential.is_none()),
            ("SignedHeaders", signed_headers.is_none()),
            ("Signature", signature.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, absent)| absent.then_some(name))
        .collect();
        let (Some(credential), Some(signed_headers), Some(signature)) =
            (credential, signed_headers, signature)
        else {
            return Err(invalid(format!(
                "Authorization header requires {} parameter(s): {}.",
                missing.len(),
                missing.join(", ")
            )));
        };

        // The key id is everything before the last four `/`-separated scope elements.
        let mut parts = credential.rsplitn(5, '/');
        let (Some(terminator), Some(service), Some(region), Some(date), Some(access_key_id)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid(format!(
                "Credential '{credential}' must have the form <access key>/<yyyymmdd>/<region>/<service>/aws4_request."
            )));
        };
        if access_key_id.is_empty() {
            return Err(invalid(
                "The Credential in the Authorization header has an empty access key id.",
            ));
        }

        Ok(AuthorizationHeader {
            access_key_id: access_key_id.to_owned(),
            scope_date: date.to_owned(),
            scope_region: region.to_owned(),
            scope_service: service.to_owned(),
            scope_terminator: terminator.to_owned(),
            signed_headers: signed_headers.split(';').map(str::to_owned).collect(),
            signature: signature.to_owned(),
        })
    }
}

/// A header as text; a value that is not visible ASCII is an error rather than "absent".
fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, AuthError> {
    headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| invalid(format!("The {name} header must be printable ASCII.")))
        })
        .transpose()
}

fn parse_amz_date(amz_date: &str) -> Result<Timestamp, AuthError> {
    let bad_format = || {
        invalid(format!(
            "X-Amz-Date '{amz_date}' must have the ISO-8601 basic format YYYYMMDD'T'HHMMSS'Z'."
        ))
    };
    // strptime alone would accept variable-width fields; the SigV4 format is fixed-width.
    let well_formed = amz_date.len() == 16
        && amz_date
            .bytes()
            .enumerate()
            .all(|(index, byte)| match index {
                8 => byte == b'T',
                15 => byte == b'Z',
                _ => byte.is_ascii_digit(),
            });
    if !well_formed {
        return Err(bad_format());
    }
    let civil = DateTime::strptime(AMZ_DATE_FORMAT, amz_date).map_err(|_| bad_format())?;
    TimeZone::UTC.to_timestamp(civil).map_err(|_| bad_format())
}

fn format_amz_date(time: Timestamp) -> String {
    time.strftime(AMZ_DATE_FORMAT).to_string()
}

fn check_scope(
    authorization: &AuthorizationHeader,
    amz_date: &str,
    regions: &[&str],
    service: &str,
) -> Result<(), AuthError> {
    let request_day = amz_date.get(..8).unwrap_or(amz_date);
    if authorization.scope_date != request_day {
        return Err(invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            authorization.scope_date, request_day, amz_date
        )));
    }
    if !regions.contains(&authorization.scope_region.as_str()) {
        return Err(invalid(format!(
            "Credential should be scoped to a valid region, not '{}'. This endpoint serves '{}'.",
            authorization.scope_region,
            regions.join("', '")
        )));
    }
    if authorization.scope_service != service {
        return Err(invalid(format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    if authorization.scope_terminator != SCOPE_TERMINATOR {
        return Err(invalid(format!(
            "Credential should be scoped with a valid terminator: '{SCOPE_TERMINATOR}', not '{}'.",
            authorization.scope_terminator
        )));
    }
    Ok(())
}

fn check_clock_skew(
    amz_date: &str,
    request_time: Timestamp,
    now: Timestamp,
) -> Result<(), AuthError> {
    let age = now.duration_since(request_time);
    if age > MAX_CLOCK_SKEW {
        let oldest = now.saturating_sub(MAX_CLOCK_SKEW).unwrap_or(now);
        return Err(invalid(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            format_amz_date(oldest),
            format_amz_date(now)
        )));
    }
    if age < -MAX_CLOCK_SKEW {
        let newest = now.saturating_add(MAX_CLOCK_SKEW).unwrap_or(now);
        return Err(invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            format_amz_date(newest),
            format_amz_date(now)
        )));
    }
    Ok(())
}

fn check_signed_header_names(signed_headers: &[String]) -> Result<(), AuthError> {
    for name in signed_headers {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_graphic() && !byte.is_ascii_uppercase() && byte != b':');
        if !valid {
            return Err(invalid(format!(
                "SignedHeaders entry '{name}' is not a lowercase header name."
            )));
        }
    }
    if signed_headers.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(invalid(format!(
            "SignedHeaders '{}' must be sorted and must not repeat a header.",
            signed_headers.join(";")
        )));
    }
    if !signed_headers.iter().any(|name| name == "host") {
        return Err(invalid(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    Ok(())
}

fn payload_hash(headers: &HeaderMap, body: &[u8]) -> Result<String, AuthError> {
    let computed = hex::encode(Sha256::digest(body));
    match header_str(headers, "x-amz-content-sha256")? {
        None => Ok(computed),
        Some(UNSIGNED_PAYLOAD) => Ok(UNSIGNED_PAYLOAD.to_owned()),
        Some(declared) if declared == computed => Ok(computed),
        Some(declared) => Err(invalid(format!(
            "The provided 'x-amz-content-sha256' header '{declared}' does not match what was computed: '{computed}'."
        ))),
    }
}

/// One signed header value as the signer gets it: `(name, value)`, a repeated header once per value.
type SignedHeader = (String, String);

/// The values of the signed headers, in arrival order, each trimmed with its inner runs of spaces and tabs
/// collapsed. `x-amz-date` is left out: the signer signs it from the request time.
fn signed_header_values(
    signed_headers: &[String],
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Vec<SignedHeader>, AuthError> {
    let mut values = Vec::with_capacity(signed_headers.len());
    for name in signed_headers.iter().filter(|name| *name != X_AMZ_DATE) {
        let before = values.len();
        for value in headers.get_all(name.as_str()) {
            let text = String::from_utf8(collapse_spaces(value.as_bytes())).map_err(|_| {
                invalid(format!(
                    "The signed header '{name}' has a value that is not UTF-8 text."
                ))
            })?;
            values.push((name.clone(), text));
        }
        if values.len() > before {
            continue;
        }
        // HTTP/2 carries the host in the :authority pseudo-header, which ends up in the URI.
        match uri.authority() {
            Some(authority) if name == "host" => {
                values.push((name.clone(), authority.as_str().to_owned()));
            }
            _ => {
                return Err(invalid(format!(
                    "The header '{name}' is listed in SignedHeaders but is not present in the request."
                )));
            }
        }
    }
    Ok(values)
}

/// Trims leading and trailing whitespace and turns each inner run of spaces or tabs into one space.
fn collapse_spaces(value: &[u8]) -> Vec<u8> {
    let mut collapsed = Vec::with_capacity(value.len());
    for word in value
        .split(|byte| *byte == b' ' || *byte == b'\t')
        .filter(|word| !word.is_empty())
    {
        if !collapsed.is_empty() {
            collapsed.push(b' ');
        }
        collapsed.extend_from_slice(word);
    }
    collapsed
}

/// What the client signed, rebuilt for the signer.
struct SignedRequest<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a [SignedHeader],
    payload_hash: String,
    time: Timestamp,
}

/// The signature `aws-sigv4` computes for the request with the emulator's secret, as bytes.
fn expected_signature(
    request: &SignedRequest<'_>,
    credentials: &Credentials,
    authorization: &AuthorizationHeader,
) -> Result<Vec<u8>, AuthError> {
    let signer_failed =
        |error: &dyn fmt::Display| invalid(format!("The request cannot be signed again: {error}."));
    let identity: Identity = aws_credential_types::Credentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        None,
        None,
        "ivschat-emulator",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Double;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Enabled;
    settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    settings.signature_location = SignatureLocation::Headers;
    // Only what the client left unsigned is excluded; the default list (user-agent, ...) would drop
    // headers a client may well have signed.
    let date_signed = authorization
        .signed_headers
        .iter()
        .any(|name| name == X_AMZ_DATE);
    settings.excluded_headers = Some(if date_signed {
        Vec::new()
    } else {
        vec![X_AMZ_DATE.into()]
    });
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&authorization.scope_region)
        .name(&authorization.scope_service)
        .time(SystemTime::from(request.time))
        .settings(settings)
        .build()
        .map_err(|error| signer_failed(&error))?
        .into();
    let target = request
        .uri
        .path_and_query()
        .map_or_else(|| request.uri.path(), |target| target.as_str());
    let signable = SignableRequest::new(
        request.method.as_str(),
        target,
        request
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
        SignableBody::Precomputed(request.payload_hash.clone()),
    )
    .map_err(|error| signer_failed(&error))?;
    let (_, signature) = sign(signable, &params)
        .map_err(|error| signer_failed(&error))?
        .into_parts();
    hex::decode(signature).map_err(|error| signer_failed(&error))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    use axum::http::{HeaderName, HeaderValue, Request};
    use percent_encoding::NON_ALPHANUMERIC;
    use proptest::prelude::*;

    use super::*;

    /// The key pairs the AWS SigV4 test-suite vectors are signed with, by access key id.
    const SUITE_KEYS: [(&str, &str); 2] = [
        ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        // `double-encode-path`: the key of the aws-sigv4 crate's own tests.
        ("ANOTREAL", "notrealrnrELgWzOk3IfjzDKtFBhDby"),
    ];

    /// How many vectors tests/data/sigv4/ holds, so that a lost file fails the tests.
    const SUITE_VECTOR_COUNT: usize = 26;

    struct TestRequest {
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    impl TestRequest {
        fn verify_with(
            &self,
            credentials: &Credentials,
            region: &str,
            service: &str,
            now: Timestamp,
        ) -> Result<(), AuthError> {
            verify(
                &self.method,
                &self.uri,
                &self.headers,
                &self.body,
                credentials,
                region,
                service,
                now,
            )
        }

        /// Verifies a suite vector with the suite's key, at the time and for the region and service it was
        /// signed for (its own credential scope).
        fn verify_suite(&self) -> Result<(), AuthError> {
            let authorization =
                AuthorizationHeader::parse(self.headers[header::AUTHORIZATION].as_bytes())
                    .expect("a suite Authorization header");
            let (access_key_id, secret_access_key) = SUITE_KEYS
                .into_iter()
                .find(|(key, _)| *key == authorization.access_key_id)
                .expect("a suite key pair");
            let signed_at =
                parse_amz_date(self.headers["x-amz-date"].to_str().expect("ascii")).expect("date");
            self.verify_with(
                &Credentials {
                    access_key_id: access_key_id.to_owned(),
                    secret_access_key: secret_access_key.to_owned(),
                },
                &authorization.scope_region,
                &authorization.scope_service,
                signed_at,
            )
        }
    }

    /// Parses the test suite's signed-request files: request line, `Name:value` headers (values kept
    /// verbatim, repeated names appended), blank line, body.
    fn parse_suite_request(text: &str) -> TestRequest {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let request_line = lines.next().expect("request line");
        let (method, rest) = request_line.split_once(' ').expect("method");
        // The suite's `double-url-encode` file leaves the HTTP version out.
        let target = rest.strip_suffix(" HTTP/1.1").unwrap_or(rest);
        let uri = Uri::builder()
            .path_and_query(target)
            .build()
            .expect("request target");
        let mut headers = HeaderMap::new();
        for line in lines {
            let (name, value) = line.split_once(':').expect("header line");
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        TestRequest {
            method: Method::from_bytes(method.as_bytes()).expect("method"),
            uri,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    /// The vectors of tests/data/sigv4/ (see the README there), by name.
    fn suite_vectors() -> Vec<(String, String)> {
        let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sigv4");
        let mut vectors: Vec<(String, String)> = std::fs::read_dir(&directory)
            .expect("the vector directory")
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "txt"))
            .map(|path| {
                let name = path
                    .file_stem()
                    .and_then(|stem| stem.to_str())
                    .expect("a file name")
                    .to_owned();
                let text = std::fs::read_to_string(&path).expect("a vector file");
                (name, text)
            })
            .collect();
        vectors.sort();
        assert_eq!(
            vectors.len(),
            SUITE_VECTOR_COUNT,
            "vectors in {}",
            directory.display()
        );
        vectors
    }

    #[test]
    fn accepts_every_aws_test_suite_vector() {
        for (name, text) in suite_vectors() {
            let request = parse_suite_request(&text);
            assert_eq!(request.verify_suite(), Ok(()), "vector {name}");
        }
    }

    #[test]
    fn rejects_every_aws_test_suite_vector_with_one_signature_digit_changed() {
        for (name, text) in suite_vectors() {
            let mut request = parse_suite_request(&text);
            let authorization = request.headers[header::AUTHORIZATION]
                .to_str()
                .expect("ascii")
                .to_owned();
            // Flip the last hex digit of the signature.
            let (head, last) = authorization.split_at(authorization.len() - 1);
            let flipped = if last == "0" { "1" } else { "0" };
            request.headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("{head}{flipped}")).expect("header"),
            );
            match request.verify_suite() {
                Err(AuthError::InvalidSignature(message)) => assert!(
                    message.starts_with("The request signature we calculated does not match"),
                    "vector {name}: {message}"
                ),
                other => panic!("vector {name}: expected a signature mismatch, got {other:?}"),
            }
        }
    }

    /// The suite's `double-url-encode` case (a Lambda ARN in the path, like IVS Chat's tag operations) is
    /// signed over the path encoded once more (`%3A` as `%253A`): the same signature does not verify for the
    /// path with its colons sent unencoded, whose single encoding is what the suite's request already has.
    #[test]
    fn double_encodes_an_arn_path_like_the_aws_suite() {
        let (_, text) = suite_vectors()
            .into_iter()
            .find(|(name, _)| name == "double-url-encode")
            .expect("the double-url-encode vector");
        let request = parse_suite_request(&text);
        assert_eq!(request.verify_suite(), Ok(()));
        let path = request.uri.path().replace("%3A", ":");
        let single = TestRequest {
            uri: path.parse().expect("uri"),
            ..request
        };
        assert_mismatch(single.verify_suite(), "the path encoded once");
    }

    /// Targets that the canonical form does not tell apart verify with each other's signature: dot and empty
    /// segments, query order, `+` and `%20`, needless escapes, invalid UTF-8 and malformed escapes.
    #[test]
    fn equivalent_targets_verify_with_each_others_signature() {
        let cases = [
            // (what the client signed, what arrives)
            ("/", "http://127.0.0.1:4510"),
            ("/a/", "/a/b/.."),
            ("/a/b/", "/a/./b/"),
            ("/a", "/../../a"),
            ("/a/b/", "//a//b//"),
            ("/?a=1&a=2&b=2&c=", "/?b=2&a=2&a=1&&c"),
            ("/?k=a%20b%2Bc~", "/?k=a+b%2Bc%7e"),
            ("/?k=%EF%BF%BD%EF%BF%BD", "/?k=%ff%FF"),
            ("/?k=%25zz%254", "/?k=%zz%4"),
        ];
        for (signed_target, sent_target) in cases {
            let signed = Signer::default().sign("GET", signed_target, &[], b"");
            let sent = TestRequest {
                uri: sent_target.parse().expect("uri"),
                ..signed
            };
            assert_eq!(
                sent.verify_emulator(),
                Ok(()),
                "{sent_target} signed as {signed_target}"
            );
        }
        // A target that differs after canonicalisation does not.
        let signed = Signer::default().sign("GET", "/a/", &[], b"");
        let sent = TestRequest {
            uri: "/a/b".parse().expect("uri"),
            ..signed
        };
        assert_mismatch(sent.verify_emulator(), "another path");
    }

    // ---- Round trips through the aws-sigv4 signer, the one the Rust SDK uses ----

    const EMULATOR_REGION: &str = "us-west-2";
    const EMULATOR_SERVICE: &str = "ivschat";
    const EMULATOR_HOST: &str = "127.0.0.1:4510";
    const ROOM_ARN_PATH: &str =
        "/tags/arn%3Aaws%3Aivschat%3Aus-west-2%3A123456789012%3Aroom%2FabcdEFGH1234";
    const SIGNING_EPOCH_SECONDS: u64 = 1_700_000_000;

    fn emulator_credentials() -> Credentials {
        Credentials {
            access_key_id: "test".to_owned(),
            secret_access_key: "test".to_owned(),
        }
    }

    fn signing_time() -> Timestamp {
        Timestamp::from_second(SIGNING_EPOCH_SECONDS as i64).expect("timestamp")
    }

    struct Signer<'a> {
        access_key_id: &'a str,
        secret_access_key: &'a str,
        session_token: Option<&'a str>,
        region: &'a str,
        service: &'a str,
    }

    impl Default for Signer<'_> {
        fn default() -> Self {
            Signer {
                access_key_id: "test",
                secret_access_key: "test",
                session_token: None,
                region: EMULATOR_REGION,
                service: EMULATOR_SERVICE,
            }
        }
    }

    impl Signer<'_> {
        /// Signs like the SDK: Host from the endpoint, then the aws-sigv4 crate's default settings.
        fn sign(
            &self,
            method: &str,
            path_and_query: &str,
            headers: &[(&str, &str)],
            body: &[u8],
        ) -> TestRequest {
            let url = format!("http://{EMULATOR_HOST}{path_and_query}");
            let mut all_headers: Vec<(&str, &str)> = vec![("host", EMULATOR_HOST)];
            all_headers.extend_from_slice(headers);
            let identity: Identity = aws_credential_types::Credentials::new(
                self.access_key_id,
                self.secret_access_key,
                self.session_token.map(str::to_owned),
                None,
                "unit-test",
            )
            .into();
            let params = aws_sigv4::sign::v4::SigningParams::builder()
                .identity(&identity)
                .region(self.region)
                .name(self.service)
                .time(SystemTime::UNIX_EPOCH + Duration::from_secs(SIGNING_EPOCH_SECONDS))
                .settings(SigningSettings::default())
                .build()
                .expect("signing params")
                .into();
            let signable = SignableRequest::new(
                method,
                url.as_str(),
                all_headers.iter().copied(),
                SignableBody::Bytes(body),
            )
            .expect("signable request");
            let (instructions, _signature) = sign(signable, &params).expect("signing").into_parts();
            let mut builder = Request::builder().method(method).uri(path_and_query);
            for (name, value) in &all_headers {
                builder = builder.header(*name, *value);
            }
            let mut request = builder.body(body.to_vec()).expect("request");
            instructions.apply_to_request_http1x(&mut request);
            let (parts, body) = request.into_parts();
            TestRequest {
                method: parts.method,
                uri: parts.uri,
                headers: parts.headers,
                body,
            }
        }
    }

    impl TestRequest {
        fn verify_emulator(&self) -> Result<(), AuthError> {
            self.verify_with(
                &emulator_credentials(),
                EMULATOR_REGION,
                EMULATOR_SERVICE,
                signing_time(),
            )
        }
    }

    fn assert_mismatch(result: Result<(), AuthError>, what: &str) {
        match result {
            Err(AuthError::InvalidSignature(message)) => assert!(
                message.starts_with("The request signature we calculated does not match"),
                "{what}: {message}"
            ),
            other => panic!("{what}: expected a signature mismatch, got {other:?}"),
        }
    }

    fn assert_invalid_containing(result: Result<(), AuthError>, needle: &str) {
        match result {
            Err(AuthError::InvalidSignature(message)) => {
                assert!(
                    message.contains(needle),
                    "expected {needle:?} in {message:?}"
                )
            }
            other => panic!("expected InvalidSignature containing {needle:?}, got {other:?}"),
        }
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    #[test]
    fn sdk_signed_requests_verify() {
        let signer = Signer::default();
        let create = signer.sign(
            "POST",
            "/CreateRoom",
            &[JSON],
            br#"{"name":"room-1","tags":{"a":"b"}}"#,
        );
        assert_eq!(create.verify_emulator(), Ok(()));
        let list_tags = signer.sign("GET", ROOM_ARN_PATH, &[], b"");
        assert_eq!(list_tags.verify_emulator(), Ok(()));
        let untag = signer.sign(
            "DELETE",
            &format!("{ROOM_ARN_PATH}?tagKeys=a&tagKeys=b"),
            &[],
            b"",
        );
        assert_eq!(untag.verify_emulator(), Ok(()));
        let untag_odd_keys = signer.sign(
            "DELETE",
            &format!(
                "{ROOM_ARN_PATH}?tagKeys=with%20space&tagKeys=%C3%A9t%C3%A9&tagKeys=a%2Bb%3Dc"
            ),
            &[],
            b"",
        );
        assert_eq!(untag_odd_keys.verify_emulator(), Ok(()));
        let tag = signer.sign("POST", ROOM_ARN_PATH, &[JSON], br#"{"tags":{"k":"v"}}"#);
        assert_eq!(tag.verify_emulator(), Ok(()));
    }

    #[test]
    fn sdk_signed_request_with_session_token_verifies() {
        let signer = Signer {
            session_token: Some("session-token-value"),
            ..Signer::default()
        };
        let request = signer.sign("POST", "/GetRoom", &[JSON], br#"{"identifier":"x"}"#);
        assert!(request.headers.contains_key("x-amz-security-token"));
        assert_eq!(request.verify_emulator(), Ok(()));
    }

    #[test]
    fn any_changed_body_byte_breaks_the_signature() {
        let body = br#"{"identifier":"arn:aws:ivschat:us-west-2:123456789012:room/abcdEFGH1234"}"#;
        let signed = Signer::default().sign("POST", "/GetRoom", &[JSON], body);
        for index in 0..body.len() {
            let mut tampered = body.to_vec();
            tampered[index] ^= 0x01;
            let request = TestRequest {
                body: tampered,
                method: signed.method.clone(),
                uri: signed.uri.clone(),
                headers: signed.headers.clone(),
            };
            assert_mismatch(request.verify_emulator(), &format!("body byte {index}"));
        }
    }

    #[test]
    fn changed_path_query_method_or_signed_header_breaks_the_signature() {
        let path_and_query = format!("{ROOM_ARN_PATH}?tagKeys=a&tagKeys=b");
        let signed = Signer::default().sign("DELETE", &path_and_query, &[], b"");
        let with_uri = |uri: &str| TestRequest {
            method: signed.method.clone(),
            uri: uri.parse().expect("uri"),
            headers: signed.headers.clone(),
            body: Vec::new(),
        };
        // Every single-character change of the ARN in the path (as hex-digit or letter swaps).
        for index in "/tags/".len()..ROOM_ARN_PATH.len() {
            let mut bytes = path_and_query.clone().into_bytes();
            bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
            let uri = String::from_utf8(bytes).expect("ascii");
            assert_mismatch(
                with_uri(&uri).verify_emulator(),
                &format!("path byte {index}"),
            );
        }
        assert_mismatch(
            with_uri(&format!("{ROOM_ARN_PATH}?tagKeys=a&tagKeys=c")).verify_emulator(),
            "query value",
        );
        assert_mismatch(
            with_uri(&format!("{ROOM_ARN_PATH}?tagKeys=a")).verify_emulator(),
            "dropped query key",
        );
        // Reordering the query does not matter: the canonical query is sorted.
        assert_eq!(
            with_uri(&format!("{ROOM_ARN_PATH}?tagKeys=b&tagKeys=a")).verify_emulator(),
            Ok(())
        );

        let mut other_method = with_uri(&path_and_query);
        other_method.method = Method::GET;
        assert_mismatch(other_method.verify_emulator(), "method");

        let mut other_host = with_uri(&path_and_query);
        other_host
            .headers
            .insert("host", HeaderValue::from_static("127.0.0.1:4511"));
        assert_mismatch(other_host.verify_emulator(), "host header");
    }

    #[test]
    fn wrong_access_key_id_is_an_unrecognized_client() {
        let request = Signer {
            access_key_id: "AKIDOTHER",
            ..Signer::default()
        }
        .sign("POST", "/ListRooms", &[JSON], b"{}");
        let error = request.verify_emulator().expect_err("unknown key");
        assert_eq!(error, AuthError::UnrecognizedClient);
        assert_eq!(error.error_type(), "UnrecognizedClientException");
        assert_eq!(
            error.message(),
            "The security token included in the request is invalid."
        );
    }

    #[test]
    fn wrong_secret_is_an_invalid_signature() {
        let request = Signer {
            secret_access_key: "not-the-secret",
            ..Signer::default()
        }
        .sign("POST", "/ListRooms", &[JSON], b"{}");
        let error = request.verify_emulator().expect_err("wrong secret");
        assert_eq!(error.error_type(), "InvalidSignatureException");
        assert_mismatch(Err(error), "wrong secret");
    }

    #[test]
    fn missing_authorization_header_is_missing_authentication() {
        let mut request = Signer::default().sign("POST", "/ListRooms", &[JSON], b"{}");
        request.headers.remove(header::AUTHORIZATION);
        let error = request.verify_emulator().expect_err("unsigned");
        assert_eq!(error, AuthError::MissingAuthentication);
        assert_eq!(error.error_type(), "MissingAuthenticationTokenException");
        assert_eq!(error.message(), "Missing Authentication Token");
    }

    #[test]
    fn wrong_region_and_service_are_rejected_by_scope() {
        let other_region = Signer {
            region: "us-east-1",
            ..Signer::default()
        }
        .sign("POST", "/ListRooms", &[JSON], b"{}");
        assert_invalid_containing(
            other_region.verify_emulator(),
            "scoped to a valid region, not 'us-east-1'",
        );
        let other_service = Signer {
            service: "ivs",
            ..Signer::default()
        }
        .sign("POST", "/ListRooms", &[JSON], b"{}");
        assert_invalid_containing(
            other_service.verify_emulator(),
            "scoped to correct service: 'ivschat'",
        );
    }

    #[test]
    fn scoped_verification_looks_keys_up_and_accepts_any_listed_region() {
        let secret_for = |key: &str| match key {
            "test" => Some("test".to_owned()),
            "ASIAEXAMPLEEXAMPLE12" => Some("session-secret".to_owned()),
            _ => None,
        };
        let verify = |request: &TestRequest, regions: &[&str]| {
            verify_scoped(
                &SignedParts {
                    method: &request.method,
                    uri: &request.uri,
                    headers: &request.headers,
                    body: &request.body,
                },
                &secret_for,
                regions,
                EMULATOR_SERVICE,
                signing_time(),
            )
        };
        let session = Signer {
            access_key_id: "ASIAEXAMPLEEXAMPLE12",
            secret_access_key: "session-secret",
            session_token: Some("token"),
            region: "eu-west-1",
            ..Signer::default()
        }
        .sign("POST", "/ListRooms", &[JSON], b"{}");
        assert_eq!(
            verify(&session, &["us-west-2", "eu-west-1"]),
            Ok(VerifiedScope {
                access_key_id: "ASIAEXAMPLEEXAMPLE12".to_owned(),
                region: "eu-west-1".to_owned(),
            })
        );
        match verify(&session, &["us-west-2", "ap-south-1"]) {
            Err(AuthError::InvalidSignature(message)) => assert!(
                message
                    .contains("not 'eu-west-1'. This endpoint serves 'us-west-2', 'ap-south-1'."),
                "{message}"
            ),
            other => panic!("expected a scope error, got {other:?}"),
        }
        let unknown = Signer {
            access_key_id: "ASIAUNKNOWNUNKNOWN12",
            ..Signer::default()
        }
        .sign("POST", "/ListRooms", &[JSON], b"{}");
        assert_eq!(
            verify(&unknown, &[EMULATOR_REGION]),
            Err(AuthError::UnrecognizedClient)
        );
        let wrong_secret = Signer {
            access_key_id: "ASIAEXAMPLEEXAMPLE12",
            secret_access_key: "test",
            ..Signer::default()
        }
        .sign("POST", "/ListRooms", &[JSON], b"{}");
        assert_mismatch(
            verify(&wrong_secret, &[EMULATOR_REGION]).map(drop),
            "a session key signed with another secret",
        );
        assert_eq!(
            scope_service(&session.headers).as_deref(),
            Some(EMULATOR_SERVICE)
        );
        assert_eq!(scope_service(&HeaderMap::new()), None);
    }

    #[test]
    fn clock_skew_window_is_fifteen_minutes_each_way() {
        let request = Signer::default().sign("POST", "/ListRooms", &[JSON], b"{}");
        let check = |offset_seconds: i64| {
            let now = signing_time() + SignedDuration::from_secs(offset_seconds);
            request.verify_with(
                &emulator_credentials(),
                EMULATOR_REGION,
                EMULATOR_SERVICE,
                now,
            )
        };
        assert_eq!(check(15 * 60), Ok(()));
        assert_eq!(check(-15 * 60), Ok(()));
        assert_invalid_containing(check(15 * 60 + 1), "Signature expired");
        assert_invalid_containing(check(-15 * 60 - 1), "Signature not yet current");
    }

    #[test]
    fn content_sha256_header_must_describe_the_body() {
        let declared = hex::encode(Sha256::digest(b"{}"));
        let signed = Signer::default().sign(
            "POST",
            "/ListRooms",
            &[JSON, ("x-amz-content-sha256", declared.as_str())],
            b"{}",
        );
        assert_eq!(signed.verify_emulator(), Ok(()));
        let other_body = TestRequest {
            body: b"{ }".to_vec(),
            method: signed.method.clone(),
            uri: signed.uri.clone(),
            headers: signed.headers.clone(),
        };
        assert_invalid_containing(other_body.verify_emulator(), "x-amz-content-sha256");
    }

    /// Builds a request whose Authorization header is given verbatim, dated at the signing time.
    fn with_authorization(authorization: &str, extra: &[(&str, &str)]) -> TestRequest {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static(EMULATOR_HOST));
        headers.insert("x-amz-date", HeaderValue::from_static("20231114T221320Z"));
        for (name, value) in extra {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(authorization).expect("authorization"),
        );
        TestRequest {
            method: Method::POST,
            uri: Uri::from_static("/ListRooms"),
            headers,
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn malformed_authorization_headers_are_invalid_signatures() {
        let signature = "0".repeat(64);
        let scope = "test/20231114/us-west-2/ivschat/aws4_request";
        let cases = [
            (
                format!(
                    "AWS4-HMAC-SHA1 Credential={scope}, SignedHeaders=host, Signature={signature}"
                ),
                "Unsupported signing algorithm",
            ),
            (
                format!("AWS4-HMAC-SHA256 SignedHeaders=host, Signature={signature}"),
                "Credential",
            ),
            (
                format!("AWS4-HMAC-SHA256 Credential={scope}, Signature={signature}"),
                "SignedHeaders",
            ),
            (
                format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host"),
                "Signature",
            ),
            (
                format!(
                    "AWS4-HMAC-SHA256 Credential=test/20231114/us-west-2, SignedHeaders=host, Signature={signature}"
                ),
                "must have the form",
            ),
            (
                format!(
                    "AWS4-HMAC-SHA256 Credential=test/20231114/us-west-2/ivschat/aws5_request, SignedHeaders=host, Signature={signature}"
                ),
                "terminator",
            ),
            (
                format!(
                    "AWS4-HMAC-SHA256 Credential=test/20231115/us-west-2/ivschat/aws4_request, SignedHeaders=host, Signature={signature}"
                ),
                "Date in Credential scope does not match",
            ),
            (
                format!(
                    "AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=x-amz-date, Signature={signature}"
                ),
                "'Host' must be a 'SignedHeader'",
            ),
            (
                format!(
                    "AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=x-amz-date;host, Signature={signature}"
                ),
                "must be sorted",
            ),
            (
                format!(
                    "AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=Host, Signature={signature}"
                ),
                "not a lowercase header name",
            ),
            (
                format!(
                    "AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host;x-custom, Signature={signature}"
                ),
                "not present in the request",
            ),
            (
                format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=xyz"),
                "64 hexadecimal",
            ),
            (
                format!(
                    "AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature={signature}, Extra=1"
                ),
                "Unknown component",
            ),
            (
                format!(
                    "AWS4-HMAC-SHA256 Credential={scope}, Credential={scope}, SignedHeaders=host, Signature={signature}"
                ),
                "more than once",
            ),
        ];
        for (authorization, needle) in cases {
            assert_invalid_containing(
                with_authorization(&authorization, &[]).verify_emulator(),
                needle,
            );
        }
    }

    #[test]
    fn x_amz_date_must_be_present_and_well_formed() {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=test/20231114/us-west-2/ivschat/aws4_request, SignedHeaders=host, Signature={}",
            "0".repeat(64)
        );
        let mut request = with_authorization(&authorization, &[]);
        request.headers.remove("x-amz-date");
        assert_invalid_containing(request.verify_emulator(), "X-Amz-Date");
        for bad in [
            "2023-11-14T22:13:20Z",
            "20231114T221320",
            "20231314T221320Z",
            "2023111T4221320Z",
            "20231114T256000Z",
        ] {
            let request = with_authorization(&authorization, &[("x-amz-date", bad)]);
            assert_invalid_containing(request.verify_emulator(), "basic format");
        }
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let debug = format!("{:?}", emulator_credentials());
        assert!(debug.contains("redacted"));
        assert!(!debug.contains("secret_access_key: \"test\""));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever the SDK's signer signs, the verifier accepts: arbitrary path segments, query parameters
        /// and bodies, encoded more eagerly than necessary (the canonical form must not depend on that).
        #[test]
        fn verifies_whatever_the_sdk_signer_signs(
            segments in proptest::collection::vec("\\PC{0,12}", 0..4),
            query in proptest::collection::vec(("\\PC{0,8}", "\\PC{0,8}"), 0..4),
            body in proptest::collection::vec(any::<u8>(), 0..64),
            method in prop_oneof![Just("GET"), Just("POST"), Just("DELETE"), Just("PUT")],
        ) {
            let encode = |text: &str| percent_encoding::utf8_percent_encode(text, NON_ALPHANUMERIC).to_string();
            let mut path_and_query: String = segments.iter().map(|segment| format!("/{}", encode(segment))).collect();
            if path_and_query.is_empty() {
                path_and_query.push('/');
            }
            if !query.is_empty() {
                let pairs: Vec<String> = query.iter().map(|(name, value)| format!("{}={}", encode(name), encode(value))).collect();
                path_and_query.push('?');
                path_and_query.push_str(&pairs.join("&"));
            }
            let request = Signer::default().sign(method, &path_and_query, &[JSON], &body);
            prop_assert_eq!(request.verify_emulator(), Ok(()));
        }

        /// The same for targets sent as they are, not encoded by the test: dot segments, doubled slashes,
        /// `+`, malformed or non-UTF-8 `%` escapes and sub-delimiters in the path and the query.
        #[test]
        fn verifies_raw_targets_the_sdk_signer_signs(
            path in "(/[A-Za-z0-9%+._~!$'()*,;=:@-]{0,10}){1,4}",
            query in proptest::option::of("[A-Za-z0-9%+=&._~!$'()*,;:@/?-]{0,30}"),
        ) {
            let target = match &query {
                Some(query) => format!("{path}?{query}"),
                None => path.clone(),
            };
            prop_assume!(target.parse::<Uri>().is_ok());
            let request = Signer::default().sign("GET", &target, &[], b"");
            prop_assert_eq!(request.verify_emulator(), Ok(()));
        }
    }
}
