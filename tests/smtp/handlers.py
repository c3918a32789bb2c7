"""aiosmtpd handlers for the mail tests (loaded with `-c handlers.Class MAILDIR ARG`, this
folder on PYTHONPATH): a Maildir like aiosmtpd.handlers.Mailbox that either holds each message
until the test releases it or refuses some recipients."""

import asyncio
import os

from aiosmtpd.handlers import Mailbox


class HoldingMailbox(Mailbox):
    """Holds every message at the end of DATA until the test releases it: when message N
    arrives it writes CONTROL/held-N, then answers only once CONTROL/release exists. So the
    test knows when a message is in flight, and keeps it there while it looks."""

    def __init__(self, mail_dir, control):
        super().__init__(mail_dir)
        self.control = control
        self.arrived = 0

    async def handle_DATA(self, server, session, envelope):
        self.arrived += 1
        with open(os.path.join(self.control, "held-%d" % self.arrived), "w"):
            pass
        while not os.path.exists(os.path.join(self.control, "release")):
            await asyncio.sleep(0.02)
        return await super().handle_DATA(server, session, envelope)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 2:
            parser.error("HoldingMailbox MAILDIR CONTROL")
        return cls(args[0], args[1])


class PickyMailbox(Mailbox):
    """Refuses RCPT TO for every address that begins with PREFIX (550, a permanent failure);
    takes the others."""

    def __init__(self, mail_dir, prefix):
        super().__init__(mail_dir)
        self.prefix = prefix.lower()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith(self.prefix):
            return "550 5.1.1 <%s>: no such user here" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 2:
            parser.error("PickyMailbox MAILDIR PREFIX")
        return cls(args[0], args[1])


class FaultyMailbox(Mailbox):
    """Answers every message at the end of DATA with a failure — MODE "4xx" (451, try again
    later) or "5xx" (554, refused for good) — until CONTROL/accept exists; from then on it
    takes them like a Mailbox. Each refusal is noted as CONTROL/refused-N."""

    def __init__(self, mail_dir, control, mode):
        super().__init__(mail_dir)
        self.control = control
        self.mode = mode
        self.refused = 0

    async def handle_DATA(self, server, session, envelope):
        if os.path.exists(os.path.join(self.control, "accept")):
            return await super().handle_DATA(server, session, envelope)
        self.refused += 1
        with open(os.path.join(self.control, "refused-%d" % self.refused), "w"):
            pass
        if self.mode == "4xx":
            return "451 4.3.0 mailbox busy, try again later"
        return "554 5.7.1 message refused by policy"

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 3 or args[2] not in ("4xx", "5xx"):
            parser.error("FaultyMailbox MAILDIR CONTROL 4xx|5xx")
        return cls(args[0], args[1], args[2])
