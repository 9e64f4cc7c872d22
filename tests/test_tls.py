"""The broker's CA and server certificate: files, reuse, reissue, and real handshakes."""

import asyncio
import datetime
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mpfleet.backend.broker.tls import ca_pem, ensure_certificates, server_context

EXTRA = ["mpfleet.example", "10.20.30.40"]


def san_of(path):
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_files_and_modes(tmp_path):
    tls_dir = tmp_path / "var" / "tls"
    files = ensure_certificates(tls_dir, EXTRA)

    assert (tls_dir.stat().st_mode & 0o777) == 0o700
    assert {p.name for p in tls_dir.iterdir()} == {"ca.pem", "ca.key", "server.pem", "server.key"}
    for path in tls_dir.iterdir():
        assert (path.stat().st_mode & 0o777) == 0o600, path
    assert (files.ca_cert, files.server_cert, files.server_key) == (
        tls_dir / "ca.pem", tls_dir / "server.pem", tls_dir / "server.key")
    assert ca_pem(files).startswith("-----BEGIN CERTIFICATE-----")
    key = serialization.load_pem_private_key(files.server_key.read_bytes(), password=None)
    # RSA all along the chain: the ESP8266's axTLS can parse nothing else.
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    assert isinstance(ca.public_key(), rsa.RSAPublicKey)
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    assert server.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment


def test_san_holds_every_name(tmp_path):
    san = san_of(ensure_certificates(tmp_path, EXTRA).server_cert)

    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", socket.gethostname().lower(),
                                                          "mpfleet.example"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "10.20.30.40"}


def test_second_call_reuses_everything(tmp_path):
    first = ensure_certificates(tmp_path, EXTRA)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    second = ensure_certificates(tmp_path, list(reversed(EXTRA)))

    assert second == first
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_new_name_reissues_server_cert_only(tmp_path):
    files = ensure_certificates(tmp_path, EXTRA)
    ca_before, cert_before = files.ca_cert.read_bytes(), files.server_cert.read_bytes()

    ensure_certificates(tmp_path, [*EXTRA, "broker.lan"])

    assert files.ca_cert.read_bytes() == ca_before
    assert files.server_cert.read_bytes() != cert_before
    assert "broker.lan" in san_of(files.server_cert).get_values_for_type(x509.DNSName)


def test_expiring_server_cert_is_reissued(tmp_path):
    files = ensure_certificates(tmp_path, EXTRA)
    ca_key = serialization.load_pem_private_key((tmp_path / "ca.key").read_bytes(), password=None)
    old = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    # The same certificate, except that it ends in 10 days.
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(old.issuer)
               .public_key(old.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=10)))
    for extension in old.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    expiring = builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    files.server_cert.write_bytes(expiring)

    ensure_certificates(tmp_path, EXTRA)

    renewed = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    assert renewed.not_valid_after_utc - now > datetime.timedelta(days=365)


def test_ca_without_its_key_is_an_error(tmp_path):
    ensure_certificates(tmp_path, [])
    (tmp_path / "ca.key").unlink()

    with pytest.raises(RuntimeError, match="ca.key"):
        ensure_certificates(tmp_path, [])


async def handshake(files, server_hostname, ca_file=None, client=None):
    """A TLS handshake to a tiny server with server.pem; returns (what the server echoes, cipher name)."""

    async def echo(reader, writer):
        writer.write(await reader.readexactly(2))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0,
                                        ssl=server_context(files.server_cert, files.server_key))
    port = server.sockets[0].getsockname()[1]
    if client is None:
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.load_verify_locations(ca_file or files.ca_cert)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname=server_hostname), 5)
        writer.write(b"ok")
        answer = await asyncio.wait_for(reader.readexactly(2), 5)
        cipher = writer.get_extra_info("cipher")[0]
        writer.close()
        await writer.wait_closed()
        return answer, cipher
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "mpfleet.example", "10.20.30.40"])
async def test_handshake_verifies_for_each_name(tmp_path, name):
    files = ensure_certificates(tmp_path, EXTRA)

    assert (await handshake(files, name))[0] == b"ok"


async def test_a_tls_1_2_client_gets_forward_secrecy(tmp_path):
    files = ensure_certificates(tmp_path, EXTRA)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(files.ca_cert)
    client.maximum_version = ssl.TLSVersion.TLSv1_2

    answer, cipher = await handshake(files, "localhost", client=client)
    assert answer == b"ok" and cipher.startswith("ECDHE-RSA-")


@pytest.mark.parametrize("cipher", ["AES128-SHA256", "AES128-SHA", "AES256-SHA"])
async def test_an_esp8266_axtls_client_can_connect(tmp_path, cipher):
    """axTLS offers only RSA key exchange suites in TLS 1.2 and cannot verify (CERT_NONE)."""
    files = ensure_certificates(tmp_path, EXTRA)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers(cipher)

    assert await handshake(files, "localhost", client=client) == (b"ok", cipher)


async def test_handshake_fails_for_a_name_not_in_the_certificate(tmp_path):
    files = ensure_certificates(tmp_path, EXTRA)

    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        await handshake(files, "elsewhere.example")


async def test_handshake_fails_with_another_ca(tmp_path):
    files = ensure_certificates(tmp_path / "ours", EXTRA)
    other = ensure_certificates(tmp_path / "other", EXTRA)

    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(files, "localhost", ca_file=other.ca_cert)
