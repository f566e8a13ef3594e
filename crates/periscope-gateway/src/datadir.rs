//! The data directory: TLS material and keys, created at first start and reused
//! afterwards.
//!
//! ```text
//! <data-dir>/                 0700
//!   periscope.db              embedded SQLite store (when no store URL is configured)
//!   periscope.db-audit-redo-a 0600  audit events not yet indexed (and -b: used in turn; process-crash durability)
//!   tls/ca.pem                local CA certificate: what clients trust (--ca-file, sslrootcert)
//!   tls/ca.key                0600  CA private key (signs server.pem)
//!   tls/server.pem            server certificate, signed by the CA
//!   tls/server.key            0600  server private key
//!   keys/audit-signing.key    0600  Ed25519 key signing audit checkpoints
//!   keys/audit-verify.pub     its public half: give it to auditors
//!   keys/token-hmac.key       0600  HMAC key under which token secrets are stored
//!   keys/mask-token.key       0600  key of the redaction engine's `token` operator
//! ```
//!
//! Creation happens under an exclusive lock on `<data-dir>/.lock`, so two
//! gateways started together on one directory (replicas on one host) create
//! one set of keys and both use it. Private files written looser than 0600 by
//! hand are refused rather than silently used: a key readable by other users
//! is a key that may have leaked.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use periscope_audit::{AuditSigner, AuditVerifierKey};
use periscope_redact::TokenKey;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Validity of the local CA.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Validity of the server certificate; it is re-issued from the CA at start
/// when it would expire within [`RENEW_BEFORE`] or no longer names every host.
const SERVER_VALIDITY: Duration = Duration::from_secs(397 * 24 * 3600);
/// Re-issue the server certificate when it expires within this window.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// A file-system operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What the gateway was doing.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A private file is readable or writable by other users.
    #[error(
        "{} has permissions {mode:04o}, but it holds a private key and must be readable by the \
         gateway's user only: run `chmod 600 {}` (and check whether it has leaked)",
        path.display(),
        path.display()
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// A file exists but cannot be read as what it should hold.
    #[error(
        "{} is corrupt: {reason}. Restore it from a backup; delete it only if losing it is \
         acceptable (see docs/operations.md)",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Another gateway process uses this embedded database.
    #[error(
        "{} is in use by another gateway process: one SQLite store serves one gateway \
         (stop the other one, or use a PostgreSQL store for replicas)",
        path.display()
    )]
    InUse {
        /// The database file.
        path: PathBuf,
    },
    /// Generating a key or certificate failed.
    #[error("could not generate {what}: {reason}")]
    Generate {
        /// The key or certificate.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// A 32-byte symmetric key read from a key file; zeroed on drop, never printed.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; 32]>);

impl SecretKey {
    /// Wraps 32 key bytes (a key held elsewhere, or a test key).
    pub fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        SecretKey(Zeroizing::new(bytes))
    }

    /// The key bytes, for the one place that keys an HMAC with them.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

/// What the gateway needs from its data directory, loaded or created.
pub struct Prepared {
    /// The data directory (absolute).
    pub root: PathBuf,
    /// Signs audit checkpoints; handed to the audit writer.
    pub audit_signer: AuditSigner,
    /// The public half of `audit_signer`.
    pub audit_verifier: AuditVerifierKey,
    /// Keys the hash of every token secret.
    pub token_hmac: SecretKey,
    /// The redaction engine's `token` operator key.
    pub mask_token: TokenKey,
    /// TLS for every listener (no ALPN set; each listener may add its own).
    pub tls: Arc<rustls::ServerConfig>,
    /// `tls/ca.pem`: what clients must trust.
    pub ca_file: PathBuf,
    /// Files created by this start (empty on a restart), for the log.
    pub created: Vec<PathBuf>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("root", &self.root)
            .field("audit_key_id", &self.audit_verifier.key_id())
            .field("ca_file", &self.ca_file)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// Relative paths inside the data directory, the single spelling used by the
/// code, the docs and the tests.
pub mod paths {
    /// Local CA certificate.
    pub const CA_CERT: &str = "tls/ca.pem";
    /// Local CA private key.
    pub const CA_KEY: &str = "tls/ca.key";
    /// Server certificate.
    pub const SERVER_CERT: &str = "tls/server.pem";
    /// Server private key.
    pub const SERVER_KEY: &str = "tls/server.key";
    /// Audit checkpoint signing key.
    pub const AUDIT_SIGNING_KEY: &str = "keys/audit-signing.key";
    /// Public key for auditors.
    pub const AUDIT_VERIFY_KEY: &str = "keys/audit-verify.pub";
    /// Token HMAC key.
    pub const TOKEN_HMAC_KEY: &str = "keys/token-hmac.key";
    /// Masking `token` operator key.
    pub const MASK_TOKEN_KEY: &str = "keys/mask-token.key";
    /// Every private file, checked for permissions at start.
    pub const PRIVATE: [&str; 5] = [
        CA_KEY,
        SERVER_KEY,
        AUDIT_SIGNING_KEY,
        TOKEN_HMAC_KEY,
        MASK_TOKEN_KEY,
    ];
}

/// Loads the data directory at `root`, creating whatever is missing.
///
/// `hosts` are the names and addresses the server certificate must be valid
/// for, besides `localhost`, `127.0.0.1` and `::1`.
pub fn prepare(root: &Path, hosts: &[String]) -> Result<Prepared, DataDirError> {
    create_dir(root)?;
    let root = fs::canonicalize(root).map_err(|e| io("cannot resolve", root, e))?;
    warn_if_open(&root);
    for sub in ["tls", "keys"] {
        create_dir(&root.join(sub))?;
    }
    // One initialiser at a time; the lock is released when `lock` drops.
    let lock_path = root.join(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| io("cannot open", &lock_path, e))?;
    lock.lock().map_err(|e| io("cannot lock", &lock_path, e))?;

    for rel in paths::PRIVATE {
        check_private(&root.join(rel))?;
    }
    let mut created = Vec::new();
    let (audit_signer, audit_verifier) = audit_keys(&root, &mut created)?;
    let token_hmac = symmetric_key(&root.join(paths::TOKEN_HMAC_KEY), &mut created)?;
    let mask_token = TokenKey::from_bytes(
        *symmetric_key(&root.join(paths::MASK_TOKEN_KEY), &mut created)?.expose(),
    );
    let tls = tls(&root, hosts, &mut created)?;
    drop(lock);
    Ok(Prepared {
        ca_file: root.join(paths::CA_CERT),
        root,
        audit_signer,
        audit_verifier,
        token_hmac,
        mask_token,
        tls,
        created,
    })
}

/// Holds the embedded database for this process; released on drop.
#[derive(Debug)]
pub struct SqliteLock {
    _file: File,
}

/// Claims the SQLite file `db` for this process (a second gateway on the same
/// file is refused instead of silently sharing it), and creates the file
/// with mode 0600 when missing: SQLite gives its `-wal` and `-shm` companions
/// the database file's permissions, and they hold token hashes and the audit.
pub fn claim_sqlite(db: &Path) -> Result<SqliteLock, DataDirError> {
    if let Some(dir) = db.parent() {
        create_dir(dir)?;
    }
    let lock_path = db.with_extension("db.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| io("cannot open", &lock_path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(DataDirError::InUse {
                path: db.to_path_buf(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock", &lock_path, e)),
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("cannot create", db, e)),
    }
    Ok(SqliteLock { _file: file })
}

fn io(what: &'static str, path: &Path, source: std::io::Error) -> DataDirError {
    DataDirError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, reason: impl ToString) -> DataDirError {
    DataDirError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn create_dir(dir: &Path) -> Result<(), DataDirError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io("cannot create directory", dir, e))
}

fn warn_if_open(root: &Path) {
    if let Ok(meta) = fs::metadata(root)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            data_dir = %root.display(),
            mode = format!("{:04o}", meta.permissions().mode() & 0o7777),
            "the data directory is accessible to other users; 0700 is recommended"
        );
    }
}

