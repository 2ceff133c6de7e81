"""The DNSBL check: self-test the lists, expand the targets, stream one result per address or name.

Results come out of `BlacklistEngine.check` as an async iterator with a bounded number of targets
in progress, so memory stays flat however large the range; `run_check` keeps only what a report
needs (targets named directly, and addresses of a range that are listed or failed).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from handlers.blacklist.cache import AnswerCache
from handlers.blacklist.catalog import SEVERITY_RANK, DnsblList
from handlers.blacklist.classify import (
    BLOCKED,
    ERROR,
    LISTED,
    NOT_LISTED,
    Verdict,
    classify,
    negative_ttl,
    txt_strings,
)
from handlers.blacklist.health import (
    TEST_POINTS,
    ListHealth,
    common_failure,
    judge,
    resolver_warnings,
    spamhaus_warning,
)
from handlers.blacklist.mux import (
    ANSWER,
    NXDOMAIN,
    DnsMultiplexer,
    MuxStats,
)
from handlers.blacklist.targets import (
    IPAddress,
    TargetError,
    TargetSpec,
    name_labels_wire,
    reverse_name,
)
from handlers.numbers import NumberError, is_ascii_digits, parse_port

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str], None]

_A_TAIL = b"\x00\x01\x00\x01"
_TXT_TAIL = b"\x00\x10\x00\x01"
_DQS_KEY = re.compile(r"^[A-Za-z0-9]{1,63}$")


class BlacklistSetupError(ValueError):
    """Settings the engine cannot run with (bad nameserver, malformed DQS key); one line."""


@dataclass
class EngineSettings:
    nameservers: list[tuple[str, int]]
    timeout: float = 2.0
    retries: int = 2
    concurrency: int = 200
    sockets_per_server: int = 2
    dqs_key: str = field(default="", repr=False)  # never printed


@dataclass(frozen=True)
class CheckItem:
    """One thing to look up: an address (on IP lists) or a name (on domain lists)."""

    value: str
    kind: str  # ipv4 | ipv6 | domain
    origin: str = ""  # what the user typed when it differs (the range, host or MX domain)
    in_range: bool = False  # from a CIDR: reported only when listed or failed
    seq: int = 0


@dataclass(frozen=True)
class Listing:
    zone: str
    name: str
    codes: tuple[str, ...]
    meanings: tuple[str, ...]
    severity: str
    txt: str
    delist_url: str
    lookup_url: str


@dataclass(frozen=True)
class Failure:
    zone: str
    reason: str  # timeout | servfail | refused | blocked | bad-answer
    detail: str


@dataclass
class TargetResult:
    target: str
    kind: str
    origin: str
    in_range: bool
    seq: int
    listed: list[Listing] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (zone, e.g. good reputation)
    answered: int = 0
    healthy_total: int = 0  # healthy lists queried for this kind
    lists_total: int = 0  # every active list for this kind, unhealthy ones included

    @property
    def worst_severity(self) -> str | None:
        if not self.listed:
            return None
        return min((item.severity for item in self.listed), key=SEVERITY_RANK.__getitem__)


@dataclass
class RangeSummary:
    range: str
    checked: int = 0
    listed: int = 0
    failed: int = 0


@dataclass
class HealthReport:
    lists: list[ListHealth]
    warnings: list[str]
    # kind → the lists that will be asked (healthy ones)
    usable: dict[str, list[DnsblList]]
    # kind → every active list of that kind (for "M lists" counts)
    applicable: dict[str, list[DnsblList]]
    diagnosis: str = ""  # most lists failed the same way: the likely cause (handlers.health)

    @property
    def unhealthy(self) -> list[ListHealth]:
        return [h for h in self.lists if not h.healthy]


@dataclass
class BlacklistReport:
    targets: list[TargetResult]
    ranges: list[RangeSummary]
    health: HealthReport
    errors: list[str]  # target-level problems that make the report incomplete
    warnings: list[str]
    nameservers: list[tuple[str, int]]
    checked: int = 0
    duration: float = 0.0
    stats: MuxStats = field(default_factory=MuxStats)
    dqs: bool = False

    @property
    def listed_targets(self) -> list[TargetResult]:
        return [t for t in self.targets if t.listed]

    @property
    def failed_targets(self) -> list[TargetResult]:
        return [t for t in self.targets if t.failed]

    @property
    def complete(self) -> bool:
        return not (self.errors or self.health.unhealthy or self.failed_targets)

    @property
    def status(self) -> str:
        if self.listed_targets:
            return "problem"
        return "ok" if self.complete else "failed"


class _Zone:
    """A list prepared for querying: its zone in wire form (the DQS zone when a key is set)."""

    __slots__ = ("a_tail", "lst", "neg_ttl", "txt_tail", "zone_wire")

    def __init__(self, lst: DnsblList, query_zone: str) -> None:
        self.lst = lst
        self.zone_wire = name_labels_wire(query_zone) + b"\x00"
        self.a_tail = self.zone_wire + _A_TAIL
        self.txt_tail = self.zone_wire + _TXT_TAIL
        self.neg_ttl: int | None = None  # learned from the first NXDOMAIN's SOA


class _Pending:
    """A target in progress: answers still outstanding, and what came back so far."""

    __slots__ = ("done", "item", "prefix", "remaining", "result")

    def __init__(self, item: CheckItem, prefix: bytes, result: TargetResult, remaining: int):
        self.item = item
        self.prefix = prefix
        self.result = result
        self.remaining = remaining
        self.done: Callable[[_Pending], None] | None = None


class BlacklistEngine:
    """Use as `async with BlacklistEngine(lists, settings) as engine:`; then self_test and check."""

    def __init__(
        self,
        lists: list[DnsblList],
        settings: EngineSettings,
        cache: AnswerCache | None = None,
    ) -> None:
        if settings.dqs_key and not _DQS_KEY.match(settings.dqs_key):
            raise BlacklistSetupError(
                "SPAMHAUS_DQS_KEY is malformed: expected the letters and digits of your DQS key"
            )
        self.lists = [lst for lst in lists if lst.active]
        self.settings = settings
        self.cache = cache if cache is not None else AnswerCache()
        self._zones = {lst.zone: _Zone(lst, self._query_zone(lst)) for lst in self.lists}
        self.mux = DnsMultiplexer(
            settings.nameservers,
            timeout=settings.timeout,
            retries=settings.retries,
            concurrency=settings.concurrency,
            sockets_per_server=settings.sockets_per_server,
        )
        self.resolver = make_resolver(settings)
        self.health: HealthReport | None = None

    def _query_zone(self, lst: DnsblList) -> str:
        if self.settings.dqs_key and lst.dqs_zone:
            return f"{self.settings.dqs_key}.{lst.dqs_zone}"
        return lst.zone

    async def __aenter__(self) -> BlacklistEngine:
        await self.mux.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.mux.close()

    # -- self-test ----------------------------------------------------------------------------

    async def self_test(self, kinds: Iterable[str]) -> HealthReport:
        """RFC 5782 test points on every list serving one of `kinds`; not cached."""
        kinds = [k for k in ("ipv4", "ipv6", "domain") if k in set(kinds)]
        applicable = {k: [lst for lst in self.lists if lst.serves(k)] for k in kinds}
        jobs: list[tuple[DnsblList, str]] = []
        seen: set[str] = set()
        for kind in kinds:
            for lst in applicable[kind]:
                if lst.zone not in seen:  # a dual-stack list is tested once, on its first kind
                    seen.add(lst.zone)
                    jobs.append((lst, kind))
        results = await asyncio.gather(*(self._test_list(lst, kind) for lst, kind in jobs))
        healthy = {h.zone for h in results if h.healthy}
        usable = {k: [lst for lst in applicable[k] if lst.zone in healthy] for k in kinds}
        warnings = resolver_warnings(self.settings.nameservers)
        spamhaus = spamhaus_warning(results)
        if spamhaus:
            warnings.append(spamhaus)
        self.health = HealthReport(
            list(results), warnings, usable, applicable, diagnosis=common_failure(results)
        )
        return self.health

    async def _test_list(self, lst: DnsblList, kind: str) -> ListHealth:
        zone = self._zones[lst.zone]
        positive, negative = TEST_POINTS[kind]
        points = (
            positive if lst.test_listed is None else lst.test_listed,
            negative if lst.test_unlisted is None else lst.test_unlisted,
        )

        async def ask(point: str) -> Verdict | None:
            if not point:
                return None
            prefix = _prefix_for(point, kind)
            status, data = await self.mux.query(prefix + zone.a_tail)
            return classify(lst, status, data)

        listed, unlisted = await asyncio.gather(ask(points[0]), ask(points[1]))
        return judge(lst, kind, listed, unlisted)

    # -- ordinary lookups -----------------------------------------------------------------------

    async def addresses_of(self, name: str) -> tuple[list[IPAddress], str | None]:
        """(A and AAAA addresses, an error sentence or None). No records is not an error."""
        found: list[IPAddress] = []
        missing = 0
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self.resolver.resolve(name, rdtype, search=False)
            except dns.resolver.NXDOMAIN:
                return [], f"{name}: no such host (NXDOMAIN)"
            except dns.resolver.NoAnswer:
                missing += 1
                continue
            except (dns.resolver.LifetimeTimeout, dns.resolver.NoNameservers) as exc:
                return found, f"{name}: {rdtype} lookup failed ({_lookup_error(exc)})"
            found.extend(ipaddress.ip_address(r.address) for r in answer)
        return found, None

    async def mail_hosts(self, domain: str) -> tuple[list[str], str | None, str | None]:
        """(MX hosts by preference, an error, a note); no MX falls back to the domain itself."""
        try:
            answer = await self.resolver.resolve(domain, "MX", search=False)
        except dns.resolver.NXDOMAIN:
            return [], f"{domain}: no such domain (NXDOMAIN)", None
        except dns.resolver.NoAnswer:
            return [domain], None, f"{domain} has no MX records; mail goes to its A/AAAA (RFC 5321)"
        except (dns.resolver.LifetimeTimeout, dns.resolver.NoNameservers) as exc:
            return [], f"{domain}: MX lookup failed ({_lookup_error(exc)})", None
        records = sorted(answer, key=lambda r: r.preference)
        hosts = [r.exchange.to_text(omit_final_dot=True).lower() for r in records]
        hosts = [h for h in dict.fromkeys(hosts) if h]
        if not hosts or hosts == [""]:
            return [], None, f"{domain} publishes a null MX: it accepts no mail"
        return hosts, None, None

    # -- the bulk check ------------------------------------------------------------------------

    async def check(
        self, items: Iterable[CheckItem], window: int | None = None
    ) -> AsyncIterator[TargetResult]:
        """One TargetResult per item, in completion order; at most `window` targets in progress."""
        if self.health is None:
            raise RuntimeError("self_test() must run before check()")
        health = self.health
        zones_by_kind = {
            kind: [self._zones[lst.zone] for lst in lists] for kind, lists in health.usable.items()
        }
        unhealthy_by_kind = {
            kind: [h for h in health.unhealthy if any(lst.zone == h.zone for lst in lists)]
            for kind, lists in health.applicable.items()
        }
        if window is None:
            per_target = max(1, max((len(z) for z in zones_by_kind.values()), default=1))
            window = max(4, (2 * self.settings.concurrency) // per_target + 1)
        ready: deque[TargetResult] = deque()
        wake = asyncio.Event()

        def finished(pending: _Pending) -> None:
            ready.append(pending.result)
            wake.set()

        source: Iterator[CheckItem] = iter(items)
        in_progress = 0
        exhausted = False
        while True:
            while not exhausted and in_progress < window:
                item = next(source, None)
                if item is None:
                    exhausted = True
                    break
                in_progress += 1
                self._start(item, zones_by_kind, unhealthy_by_kind, health, finished)
            if ready:
                while ready:
                    in_progress -= 1
                    yield ready.popleft()
                # the consumer may have awaited between yields and every target in progress
                # finished meanwhile: refill before waiting, or nothing would ever wake us
                continue
            if exhausted and in_progress == 0:
                return
            wake.clear()
            await wake.wait()

    def _start(
        self,
        item: CheckItem,
        zones_by_kind: dict[str, list[_Zone]],
        unhealthy_by_kind: dict[str, list[ListHealth]],
        health: HealthReport,
        finished: Callable[[_Pending], None],
    ) -> None:
        zones = zones_by_kind.get(item.kind, [])
        result = TargetResult(
            target=item.value,
            kind=item.kind,
            origin=item.origin,
            in_range=item.in_range,
            seq=item.seq,
            healthy_total=len(zones),
            lists_total=len(health.applicable.get(item.kind, [])),
        )
        try:
            prefix = _prefix_for(item.value, item.kind)
        except TargetError as exc:
            result.failed.extend(Failure(z.lst.zone, "bad-answer", str(exc)) for z in zones)
            finished(_Pending(item, b"", result, 0))
            return
        pending = _Pending(item, prefix, result, len(zones))
        pending.done = finished
        if not zones:
            finished(pending)
            return
        cache = self.cache
        submit = self.mux.submit
        on_answer = self._on_answer
        for zone in zones:
            question = prefix + zone.a_tail
            if len(question) > 259:  # 255-byte name limit + qtype/qclass
                self._record(
                    pending, zone, Verdict(ERROR, reason="bad-answer", detail="name too long")
                )
                continue
            hit = cache.get(question)
            if hit is not None:
                on_answer((pending, zone, question), hit[0], hit[1], cached=True)
            else:
                submit(question, on_answer, (pending, zone, question))

    def _on_answer(
        self, context: Any, status: str, data: bytes | None, cached: bool = False
    ) -> None:
        pending, zone, question = context
        if status == NXDOMAIN:
            # the common case: no decoding beyond the header the multiplexer already checked
            pending.result.answered += 1
            if not cached:
                if zone.neg_ttl is None:
                    zone.neg_ttl = negative_ttl(data)
                if zone.neg_ttl:
                    self.cache.put(question, NXDOMAIN, None, zone.neg_ttl)
            pending.remaining -= 1
            if pending.remaining == 0:
                pending.done(pending)  # type: ignore[misc]
            return
        verdict = classify(zone.lst, status, data)
        if not cached and status == ANSWER and verdict.outcome in (LISTED, NOT_LISTED):
            self.cache.put(question, status, data, verdict.ttl)
        if verdict.outcome == LISTED:
            # A first; the TXT reason only for hits
            txt_question = pending.prefix + zone.txt_tail
            hit = self.cache.get(txt_question)
            if hit is not None:
                self._on_txt((pending, zone, verdict, txt_question), hit[0], hit[1], cached=True)
            else:
                self.mux.submit(txt_question, self._on_txt, (pending, zone, verdict, txt_question))
            return
        self._record(pending, zone, verdict)

    def _on_txt(self, context: Any, status: str, data: bytes | None, cached: bool = False) -> None:
        pending, zone, verdict, question = context
        txt = txt_strings(data) if status == ANSWER else ""
        if not cached and status == ANSWER:
            self.cache.put(question, status, data, verdict.ttl)
        self._record(pending, zone, verdict, txt)

    def _record(self, pending: _Pending, zone: _Zone, verdict: Verdict, txt: str = "") -> None:
        result = pending.result
        lst = zone.lst
        if verdict.outcome == LISTED:
            result.answered += 1
            result.listed.append(
                Listing(
                    zone=lst.zone,
                    name=lst.name,
                    codes=verdict.codes,
                    meanings=tuple(m.meaning for m in verdict.meanings),
                    severity=min(
                        (m.severity for m in verdict.meanings), key=SEVERITY_RANK.__getitem__
                    ),
                    txt=txt,
                    delist_url=lst.delist_url or lst.lookup_url,
                    lookup_url=lst.lookup_url,
                )
            )
        elif verdict.outcome == NOT_LISTED:
            result.answered += 1
            result.notes.extend((lst.zone, note) for note in verdict.notes)
        elif verdict.outcome == BLOCKED:
            result.failed.append(Failure(lst.zone, "blocked", verdict.detail))
        else:
            result.failed.append(Failure(lst.zone, verdict.reason, verdict.detail))
        pending.remaining -= 1
        if pending.remaining == 0:
            pending.done(pending)  # type: ignore[misc]


def _prefix_for(value: str, kind: str) -> bytes:
    if kind == "domain":
        return name_labels_wire(value.lower())
    return name_labels_wire(reverse_name(ipaddress.ip_address(value)))


def _lookup_error(exc: Exception) -> str:
    if isinstance(exc, dns.resolver.LifetimeTimeout):
        return "timeout"
    return "no nameserver answered (SERVFAIL or REFUSED)"


def make_resolver(settings: EngineSettings) -> dns.asyncresolver.Resolver:
    """dnspython's asyncio resolver on the same nameservers, for A/AAAA/MX/PTR lookups."""
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [
        dns.nameserver.Do53Nameserver(host, port) for host, port in settings.nameservers
    ]
    resolver.timeout = settings.timeout
    resolver.lifetime = settings.timeout * (settings.retries + 1)
    resolver.cache = dns.resolver.LRUCache(10_000)  # honours each answer's TTL
    return resolver


