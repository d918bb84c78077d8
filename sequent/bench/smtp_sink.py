"""A local SMTP server that accepts every message and keeps none:
``python -m sequent.bench.smtp_sink PORT``. Prints "ready" once listening; stops on
SIGTERM or SIGINT. Run in its own process, so the sender and the server do not share
a CPU-bound interpreter."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from aiosmtpd.controller import Controller


class Discard:
    """aiosmtpd handler: every message is accepted and dropped."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 2.0.0 Ok"


def main(port: int) -> None:
    """Serve on 127.0.0.1:*port* until SIGTERM or SIGINT, or until the parent is gone
    (killed before it could stop this server)."""
    parent = os.getppid()
    controller = Controller(Discard(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    while os.getppid() == parent:
        if signal.sigtimedwait({signal.SIGTERM, signal.SIGINT}, 1.0) is not None:
            break
    controller.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main(int(sys.argv[1]))