fn check_private(path: &Path) -> Result<(), DataDirError> {
    match fs::metadata(path) {
        Ok(meta) => {
            if !meta.is_file() {
                return Err(corrupt(path, "it is not a regular file"));
            }
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(DataDirError::Permissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("cannot inspect", path, e)),
    }
}

/// Writes a file atomically (temporary file, fsync, rename) with `mode`.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), DataDirError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io("cannot write", path, e)
    })
}

fn read_text(path: &Path) -> Result<Option<Zeroizing<String>>, DataDirError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(Zeroizing::new(text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(corrupt(path, "it is not UTF-8 text"))
        }
        Err(e) => Err(io("cannot read", path, e)),
    }
}

fn audit_keys(
    root: &Path,
    created: &mut Vec<PathBuf>,
) -> Result<(AuditSigner, AuditVerifierKey), DataDirError> {
    let private = root.join(paths::AUDIT_SIGNING_KEY);
    let public = root.join(paths::AUDIT_VERIFY_KEY);
    let signer = match read_text(&private)? {
        Some(pem) => AuditSigner::from_pem(&pem).map_err(|e| corrupt(&private, e))?,
        None => {
            let signer = AuditSigner::generate().map_err(|e| DataDirError::Generate {
                what: "the audit signing key",
                reason: e.to_string(),
            })?;
            write_file(&private, signer.to_pem().as_bytes(), 0o600)?;
            created.push(private.clone());
            signer
        }
    };
    let verifier = signer.verifier_key();
    // The public file is derived: rewrite it when missing or not matching, so
    // what auditors copy is always the key that signs.
    let expected = verifier.to_pem();
    let current = read_text(&public)?;
    if current.as_deref().map(|s| s.as_str()) != Some(expected.as_str()) {
        write_file(&public, expected.as_bytes(), 0o644)?;
        if current.is_none() {
            created.push(public);
        }
    }
    Ok((signer, verifier))
}

