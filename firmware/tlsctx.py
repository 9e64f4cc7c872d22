"""The link's one SSLContext, made once per boot: link.py imports this module for it and unloads it again.

run(link) puts it into link._ctx. With the port's TLS_VERIFIES the broker's certificate is checked against
mqtt.ca (CERT_REQUIRED) and its name against mqtt.host (connect.py gives it to the handshake); else (ESP8266,
axTLS) CERT_NONE: encrypted only, and a warning says so (once per boot here: every connect logs "tls
UNVERIFIED"). The CA goes into the context (mbedTLS keeps it outside the heap) and its PEM text is dropped from the
config: it is not needed again. Raises ValueError (or the TLS module's error) for a CA that cannot be used.
"""


def run(link):
    try:  # MicroPython >= 1.22: the native module under `ssl`, which is Python code loaded into the heap
        import tls
    except ImportError:
        import ssl as tls

    mqtt = link._cfg["mqtt"]
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    if link.verified:
        ctx.verify_mode = tls.CERT_REQUIRED
        # The DER bytes of the first certificate of the PEM text (this unix port's mbedTLS parses DER only).
        from binascii import a2b_base64

        pem = mqtt["ca"]
        start = pem.find("-----BEGIN CERTIFICATE-----")
        end = pem.find("-----END CERTIFICATE-----", start)
        if start < 0 or end < 0:
            raise ValueError("mqtt.ca: no PEM certificate")
        ctx.load_verify_locations(a2b_base64(pem[start + 27 : end].replace("\r", "").replace("\n", "").strip()))
    else:
        ctx.verify_mode = tls.CERT_NONE
        link._log("link: WARNING: this port cannot verify the broker's certificate; TLS unverified")
    mqtt["ca"] = None
    link._ctx = ctx
