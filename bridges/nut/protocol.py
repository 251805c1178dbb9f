"""A client for the NUT network protocol (``upsd``, TCP port 3493), read side only.

Requests are single lines; answers are one line (``VAR ...``, ``OK ...``) or a block between
``BEGIN LIST X`` and ``END LIST X``; failures are ``ERR CODE [detail]``. Words with spaces are
double-quoted, with ``"`` and ``\\`` escaped by a backslash (NUT's parseconf rules).

The bridge never sends ``LOGIN``: that registers a client as a upsmon secondary, and upsd's
primary then waits for it before powering the UPS off at the end of a power cut. A monitor
must not be able to delay a shutdown. ``USERNAME``/``PASSWORD`` are sent when configured
(upsd checks them only for privileged commands, but sites keep them for auditing), and only
after ``STARTTLS`` unless the caller chose otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

DEFAULT_PORT = 3493
MAX_LINE = 64 * 1024

# upsd answers these when the UPS exists but its data cannot be trusted.
STALE = "DATA-STALE"
DRIVER_NOT_CONNECTED = "DRIVER-NOT-CONNECTED"
UNKNOWN_UPS = "UNKNOWN-UPS"
UNAVAILABLE = frozenset({STALE, DRIVER_NOT_CONNECTED, UNKNOWN_UPS})


class NutError(Exception):
    """upsd answered ``ERR CODE [detail]``."""

    def __init__(self, code: str, detail: str = "", command: str = "") -> None:
        self.code = code
        self.detail = detail
        self.command = command
        text = f"ERR {code}" + (f" {detail}" if detail else "")
        super().__init__(f"{text} (to {command})" if command else text)


class NutProtocolError(Exception):
    """upsd's answer did not follow the protocol (or the peer is not upsd)."""


def split_words(line: str) -> list[str]:
    """Split a protocol line into words, honouring quotes and backslash escapes."""
    words: list[str] = []
    current: list[str] = []
    in_word = quoted = escaped = False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = in_word = True
        elif char == '"':
            if quoted:
                quoted = False
            else:
                quoted = in_word = True
        elif char in " \t" and not quoted:
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        else:
            current.append(char)
            in_word = True
    if quoted or escaped:
        raise NutProtocolError(f"unterminated quote or escape in {line!r}")
    if in_word:
        words.append("".join(current))
    return words


def quote(word: str) -> str:
    """``word`` as one protocol word (quoted when it needs to be)."""
    if word and not any(c in word for c in ' \t"\\'):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """STARTTLS settings. ``context`` verifies upsd's certificate unless built otherwise."""

    context: ssl.SSLContext
    server_hostname: str | None = None