fn symmetric_key(path: &Path, created: &mut Vec<PathBuf>) -> Result<SecretKey, DataDirError> {
    if let Some(text) = read_text(path)? {
        let mut key = Zeroizing::new([0u8; 32]);
        let trimmed = text.trim();
        if trimmed.len() != 64 {
            return Err(corrupt(
                path,
                format!("expected 64 hex characters, found {}", trimmed.len()),
            ));
        }
        hex::decode_to_slice(trimmed, key.as_mut()).map_err(|e| corrupt(path, e))?;
        return Ok(SecretKey(key));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut()).map_err(|e| DataDirError::Generate {
        what: "a key",
        reason: e.to_string(),
    })?;
    let mut text = Zeroizing::new(hex::encode(key.as_ref()));
    text.push('\n');
    write_file(path, text.as_bytes(), 0o600)?;
    created.push(path.to_path_buf());
    Ok(SecretKey(key))
}

fn gen_err(what: &'static str) -> impl Fn(rcgen::Error) -> DataDirError {
    move |e| DataDirError::Generate {
        what,
        reason: e.to_string(),
    }
}

/// The CA's parameters, rebuilt identically from its key whenever the server
/// certificate is (re-)issued, so the issuer name always matches `ca.pem`.
fn ca_params(ca_key: &KeyPair) -> Result<CertificateParams, DataDirError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err("the CA"))?;
    let tag = hex::encode(&Sha256::digest(ca_key.public_key_raw())[..4]);
    params
        .distinguished_name
        .push(DnType::CommonName, format!("Periscope gateway CA {tag}"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Periscope");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn validity(params: &mut CertificateParams, for_: Duration) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + for_;
}

fn tls(
    root: &Path,
    hosts: &[String],
    created: &mut Vec<PathBuf>,
) -> Result<Arc<rustls::ServerConfig>, DataDirError> {
    let ca_cert_path = root.join(paths::CA_CERT);
    let ca_key_path = root.join(paths::CA_KEY);
    let server_cert_path = root.join(paths::SERVER_CERT);
    let server_key_path = root.join(paths::SERVER_KEY);

    let (ca_key, ca_pem) = match (read_text(&ca_key_path)?, read_text(&ca_cert_path)?) {
        (Some(key), Some(cert)) => (
            KeyPair::from_pem(&key).map_err(|e| corrupt(&ca_key_path, e))?,
            cert.to_string(),
        ),
        (None, None) => {
            let key = KeyPair::generate().map_err(gen_err("the CA key"))?;
            let mut params = ca_params(&key)?;
            validity(&mut params, CA_VALIDITY);
            let cert = params.self_signed(&key).map_err(gen_err("the CA"))?;
            write_file(&ca_key_path, key.serialize_pem().as_bytes(), 0o600)?;
            write_file(&ca_cert_path, cert.pem().as_bytes(), 0o644)?;
            created.extend([ca_key_path.clone(), ca_cert_path.clone()]);
            (key, cert.pem())
        }
        (Some(_), None) => return Err(corrupt(&ca_cert_path, "it is missing but ca.key exists")),
        (None, Some(_)) => return Err(corrupt(&ca_key_path, "it is missing but ca.pem exists")),
    };
    let ca_der =
        CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|e| corrupt(&ca_cert_path, e))?;

    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for host in hosts {
        if !names.contains(host) {
            names.push(host.clone());
        }
    }

    let existing = match (read_text(&server_key_path)?, read_text(&server_cert_path)?) {
        (Some(key), Some(cert)) => {
            let key_der = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| corrupt(&server_key_path, e))?;
            let cert_der = CertificateDer::from_pem_slice(cert.as_bytes())
                .map_err(|e| corrupt(&server_cert_path, e))?;
            Some((cert_der, key_der))
        }
        _ => None,
    };
    let reuse = existing.filter(|(cert, _)| covers(&ca_der, cert, &names));
    let (server_der, server_key) = match reuse {
        Some(pair) => pair,
        None => {
            let key = KeyPair::generate().map_err(gen_err("the server key"))?;
            let mut params =
                CertificateParams::new(names.clone()).map_err(gen_err("the server certificate"))?;
            params
                .distinguished_name
                .push(DnType::CommonName, "periscope");
            params.use_authority_key_identifier_extension = true;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            validity(&mut params, SERVER_VALIDITY);
            let issuer = Issuer::new(ca_params(&ca_key)?, &ca_key);
            let cert = params
                .signed_by(&key, &issuer)
                .map_err(gen_err("the server certificate"))?;
            write_file(&server_key_path, key.serialize_pem().as_bytes(), 0o600)?;
            write_file(&server_cert_path, cert.pem().as_bytes(), 0o644)?;
            created.extend([server_key_path.clone(), server_cert_path.clone()]);
            let key_der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| {
                DataDirError::Generate {
                    what: "the server key",
                    reason: e.to_string(),
                }
            })?;
            (cert.der().clone(), key_der)
        }
    };
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| DataDirError::Generate {
        what: "the TLS configuration",
        reason: e.to_string(),
    })?
    .with_no_client_auth()
    .with_single_cert(vec![server_der], server_key)
    .map_err(|e| {
        corrupt(
            &server_cert_path,
            format!("it does not match server.key: {e}"),
        )
    })?;
    Ok(Arc::new(config))
}

