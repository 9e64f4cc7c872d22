"""The broker's TLS files: a private CA of our own and a server certificate it signs.

Generated on first run into one private folder (0700, every file 0600):

    ca.pem, ca.key          the CA; boards get ca.pem at registration and verify the broker with it
    server.pem, server.key  the broker's certificate, naming every host boards may dial

The CA is made once and then only reused: replacing it would strand every board that
holds the old ca.pem. The server certificate is cheap to replace (boards trust the CA,
not the certificate), so it is reissued whenever the set of host names changes or it
is about to expire.

Keys are RSA-2048, CA and server alike: the ESP8266 port's axTLS knows neither ECC nor
ECDHE, only RSA certificates with RSA key exchange, and it must parse the whole chain even
though it cannot verify it. `server_context` therefore prefers ECDHE-RSA suites (forward
secrecy for ESP32 and the unix port, whose mbedTLS offers them) and offers plain RSA key
exchange last, for axTLS only.
"""

import datetime
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..private_files import write_private

CA_LIFETIME = datetime.timedelta(days=3650)
SERVER_LIFETIME = datetime.timedelta(days=730)
RENEW_BEFORE = datetime.timedelta(days=30)
# Boards whose clock is a little behind still accept a certificate issued just now.
BACKDATE = datetime.timedelta(days=1)
RSA_BITS = 2048
# ECDHE first; then the RSA key exchange suites axTLS (ESP8266) can do, in TLS 1.2.
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA"


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def ensure_certificates(tls_dir, host_names):
    """Create or reuse the CA and server certificate in `tls_dir`; return their paths.

    The server certificate names localhost, 127.0.0.1, this machine's host name and
    every entry of `host_names` (an IP address becomes an IP entry, anything else a
    DNS name). Raises ValueError for a name that is neither, and RuntimeError when
    ca.pem exists without its key.
    """
    tls_dir = Path(tls_dir)
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tls_dir.chmod(0o700)  # mkdir's mode is subject to the umask and ignored for an existing folder
    files = TlsFiles(tls_dir / "ca.pem", tls_dir / "server.pem", tls_dir / "server.key")
    ca_cert, ca_key = _ensure_ca(tls_dir)
    wanted = subject_alt_names(host_names)
    if not _server_cert_is_current(files, ca_cert, wanted):
        _issue_server_cert(files, ca_cert, ca_key, wanted)
    return files


def ca_pem(tls_files):
    """The CA certificate in PEM, as boards get it."""
    return tls_files.ca_cert.read_text()


def server_context(cert_file, key_file):
    """An SSLContext for a TLS listener: TLS 1.2 or later, no client certificates asked.

    Boards prove who they are with a password, so asking for a client certificate would
    only add a handshake message for them to parse.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHERS)  # TLS 1.2 only; TLS 1.3 suites are unaffected
    context.load_cert_chain(cert_file, key_file)
    return context


def issued_by(cert_file, ca_pem):
    """True when the certificate in `cert_file` (PEM; its first one) is signed by the CA of `ca_pem`."""
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem.encode()))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def subject_alt_names(host_names):
    """The set of SAN entries the server certificate must carry."""
    names = ("localhost", "127.0.0.1", socket.gethostname(), *host_names)
    # DNS names compare without case and without the root's trailing dot.
    cleaned = {name.strip().rstrip(".").lower() for name in names}
    return {_general_name(name) for name in cleaned if name}


def _general_name(name):
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _ensure_ca(tls_dir):
    cert_path, key_path = tls_dir / "ca.pem", tls_dir / "ca.key"
    if cert_path.exists():
        if not key_path.exists():
            raise RuntimeError(f"{cert_path} exists but {key_path} does not: restore the key, "
                               "or remove both to make a new CA (every board then needs the new ca.pem)")
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        return cert, serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    # No ca.pem: nobody can hold this CA yet, so a stray ca.key (a crash between the two
    # writes below) is simply replaced.
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"mpfleet CA {socket.gethostname()}")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(key_path, _key_pem(key))
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _server_cert_is_current(files, ca_cert, wanted):
    """True when server.pem/server.key exist, match, come from this CA, name exactly
    `wanted` and stay valid for more than RENEW_BEFORE."""
    if not (files.server_cert.exists() and files.server_key.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
        key = serialization.load_pem_private_key(files.server_key.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        names = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except (ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return False  # unreadable, or not ours: reissue rather than serve something broken
    return (
        isinstance(key, rsa.RSAPrivateKey)  # an EC key of an earlier version cannot serve ESP8266 boards
        and _public_bytes(cert.public_key()) == _public_bytes(key.public_key())
        and names == wanted
        and cert.not_valid_after_utc - _now() > RENEW_BEFORE
    )


def _issue_server_cert(files, ca_cert, ca_key, names):
    key = _new_key()
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mpfleet broker")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + SERVER_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(sorted(names, key=str)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # key_encipherment: RSA key exchange (axTLS) encrypts the premaster secret to this key.
        .add_extension(_key_usage(digital_signature=True, key_encipherment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    # Key first: a crash between the two writes leaves a pair that does not match,
    # which the next start detects and reissues.
    write_private(files.server_key, _key_pem(key))
    write_private(files.server_cert, cert.public_bytes(serialization.Encoding.PEM))


def _new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


def _key_usage(digital_signature=False, key_cert_sign=False, key_encipherment=False):
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False, key_encipherment=key_encipherment,
        data_encipherment=False, key_agreement=False, key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign, encipher_only=False, decipher_only=False,
    )


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _public_bytes(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)




def _now():
    return datetime.datetime.now(datetime.timezone.utc)
