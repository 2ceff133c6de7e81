"""Request + active containment entries → one answer from the allow-list.

Pure: the caller passes the time and the entries it holds in memory; nothing here reads the store
or the network. Which entry wins when several match: block, then hold, then throttle (the most
severe), and among equals the newest.

- block:    REJECT (5.7.1) at every stage; with cut_sessions, the first matching request from each
            client gets a 421 instead, which ends that live SMTP session.
- hold:     HOLD: Postfix parks the message in its hold queue (Exim: `control = freeze`).
- throttle: DEFER (4.7.1) once the subject has sent limit_per_hour messages in the last hour.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from handlers.policy.model import Containment
from handlers.policy.protocol import Answers, PolicyRequest

SEVERITY = {"block": 3, "hold": 2, "throttle": 1}
HOUR = 3600.0
# bounds on the decision's own memory: clients already sent a 421, instances already counted
MAX_CUT = 10_000
MAX_HOST_CACHE = 65_536


class Verdict(Enum):
    DUNNO = "DUNNO"
    REJECT = "REJECT"
    DEFER = "DEFER"
    HOLD = "HOLD"
    DISCONNECT = "421"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    entry: Containment | None = None


DUNNO = Decision(Verdict.DUNNO)
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_host(text: str) -> _Network | None:
    """An IP or CIDR as a network (a single address is a /32 or /128); None if neither."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def address_of(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


class ContainmentIndex:
    """The entries in lookup tables: one dict probe per subject kind, a scan only over CIDRs."""

    def __init__(self, entries: list[Containment], now: datetime) -> None:
        self.accounts: dict[str, Containment] = {}
        self.senders: dict[str, Containment] = {}
        self.domains: dict[str, Containment] = {}
        self.hosts: dict[str, Containment] = {}  # single addresses by canonical text
        self.networks: list[tuple[_Network, Containment]] = []
        self._host_cache: dict[str, tuple[Containment, ...]] = {}
        self.entries = [e for e in entries if e.active(now)]
        for entry in sorted(self.entries, key=lambda e: e.id):
            subject = entry.subject.strip().lower()
            if entry.subject_kind == "account":
                self._put(self.accounts, subject, entry)
            elif entry.subject_kind == "sender":
                self._put(self.senders, subject, entry)
            elif entry.subject_kind == "sender_domain":
                self._put(self.domains, subject.lstrip("@"), entry)
            elif entry.subject_kind == "host":
                network = parse_host(subject)
                if network is None:
                    continue
                if network.num_addresses == 1:
                    self._put(self.hosts, str(network.network_address), entry)
                else:
                    self.networks.append((network, entry))

    @staticmethod
    def _put(table: dict[str, Containment], key: str, entry: Containment) -> None:
        held = table.get(key)
        if held is None or SEVERITY[entry.action] >= SEVERITY[held.action]:
            table[key] = entry

    def __len__(self) -> int:
        return len(self.entries)

    def matches(self, request: PolicyRequest) -> list[Containment]:
        found: list[Containment] = []
        if request.sasl_username and (hit := self.accounts.get(request.sasl_username)):
            found.append(hit)
        if request.sender:
            if hit := self.senders.get(request.sender):
                found.append(hit)
            if (domain := request.sender_domain) and (hit := self.domains.get(domain)):
                found.append(hit)
        if request.client_address and (self.hosts or self.networks):
            found.extend(self._host_matches(request.client_address))
        return found

    def _host_matches(self, client: str) -> tuple[Containment, ...]:
        # parsing an address and scanning the CIDRs costs more than the rest of a decision, and
        # the same clients ask again and again: remember the answer per address (bounded; the
        # index is rebuilt whenever the entries change)
        cached = self._host_cache.get(client)
        if cached is not None:
            return cached
        hits: list[Containment] = []
        address = address_of(client)
        if address is not None:
            if hit := self.hosts.get(str(address)):
                hits.append(hit)
            for network, entry in self.networks:
                if address.version == network.version and address in network:
                    hits.append(entry)
        if len(self._host_cache) >= MAX_HOST_CACHE:
            self._host_cache.clear()
        result = self._host_cache[client] = tuple(hits)
        return result


class Decider:
    """Holds the index and the little state decisions need (throttle clocks, 421s already sent)."""

    def __init__(self, answers: Answers, index: ContainmentIndex | None = None) -> None:
        self.answers = answers
        self.index = index or ContainmentIndex([], datetime.now(UTC))
        self._throttle: dict[int, deque[float]] = {}
        self._cut: OrderedDict[tuple[int, str], None] = OrderedDict()

    def replace(self, index: ContainmentIndex) -> None:
        self.index = index
        live = {e.id for e in index.entries}
        for entry_id in [k for k in self._throttle if k not in live]:
            del self._throttle[entry_id]

    def decide(self, request: PolicyRequest, now: float, is_message: bool) -> Decision:
        """The decision for one request at `now` (epoch seconds).

        `is_message`: this request is where a message is counted (see counters.MessageEvents); a
        throttled subject's message is counted only when it is let through.
        """
        if not self.index.entries:
            return DUNNO
        found = self.index.matches(request)
        if not found:
            return DUNNO
        moment = datetime.fromtimestamp(now, UTC)
        live = [e for e in found if e.active(moment)]
        if not live:
            return DUNNO
        entry = max(live, key=lambda e: (SEVERITY[e.action], e.id))
        if entry.action == "block":
            if entry.cut_sessions:
                key = (entry.id, request.client_address)
                if key not in self._cut:
                    self._cut[key] = None
                    if len(self._cut) > MAX_CUT:
                        self._cut.popitem(last=False)
                    return Decision(Verdict.DISCONNECT, entry)
            return Decision(Verdict.REJECT, entry)
        if entry.action == "hold":
            return Decision(Verdict.HOLD, entry)
        return self._throttled(entry, request, now, is_message)

    def _throttled(
        self, entry: Containment, request: PolicyRequest, now: float, is_message: bool
    ) -> Decision:
        if request.state not in ("RCPT", "DATA", "END-OF-MESSAGE"):
            return DUNNO
        limit = max(entry.limit_per_hour, 0)
        stamps = self._throttle.get(entry.id)
        if stamps is None:
            stamps = self._throttle[entry.id] = deque(maxlen=max(limit, 1))
        while stamps and stamps[0] <= now - HOUR:
            stamps.popleft()
        if len(stamps) >= limit:
            return Decision(Verdict.DEFER, entry)
        if is_message:
            stamps.append(now)
        return Decision(Verdict.DUNNO, entry)

    def answer(self, decision: Decision) -> bytes:
        verdict = decision.verdict
        if verdict is Verdict.DUNNO:
            return self.answers.dunno
        if verdict is Verdict.REJECT:
            return self.answers.reject
        if verdict is Verdict.DEFER:
            return self.answers.defer
        if verdict is Verdict.HOLD:
            return self.answers.hold
        return self.answers.disconnect