/// Whether `cert` chains to the CA and is valid for every name until the
/// renewal window.
fn covers(ca: &CertificateDer<'static>, cert: &CertificateDer<'static>, names: &[String]) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    if roots.add(ca.clone()).is_err() {
        return false;
    }
    let Ok(verifier) = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build() else {
        return false;
    };
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + RENEW_BEFORE;
    names.iter().all(|name| {
        ServerName::try_from(name.clone()).is_ok_and(|server_name| {
            verifier
                .verify_server_cert(cert, &[], &server_name, &[], UnixTime::since_unix_epoch(at))
                .is_ok()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_creates_private_files_and_restart_reuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let first = prepare(&root, &[]).unwrap();
        assert!(!first.created.is_empty());
        for rel in paths::PRIVATE {
            let mode = fs::metadata(root.join(rel)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{rel}");
        }
        let dir_mode = fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let ca = fs::read(root.join(paths::CA_CERT)).unwrap();

        let second = prepare(&root, &[]).unwrap();
        assert!(second.created.is_empty(), "{:?}", second.created);
        assert_eq!(fs::read(root.join(paths::CA_CERT)).unwrap(), ca);
        assert_eq!(second.audit_verifier, first.audit_verifier);
        assert_eq!(second.token_hmac.expose(), first.token_hmac.expose());
    }

    #[test]
    fn a_new_public_host_reissues_the_server_certificate_under_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path(), &[]).unwrap();
        let ca = fs::read(dir.path().join(paths::CA_CERT)).unwrap();
        let server = fs::read(dir.path().join(paths::SERVER_CERT)).unwrap();
        let again = prepare(dir.path(), &["periscope.example.com".into()]).unwrap();
        assert_eq!(again.created.len(), 2, "server key and certificate only");
        assert_eq!(fs::read(dir.path().join(paths::CA_CERT)).unwrap(), ca);
        let reissued = fs::read(dir.path().join(paths::SERVER_CERT)).unwrap();
        assert_ne!(reissued, server);
        let ca_der = CertificateDer::from_pem_slice(&ca).unwrap();
        let cert = CertificateDer::from_pem_slice(&reissued).unwrap();
        assert!(covers(
            &ca_der,
            &cert,
            &["periscope.example.com".into(), "127.0.0.1".into()]
        ));
        assert!(!covers(&ca_der, &cert, &["other.example.com".into()]));
    }

    #[test]
    fn loose_permissions_and_corrupt_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path(), &[]).unwrap();
        let hmac = dir.path().join(paths::TOKEN_HMAC_KEY);
        fs::set_permissions(&hmac, fs::Permissions::from_mode(0o644)).unwrap();
        let err = prepare(dir.path(), &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("token-hmac.key has permissions 0644"),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");

        fs::set_permissions(&hmac, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&hmac, "not hex\n").unwrap();
        let err = prepare(dir.path(), &[]).unwrap_err();
        assert!(
            err.to_string().contains("token-hmac.key is corrupt"),
            "{err}"
        );

        fs::remove_file(&hmac).unwrap();
        let signing = dir.path().join(paths::AUDIT_SIGNING_KEY);
        fs::write(&signing, "-----BEGIN PRIVATE KEY-----\ngarbage\n").unwrap();
        let err = prepare(dir.path(), &[]).unwrap_err();
        assert!(
            err.to_string().contains("audit-signing.key is corrupt"),
            "{err}"
        );
    }

    #[test]
    fn key_material_is_not_printed() {
        let dir = tempfile::tempdir().unwrap();
        let prepared = prepare(dir.path(), &[]).unwrap();
        let hex_key = hex::encode(prepared.token_hmac.expose());
        let shown = format!("{prepared:?} {:?}", prepared.token_hmac);
        assert!(!shown.contains(&hex_key));
    }
}
