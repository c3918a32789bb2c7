"""aiosmtpd handlers for the mail tests (loaded with `-c handlers.Class MAILDIR ARG`, this
folder on PYTHONPATH): a Maildir like aiosmtpd.handlers.Mailbox that either answers slowly or
refuses some recipients."""

import asyncio

from aiosmtpd.handlers import Mailbox


class SlowMailbox(Mailbox):
    """Waits SECONDS before it answers the end of DATA: a slow server, so that a message is
    still being sent when another process looks at the outbox."""

    def __init__(self, mail_dir, seconds):
        super().__init__(mail_dir)
        self.seconds = float(seconds)

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.seconds)
        return await super().handle_DATA(server, session, envelope)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 2:
            parser.error("SlowMailbox MAILDIR SECONDS")
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
