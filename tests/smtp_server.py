#!/usr/bin/env python3
"""A real SMTP server on loopback for tests/notify_email.rs (aiosmtpd).

Each message it takes is written to DIR/NNN.json: the envelope, every
header decoded, the text body, the login used and whether the session was
encrypted. Prints "ready" once it listens; runs until killed.

  smtp_server.py --port P --dir DIR [--starttls CERT KEY | --tls CERT KEY]
                 [--login USER] [--refuse "550 5.1.1 no such user"]

With --login, AUTH (PLAIN or LOGIN) is required and the password is read
from the SMTP_TEST_PASSWORD environment variable.
"""

import argparse
import email
import email.policy
import json
import os
import ssl
import sys
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--login")
    p.add_argument("--refuse")
    a = p.parse_args()
    password = os.environ.get("SMTP_TEST_PASSWORD", "")

    class Handler:
        count = 0

        async def handle_RCPT(self, server, session, envelope, address, options):
            if a.refuse:
                return a.refuse
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            body = msg.get_body(preferencelist=("plain",))
            Handler.count += 1
            doc = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "headers": {k.lower(): str(v) for k, v in msg.items()},
                "text": body.get_content() if body is not None else "",
                "login": session.authenticated and session.auth_data.login.decode(),
                # A --tls listener takes nothing but TLS.
                "encrypted": session.ssl is not None or bool(a.tls),
            }
            path = os.path.join(a.dir, "%03d.json" % Handler.count)
            with open(path + ".tmp", "w") as f:
                json.dump(doc, f)
            os.rename(path + ".tmp", path)
            return "250 2.0.0 queued as %d" % Handler.count

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == a.login and auth_data.password.decode() == password
        # handled=False: the server answers 535 itself.
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    # AUTH without STARTTLS is wanted over --tls (encrypted from the start).
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    kwargs = {}
    context = None
    if a.starttls or a.tls:
        cert, key = a.starttls or a.tls
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
    if a.starttls:
        kwargs.update(tls_context=context, require_starttls=True)
    if a.login:
        kwargs.update(
            authenticator=authenticator,
            auth_required=True,
            # Over --tls the whole session is encrypted, though aiosmtpd
            # only counts STARTTLS as such.
            auth_require_tls=bool(a.starttls),
        )
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=a.port,
        ssl_context=context if a.tls else None,
        **kwargs,
    )
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