def _nameserver_port(text: str, raw: str) -> int:
    try:
        return parse_port(text)
    except NumberError:
        raise BlacklistSetupError(
            f"nameserver {raw!r}: the port must be a number from 1 to 65535"
        ) from None


def parse_nameserver(text: str) -> tuple[str, int]:
    """'192.0.2.53', '192.0.2.53:5353', '2001:db8::53', '[2001:db8::53]:5353' → (ip, port)."""
    raw = text.strip()
    host, port = raw, 53
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not is_ascii_digits(rest[1:]):
                raise BlacklistSetupError(f"nameserver {raw!r}: expected [IPv6]:PORT")
            port = _nameserver_port(rest[1:], raw)
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
        port = _nameserver_port(port_text, raw)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise BlacklistSetupError(
            f"nameserver {raw!r}: expected an IP address, optionally with :PORT "
            "(e.g. 127.0.0.1:5353 or [::1]:53)"
        ) from None
    if not 0 < port < 65536:
        raise BlacklistSetupError(f"nameserver {raw!r}: port must be 1 to 65535")
    return str(address), port


def system_nameservers() -> list[tuple[str, int]]:
    """The system resolver's nameservers (/etc/resolv.conf), port 53."""
    try:
        resolver = dns.resolver.Resolver(configure=True)
    except dns.exception.DNSException as exc:
        raise BlacklistSetupError(
            f"cannot read the system resolver configuration ({exc})"
        ) from None
    found = []
    for server in resolver.nameservers:
        text = server if isinstance(server, str) else getattr(server, "address", "")
        try:
            found.append((str(ipaddress.ip_address(text)), 53))
        except ValueError:
            continue
    if not found:
        raise BlacklistSetupError(
            "no nameserver configured: set blacklist.nameservers or pass --nameserver IP[:PORT]"
        )
    return found