class NutClient:
    """One upsd connection. Not safe for concurrent use: the protocol is request/answer."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        self.tls = False

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        timeout: float = 10.0,
        tls: TlsOptions | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> NutClient:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=MAX_LINE), timeout
        )
        client = cls(reader, writer, timeout)
        try:
            if tls is not None:
                await client.starttls(tls)
            if username is not None:
                await client.command(f"USERNAME {quote(username)}")
            if password is not None:
                await client.command(f"PASSWORD {quote(password)}", shown="PASSWORD ***")
        except BaseException:
            await client.close(logout=False)
            raise
        return client

    # ------------------------------------------------------------------ requests
    async def version(self) -> str:
        return await self.command("VER")

    async def list_ups(self) -> dict[str, str]:
        """UPS name -> description."""
        rows = await self.list_block("UPS")
        return {row[1]: row[2] if len(row) > 2 else "" for row in rows if row[0] == "UPS"}

    async def list_var(self, ups: str) -> dict[str, str]:
        """Every variable of ``ups``, name -> text value."""
        rows = await self.list_block(f"VAR {quote(ups)}")
        return {row[2]: row[3] if len(row) > 3 else "" for row in rows if row[0] == "VAR"}

    async def get_var(self, ups: str, name: str) -> str:
        words = split_words(await self.command(f"GET VAR {quote(ups)} {quote(name)}"))
        if len(words) < 4 or words[0] != "VAR":
            raise NutProtocolError(f"unexpected answer to GET VAR: {words!r}")
        return words[3]

    async def starttls(self, tls: TlsOptions) -> None:
        answer = await self.command("STARTTLS")
        if not answer.startswith("OK STARTTLS"):
            raise NutProtocolError(f"unexpected answer to STARTTLS: {answer!r}")
        await asyncio.wait_for(
            self._writer.start_tls(tls.context, server_hostname=tls.server_hostname),
            self._timeout,
        )
        self.tls = True

    async def close(self, logout: bool = True) -> None:
        """Say goodbye when possible (upsd logs abrupt disconnects) and close the socket."""
        with contextlib.suppress(Exception):
            if logout and not self._writer.is_closing():
                self._writer.write(b"LOGOUT\n")
                await asyncio.wait_for(self._writer.drain(), 1.0)
        self._writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)

    # ------------------------------------------------------------------ wire
    async def command(self, line: str, shown: str | None = None) -> str:
        """Send one request and return its one-line answer; ``ERR`` raises :class:`NutError`.

        ``shown`` replaces the request in error messages (passwords stay out of logs).
        """
        await self._send(line)
        answer = await self._read_line()
        self._raise_for_error(answer, shown or line)
        return answer

    async def list_vars(self, names: list[str]) -> dict[str, dict[str, str] | NutError]:
        """:meth:`list_var` of every UPS in ``names``, pipelined: each UPS's variables, or the
        :class:`NutError` upsd answered for it.

        All the requests go out in one write and the answers are read in order. One request
        at a time costs a delayed-ACK stall per answer (upsd writes each line on its own):
        measured, 50 ms per UPS, 11 s per poll of 230 UPSes; pipelined, the stream does not stall.
        """
        commands = [f"LIST VAR {quote(ups)}" for ups in names]
        await self._send_many(commands)
        answers: dict[str, dict[str, str] | NutError] = {}
        for ups, command in zip(names, commands, strict=True):
            try:
                rows = await self._read_block(command)
            except NutError as exc:
                answers[ups] = exc
                continue
            answers[ups] = {row[2]: row[3] if len(row) > 3 else "" for row in rows
                            if row[0] == "VAR"}
        return answers

    async def list_block(self, query: str) -> list[list[str]]:
        """``LIST query``: the words of every line between BEGIN and END."""
        command = f"LIST {query}"
        await self._send(command)
        return await self._read_block(command)

    async def _read_block(self, command: str) -> list[list[str]]:
        first = await self._read_line()
        self._raise_for_error(first, command)
        header = split_words(first)
        expected = split_words(command)
        if header[:1] != ["BEGIN"] or header[1:] != expected:
            raise NutProtocolError(f"expected 'BEGIN {command}', got {first!r}")
        rows: list[list[str]] = []
        while True:
            line = await self._read_line()
            words = split_words(line)
            if words[:1] == ["END"]:
                if words[1:] != expected:
                    raise NutProtocolError(f"expected 'END {command}', got {line!r}")
                return rows
            if words[:1] == ["ERR"]:
                self._raise_for_error(line, command)
            rows.append(words)

    async def _send(self, line: str) -> None:
        await self._send_many([line])

    async def _send_many(self, lines: list[str]) -> None:
        if any("\n" in line or "\r" in line for line in lines):
            raise ValueError("a NUT request is one line")
        self._writer.write("".join(f"{line}\n" for line in lines).encode())
        await asyncio.wait_for(self._writer.drain(), self._timeout)

    async def _read_line(self) -> str:
        try:
            raw = await asyncio.wait_for(self._reader.readline(), self._timeout)
        except ValueError as exc:  # longer than MAX_LINE
            raise NutProtocolError(f"answer line too long: {exc}") from None
        if not raw.endswith(b"\n"):
            raise ConnectionError("upsd closed the connection")
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")

    @staticmethod
    def _raise_for_error(line: str, command: str) -> None:
        if line.startswith("ERR"):
            words = split_words(line)
            code = words[1] if len(words) > 1 else "UNKNOWN"
            raise NutError(code, " ".join(words[2:]), command)
