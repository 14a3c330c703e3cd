//! TLS for `embedb serve`, and the development certificate `embedb cert` writes.
//!
//! Serving: `server_config` reads the PEM files named by `--tls-cert` (the certificate chain,
//! leaf first) and `--tls-key` (its private key: PKCS#8, PKCS#1 or SEC1) into a rustls
//! `ServerConfig` on the ring provider (no OpenSSL). `embedb_wire` offers CLIENT_SSL in the
//! greeting whenever it has one, and switches a connection to TLS on the client's SSLRequest.
//!
//! Development: `dev_certificate` makes a self-signed ECDSA P-256 certificate for localhost,
//! 127.0.0.1, ::1 and any extra hosts; clients trust it by using the certificate itself as their
//! CA file (`--ssl-ca cert.pem`, pymysql `ssl_ca=`).

use std::path::Path;
use std::sync::Arc;

use embedb_wire::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Load the certificate chain and key into the server's TLS settings. Errors name the file.
pub fn server_config(cert_path: &Path, key_path: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let cert_pem = read(cert_path)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM in {}: {e}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate found in {}", cert_path.display()));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(key_path)?)
        .map_err(|e| format!("no usable private key in {}: {e}", key_path.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("cannot use {} with {}: {e}", cert_path.display(), key_path.display()))?;
    Ok(Arc::new(config))
}

/// A self-signed certificate and its key, both PEM.
pub struct DevCertificate {
    pub cert_pem: String,
    pub key_pem: String,
    /// The names and addresses it is valid for.
    pub names: Vec<String>,
    /// Last day of validity (UTC).
    pub expires: chrono::NaiveDate,
}

/// Days a development certificate lasts: the longest some platforms accept for a server cert.
const DEV_CERT_DAYS: i64 = 825;

/// A certificate for local use, valid from yesterday (clock skew) for `DEV_CERT_DAYS`.
pub fn dev_certificate(extra_hosts: &[String]) -> Result<DevCertificate, String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].iter().map(|s| s.to_string()).collect();
    for h in extra_hosts.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(h)) {
            names.push(h.to_string());
        }
    }
    let mut params = rcgen::CertificateParams::new(names.clone()).map_err(|e| format!("invalid host name: {e}"))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "embedb development certificate");
    params.distinguished_name = dn;
    // No key-usage or CA extensions: OpenSSL then accepts the certificate as its own trust
    // anchor, and rustls/webpki as an end-entity certificate.
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let today = chrono::Utc::now().date_naive();
    let ymd = |d: chrono::NaiveDate| {
        use chrono::Datelike;
        rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
    };
    let expires = today + chrono::Duration::days(DEV_CERT_DAYS);
    params.not_before = ymd(today - chrono::Duration::days(1));
    params.not_after = ymd(expires);
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok(DevCertificate { cert_pem: cert.pem(), key_pem: key.serialize_pem(), names, expires })
}

/// Write `cert.pem` and `key.pem` into `dir` (created if missing; the key readable by its owner
/// only). Refuses to replace existing files unless `force`.
pub fn write_dev_certificate(dir: &Path, cert: &DevCertificate, force: bool) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    if !force {
        for p in [&cert_path, &key_path] {
            if p.exists() {
                return Err(format!("{} already exists (use --force to replace it)", p.display()));
            }
        }
    }
    let write = |p: &Path, text: &str, private: bool| -> Result<(), String> {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = opts.open(p).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        f.write_all(text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    write(&cert_path, &cert.cert_pem, false)?;
    write(&key_path, &cert.key_pem, true)?;
    // An existing key file keeps its old mode through truncate; tighten it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot restrict {}: {e}", key_path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_certificate_loads_as_server_config() {
        let dir = tempfile::tempdir().unwrap();
        let c = dev_certificate(&["db.example".into(), "LOCALHOST".into(), "10.0.0.7".into()]).unwrap();
        assert_eq!(c.names, ["localhost", "127.0.0.1", "::1", "db.example", "10.0.0.7"]);
        assert!(c.expires > chrono::Utc::now().date_naive());
        write_dev_certificate(dir.path(), &c, false).unwrap();
        let err = write_dev_certificate(dir.path(), &c, false).unwrap_err();
        assert!(err.contains("already exists"), "{err}");
        write_dev_certificate(dir.path(), &c, true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("key.pem")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        server_config(&dir.path().join("cert.pem"), &dir.path().join("key.pem")).unwrap();
    }

    #[test]
    fn bad_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let e = server_config(&cert, &key).unwrap_err();
        assert!(e.contains("cert.pem"), "{e}");
        let c = dev_certificate(&[]).unwrap();
        std::fs::write(&cert, &c.key_pem).unwrap();
        std::fs::write(&key, &c.key_pem).unwrap();
        let e = server_config(&cert, &key).unwrap_err();
        assert!(e.contains("no certificate found"), "{e}");
        std::fs::write(&cert, &c.cert_pem).unwrap();
        std::fs::write(&key, &c.cert_pem).unwrap();
        let e = server_config(&cert, &key).unwrap_err();
        assert!(e.contains("no usable private key"), "{e}");
        // A key that does not belong to the certificate.
        let other = dev_certificate(&[]).unwrap();
        std::fs::write(&key, &other.key_pem).unwrap();
        let e = server_config(&cert, &key).unwrap_err();
        assert!(e.contains("cannot use"), "{e}");
    }
}