# -- one whole run ----------------------------------------------------------------------------


async def run_check(
    specs: list[TargetSpec],
    lists: list[DnsblList],
    settings: EngineSettings,
    progress: ProgressCallback | None = None,
    cache: AnswerCache | None = None,
    progress_interval: float = 0.25,
) -> BlacklistReport:
    """Expands the targets, self-tests the lists they need, checks everything, and reports."""
    started = time.monotonic()
    say = _Throttled(progress, progress_interval)
    async with BlacklistEngine(lists, settings, cache) as engine:
        errors: list[str] = []
        notes: list[str] = []
        direct: list[CheckItem] = []
        ranges: list[TargetSpec] = []
        seq = 0
        say("resolving targets…", force=True)
        for spec in specs:
            if spec.kind == "range":
                ranges.append(spec)
                continue
            if spec.kind == "ip":
                assert spec.address is not None
                direct.append(CheckItem(str(spec.address), _ip_kind(spec.address), seq=seq))
                seq += 1
                continue
            direct.append(CheckItem(spec.name, "domain", seq=seq))
            seq += 1
            hosts = [spec.name]
            if spec.kind == "mx":
                hosts, error, note = await engine.mail_hosts(spec.name)
                if error:
                    errors.append(error)
                if note:
                    notes.append(note)
            for host in hosts:
                addresses, error = await engine.addresses_of(host)
                if error:
                    errors.append(error)
                elif not addresses and spec.kind == "host":
                    notes.append(f"{host} has no A/AAAA records; checked the name on domain lists")
                elif not addresses:
                    errors.append(f"{host} (MX of {spec.name}) has no A/AAAA records")
                for address in addresses:
                    origin = f"{host} (MX of {spec.name})" if spec.kind == "mx" else host
                    direct.append(CheckItem(str(address), _ip_kind(address), origin, seq=seq))
                    seq += 1
        # the same address reached twice (host and MX) is checked once
        unique: dict[tuple[str, str], CheckItem] = {}
        for item in direct:
            unique.setdefault((item.kind, item.value), item)
        direct = list(unique.values())
        kinds = {item.kind for item in direct} | {
            "ipv4" if spec.network.version == 4 else "ipv6"  # type: ignore[union-attr]
            for spec in ranges
        }
        say(f"self-testing {len(lists)} lists…", force=True)
        health = await engine.self_test(kinds)
        healthy_count = sum(1 for h in health.lists if h.healthy)
        summaries = [RangeSummary(spec.text) for spec in ranges]
        total = len(direct) + sum(spec.network.num_addresses for spec in ranges)  # type: ignore[union-attr]

        def items() -> Iterator[CheckItem]:
            yield from direct
            for index, spec in enumerate(ranges):
                kind = "ipv4" if spec.network.version == 4 else "ipv6"  # type: ignore[union-attr]
                for address in spec.addresses():
                    yield CheckItem(str(address), kind, spec.text, in_range=True, seq=-1 - index)

        kept: list[TargetResult] = []
        checked = 0
        listed = 0
        # an address given alone and again inside a range is reported once, as given alone
        named = {(item.kind, item.value) for item in direct}
        async for result in engine.check(items()):
            checked += 1
            repeated = result.in_range and (result.kind, result.target) in named
            if result.listed and not repeated:
                listed += 1
            if result.in_range:
                summary = summaries[-1 - result.seq]
                summary.checked += 1
                summary.listed += bool(result.listed)
                summary.failed += bool(result.failed)
                if repeated or not (result.listed or result.failed):
                    continue  # a clean address in a range: counted, not kept
            kept.append(result)
            say(
                f"checked {checked:,}/{total:,} on {healthy_count} lists; "
                f"{listed:,} listed, {engine.mux.queued + engine.mux.in_flight} queries pending"
            )
        say(f"checked {checked:,}/{total:,} on {healthy_count} lists", force=True)
        kept.sort(key=lambda r: (r.in_range, r.seq if r.seq >= 0 else 0, _sort_key(r)))
        return BlacklistReport(
            targets=kept,
            ranges=summaries,
            health=health,
            errors=errors,
            warnings=[*health.warnings, *notes],
            nameservers=list(settings.nameservers),
            checked=checked,
            duration=time.monotonic() - started,
            stats=engine.mux.stats,
            dqs=bool(settings.dqs_key),
        )


def _ip_kind(address: IPAddress) -> str:
    return "ipv4" if address.version == 4 else "ipv6"


def _sort_key(result: TargetResult) -> tuple[int, int]:
    if result.kind == "domain":
        return (2, 0)
    address = ipaddress.ip_address(result.target)
    return (address.version, int(address))


class _Throttled:
    """Progress at most every `interval` seconds, so a /16 does not flood Slack or the terminal."""

    def __init__(self, sink: ProgressCallback | None, interval: float) -> None:
        self.sink = sink
        self.interval = interval
        self.last = 0.0

    def __call__(self, text: str, force: bool = False) -> None:
        if self.sink is None:
            return
        now = time.monotonic()
        if force or now - self.last >= self.interval:
            self.last = now
            try:
                self.sink(text)
            except Exception:  # progress is cosmetic; never let it break a check
                log.debug("progress callback failed", exc_info=True)
