"""A small asyncio SNMP client over pysnmp (v1, v2c, v3 USM): GET of scalars, column walks.

It hides pysnmp's types from the bridge: values come back as ``int`` (every integer type,
gauges, counters, time ticks) or ``str`` (octet strings as UTF-8, OIDs dotted); objects the
agent does not have are simply absent. SNMPv1 answers a GET with one missing object by
failing the whole request (``noSuchName``), so such objects are dropped and the GET repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pyasn1.type import univ
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    get_cmd,
    usm3DESEDEPrivProtocol,
    usmAesCfb128Protocol,
    usmAesCfb192Protocol,
    usmAesCfb256Protocol,
    usmDESPrivProtocol,
    usmHMAC128SHA224AuthProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC256SHA384AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
    usmNoAuthProtocol,
    usmNoPrivProtocol,
    walk_cmd,
)
from pysnmp.proto.error import StatusInformation

SnmpValue = int | str

AUTH_PROTOCOLS: dict[str, Any] = {
    "MD5": usmHMACMD5AuthProtocol,
    "SHA": usmHMACSHAAuthProtocol,
    "SHA224": usmHMAC128SHA224AuthProtocol,
    "SHA256": usmHMAC192SHA256AuthProtocol,
    "SHA384": usmHMAC256SHA384AuthProtocol,
    "SHA512": usmHMAC384SHA512AuthProtocol,
}
PRIV_PROTOCOLS: dict[str, Any] = {
    "DES": usmDESPrivProtocol,
    "3DES": usm3DESEDEPrivProtocol,
    "AES": usmAesCfb128Protocol,
    "AES192": usmAesCfb192Protocol,
    "AES256": usmAesCfb256Protocol,
}
_NO_SUCH_NAME = 2  # SNMPv1 error-status
MAX_WALK_ROWS = 256


class SnmpUnreachable(Exception):
    """No (valid) answer: timeout, unknown host, authentication or decryption failure."""


class SnmpError(Exception):
    """The agent answered with an error status."""


@dataclass(frozen=True, slots=True)
class SnmpCredentials:
    """v1/v2c community, or a v3 USM user (authNoPriv/authPriv when keys are given)."""

    version: Literal["1", "2c", "3"] = "2c"
    community: str = "public"
    user: str = ""
    auth_key: str | None = None
    auth_protocol: str = "SHA"
    priv_key: str | None = None
    priv_protocol: str = "AES"
    context: str = ""

    def auth_data(self) -> CommunityData | UsmUserData:
        if self.version != "3":
            return CommunityData(self.community, mpModel=0 if self.version == "1" else 1)
        auth = AUTH_PROTOCOLS[self.auth_protocol] if self.auth_key else usmNoAuthProtocol
        priv = PRIV_PROTOCOLS[self.priv_protocol] if self.priv_key else usmNoPrivProtocol
        return UsmUserData(
            self.user, self.auth_key, self.priv_key, authProtocol=auth, privProtocol=priv
        )

    def context_data(self) -> ContextData:
        return ContextData(contextName=self.context) if self.context else ContextData()


class SnmpClient:
    def __init__(
        self,
        host: str,
        port: int,
        credentials: SnmpCredentials,
        *,
        timeout: float = 2.0,
        retries: int = 1,
    ) -> None:
        self.host = host
        self.port = port
        self.credentials = credentials
        self.timeout = timeout
        self.retries = retries
        self._engine: SnmpEngine | None = None
        self._auth = credentials.auth_data()
        self._context = credentials.context_data()
        self._target: UdpTransportTarget | None = None

    def _snmp_engine(self) -> SnmpEngine:
        if self._engine is None:
            self._engine = SnmpEngine()
        return self._engine

    def forget_agent(self) -> None:
        """Drop what the engine learnt about the agent; the next request starts afresh.

        Measured with snmpsim: after the agent restarts (new SNMPv3 engine ID and boots), a
        pysnmp engine that talked to the old one only gets timeouts. The bridge calls this
        after every failed poll, so a restarted card is rediscovered.
        """
        self.close()
        self._target = None

    async def _transport(self) -> UdpTransportTarget:
        if self._target is None:
            try:
                self._target = await UdpTransportTarget.create(
                    (self.host, self.port), timeout=self.timeout, retries=self.retries
                )
            except Exception as exc:  # pysnmp wraps resolver failures in its own error
                raise SnmpUnreachable(f"cannot resolve {self.host}: {exc}") from None
        return self._target

    async def get(self, oids: list[str] | tuple[str, ...]) -> dict[str, SnmpValue]:
        """The values of ``oids`` the agent has, by OID."""
        wanted = list(oids)
        while wanted:
            try:
                indication, status, index, binds = await get_cmd(
                    self._snmp_engine(), self._auth, await self._transport(), self._context,
                    *(ObjectType(ObjectIdentity(oid)) for oid in wanted),
                )
            except StatusInformation as exc:  # e.g. a decryption failure raised, not returned
                raise SnmpUnreachable(str(exc.get("errorIndication", exc))) from None
            if indication:
                raise SnmpUnreachable(str(indication))
            if status:
                if int(status) == _NO_SUCH_NAME and 0 < int(index) <= len(wanted):
                    del wanted[int(index) - 1]  # SNMPv1: drop the missing object, ask again
                    continue
                raise SnmpError(f"{status.prettyPrint()} at {index}")
            return {str(name): value for name, raw in binds if (value := _plain(raw)) is not None}
        return {}

    async def walk(self, column: str) -> list[tuple[str, SnmpValue]]:
        """The rows of one table column (bounded, so a broken agent cannot loop us)."""
        rows: list[tuple[str, SnmpValue]] = []
        try:
            async for indication, status, _index, binds in walk_cmd(
                self._snmp_engine(), self._auth, await self._transport(), self._context,
                ObjectType(ObjectIdentity(column)), lexicographicMode=False,
            ):
                if indication:
                    raise SnmpUnreachable(str(indication))
                if status:
                    if int(status) == _NO_SUCH_NAME:
                        break  # SNMPv1 end of view
                    raise SnmpError(status.prettyPrint())
                for name, raw in binds:
                    value = _plain(raw)
                    if value is not None:
                        rows.append((str(name), value))
                if len(rows) >= MAX_WALK_ROWS:
                    break
        except StatusInformation as exc:
            raise SnmpUnreachable(str(exc.get("errorIndication", exc))) from None
        return rows

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None


def _plain(value: Any) -> SnmpValue | None:
    """pysnmp value -> int or str; ``None`` for noSuchObject/noSuchInstance/endOfMibView."""
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.ObjectIdentifier):
        return str(value)
    if isinstance(value, univ.OctetString):
        return bytes(value).decode("utf-8", errors="replace")
    return None
