//! SigV4 request verification for the emulator.
//!
//! CONTRACT (skeleton; the owner replaces this text):
//! ```ignore
//! pub struct Credentials { pub access_key_id: String, pub secret_access_key: String }
//! pub enum AuthError { MissingAuthentication, UnrecognizedClient, InvalidSignature(String) }
//! impl AuthError { pub fn error_type(&self) -> &'static str; pub fn message(&self) -> String }
//! pub fn verify(method: &http::Method, uri: &http::Uri, headers: &http::HeaderMap, body: &[u8],
//!               credentials: &Credentials, region: &str, service: &str, now: jiff::Timestamp)
//!     -> Result<(), AuthError>;
//! ```
