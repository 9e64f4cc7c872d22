"""The link's one SSLContext, made once per boot: link.py imports this module for it and unloads it again.

context(mqtt, verify) -> SSLContext. With verify (the port's TLS_VERIFIES), the broker's certificate is
checked against mqtt["ca"] (CERT_REQUIRED); else (ESP8266, axTLS) CERT_NONE: encrypted only. The CA is
loaded into the context (mbedTLS keeps it outside the heap) and the PEM text is dropped from `mqtt`: it is
not needed again. Raises ValueError (or the TLS module's error) for a CA that cannot be used.
"""


def context(mqtt, verify):
    try:  # MicroPython >= 1.22: the native module under `ssl`, which is Python code loaded into the heap
        import tls
    except ImportError:
        import ssl as tls

    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.verify_mode = tls.CERT_REQUIRED
        ctx.load_verify_locations(_der(mqtt["ca"]))
    else:
        ctx.verify_mode = tls.CERT_NONE
    mqtt["ca"] = None
    return ctx


def _der(pem):
    """The DER bytes of the first certificate of a PEM text (this unix port's mbedTLS parses DER only)."""
    from binascii import a2b_base64

    start = pem.find("-----BEGIN CERTIFICATE-----")
    end = pem.find("-----END CERTIFICATE-----", start)
    if start < 0 or end < 0:
        raise ValueError("mqtt.ca: no PEM certificate")
    body = pem[start + 27 : end].replace("\r", "").replace("\n", "").strip()
    return a2b_base64(body)
