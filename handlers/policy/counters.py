"""Live counters per SASL account and per client address, and the alarms they raise.

Pure and in memory; the caller passes the time (epoch seconds) and flushes `take_flush()` rows to
the store off its event loop.

Where a message is counted (MessageEvents): at DATA, where Postfix's `recipient_count` gives the
recipients of the whole message. A listener that only asks at RCPT (no check_policy_service in
smtpd_data_restrictions, or an Exim ACL only at RCPT) is noticed by its policy_context never sending
DATA: there each RCPT is a recipient and a new `instance` (Postfix's per-message id) a message. A
context switches to DATA counting at its first DATA request (that message, already counted at RCPT,
is not counted again).
Bytes are counted at END-OF-MESSAGE (`size`), when the listener asks there.

Windows are fixed (tumbling): a minute, an hour, a day, each starting when the subject's first
message in it arrives. Every rule alarms at most once per window and subject. State for a subject
whose every window has ended is dropped by `expire()`, and the number of subjects is capped
(oldest first out), so memory stays flat however many accounts and hosts appear.

Several replicas (each MTA asks one of them) see only their share of an account's messages. So
each also keeps its account messages per clock-aligned UTC minute (`take_windows()`), which the
service adds to the store under its replica name; the store sums them over every replica, and
`summed_alarm()` turns a sum over a threshold into an alarm for that clock window
(account_messages_per_minute and account_messages_per_day: the two rules that are plain counts).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from handlers.policy.decision import address_of, parse_host
from handlers.policy.model import PolicyAlarm
from handlers.policy.protocol import PolicyRequest

MINUTE, HOUR, DAY = 60, 3600, 86400
SAMPLES = 5  # sample recipients kept as evidence
MAX_IPS = 64  # distinct client IPs remembered per account per hour (the rule needs only > 10)
MAX_DOMAINS = 256  # outside domains remembered per host per hour
MAX_SUBJECTS = 200_000
MAX_INSTANCES = 50_000


@dataclass(frozen=True)
class Thresholds:
    """0 turns a rule off."""

    account_messages_per_minute: int = 10
    account_messages_per_day: int = 150
    account_client_ips_per_hour: int = 10
    account_networks_per_hour: int = 3
    host_outbound_per_hour: int = 100
    host_domains_per_hour: int = 50


@dataclass(frozen=True)
class CounterSettings:
    thresholds: Thresholds = field(default_factory=Thresholds)
    internal_networks: tuple[str, ...] = ()
    local_domains: tuple[str, ...] = ()  # recipient domains that are not "outside"
    exempt_accounts: tuple[str, ...] = ()
    exempt_hosts: tuple[str, ...] = ()
    max_subjects: int = MAX_SUBJECTS
    source: str = ""  # this replica's name: the `source` of every row it flushes


# the rules a sum over replicas can decide: rule -> the clock window its sum is kept for
SUMMED_RULES = {"account_messages_per_minute": MINUTE, "account_messages_per_day": DAY}


class MessageEvents:
    """Says whether a request is the moment to count one message (DATA, or the RCPT fallback)."""

    def __init__(self) -> None:
        self._data_contexts: set[str] = set()
        self._instances: OrderedDict[tuple[str, str], None] = OrderedDict()

    def is_message(self, request: PolicyRequest) -> bool:
        state = request.state
        if state == "DATA":
            if (
                request.policy_context not in self._data_contexts
                and len(self._data_contexts) < 1000
            ):
                self._data_contexts.add(request.policy_context)
            # the context's first DATA: its RCPTs already counted this message the fallback way
            key = (request.policy_context, request.instance)
            if request.instance and key in self._instances:
                del self._instances[key]
                return False
            return True
        if state != "RCPT" or request.policy_context in self._data_contexts:
            return False
        if not request.instance:
            return True  # nothing ties RCPTs together: each one is its own message
        key = (request.policy_context, request.instance)
        if key in self._instances:
            return False
        self._instances[key] = None
        if len(self._instances) > MAX_INSTANCES:
            self._instances.popitem(last=False)
        return True

    def counts_recipients_at_rcpt(self, request: PolicyRequest) -> bool:
        return request.state == "RCPT" and request.policy_context not in self._data_contexts


class _Window:
    """A tumbling window's count and whether its rule already alarmed."""

    __slots__ = ("alarmed", "count", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.count = 0
        self.alarmed = False

    def roll(self, now: float, length: int) -> None:
        if now - self.start >= length:
            self.start = now
            self.count = 0
            self.alarmed = False


# which of an account's rules already alarmed in their current window
MINUTE_ALARMED, DAY_ALARMED, IPS_ALARMED, NETWORKS_ALARMED = 1, 2, 4, 8


class _Account:
    """One account's windows, flat: this object exists once per active account (100,000+)."""

    __slots__ = ("day_count", "day_start", "flags", "hour_start", "ips", "last_seen")
    __slots__ += ("minute_count", "minute_start", "samples")

    def __init__(self, now: float) -> None:
        self.minute_start = self.day_start = self.hour_start = self.last_seen = now
        self.minute_count = self.day_count = 0
        self.flags = 0
        # tuples, not sets: most accounts have one or two of each, and an empty set alone costs
        # 216 bytes (100,000 accounts: 40 MB); the bounds keep membership tests short
        self.ips: tuple[str, ...] = ()
        self.samples: tuple[str, ...] = ()


class _Host:
    __slots__ = ("domains", "domains_alarmed", "last_seen", "outbound", "outside_instance")
    __slots__ += ("samples",)

    def __init__(self, now: float) -> None:
        self.outbound = _Window(now)
        self.domains: set[str] = set()
        self.domains_alarmed = False
        self.outside_instance = ""
        self.samples: list[str] = []
        self.last_seen = now


def network_of(address: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) an address sits in, as text."""
    head, dot, last = address.rpartition(".")
    if dot and ":" not in address and last.isdigit() and head.count(".") == 2:
        return f"{head}.0/24"  # the common case without building ipaddress objects
    parsed = address_of(address)
    if parsed is None:
        return address
    prefix = 24 if parsed.version == 4 else 64
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))


class _Networks:
    def __init__(self, texts: Iterable[str]) -> None:
        self.networks = [n for n in (parse_host(t) for t in texts) if n is not None]
        self._cache: OrderedDict[str, bool] = OrderedDict()

    def __contains__(self, address: str) -> bool:
        if not self.networks or not address:
            return False
        hit = self._cache.get(address)
        if hit is None:
            parsed = address_of(address)
            hit = parsed is not None and any(
                parsed.version == n.version and parsed in n for n in self.networks
            )
            self._cache[address] = hit
            if len(self._cache) > 10_000:
                self._cache.popitem(last=False)
        return hit


class Counters:
    """Counts what passes and returns the alarms it crossed."""

    def __init__(self, settings: CounterSettings) -> None:
        self.settings = settings
        self.thresholds = settings.thresholds
        self.internal = _Networks(settings.internal_networks)
        self.exempt_hosts = _Networks(settings.exempt_hosts)
        self.exempt_accounts = {a.strip().lower() for a in settings.exempt_accounts}
        self.local_domains = {d.strip().lower().lstrip("@") for d in settings.local_domains}
        self.events = MessageEvents()
        self.accounts: OrderedDict[str, _Account] = OrderedDict()
        self.hosts: OrderedDict[str, _Host] = OrderedDict()
        # deltas since the last flush: (kind, subject) -> [messages, recipients, bytes]
        self._pending: dict[tuple[str, str], list[int]] = {}
        # account messages since the last flush per clock minute: (account, minute start) -> n
        self._windows: dict[tuple[str, int], int] = {}

    @property
    def subjects(self) -> int:
        return len(self.accounts) + len(self.hosts)

    def observe(
        self, request: PolicyRequest, now: float, is_message: bool | None = None
    ) -> list[PolicyAlarm]:
        """Counts one request; `is_message` as MessageEvents said (computed here when None)."""
        if is_message is None:
            is_message = self.events.is_message(request)
        state = request.state
        recipients = 0
        if is_message and state == "DATA":
            recipients = request.recipient_count
        elif self.events.counts_recipients_at_rcpt(request):
            recipients = 1
        size = request.size if state == "END-OF-MESSAGE" else 0
        if not (is_message or recipients or size or state == "RCPT"):
            return []
        messages = 1 if is_message else 0
        client = request.client_address
        alarms: list[PolicyAlarm] = []
        if messages or recipients or size:
            if request.sasl_username:
                self._add(("account", request.sasl_username), messages, recipients, size)
            if client:
                self._add(("host", client), messages, recipients, size)
        if request.sasl_username:
            self._account(request, now, messages, alarms)
        if client and client in self.internal:
            self._host(request, now, messages, alarms)
        return alarms

    def _add(self, key: tuple[str, str], messages: int, recipients: int, size: int) -> None:
        row = self._pending.get(key)
        if row is None:
            self._pending[key] = [messages, recipients, size]
        else:
            row[0] += messages
            row[1] += recipients
            row[2] += size

    @property
    def pending_rows(self) -> int:
        # the per-minute counts are no more than one per pending account row and minute since
        # the last flush: bounding these bounds them
        return len(self._pending)

    def take_pending(self) -> dict[tuple[str, str], list[int]]:
        """The deltas since the last call, as they are (O(1): turn them into rows elsewhere)."""
        pending, self._pending = self._pending, {}
        return pending

    def rows(self, pending: dict[tuple[str, str], list[int]]) -> list[tuple]:
        """(kind, subject, source, messages, recipients, bytes) rows, as the store takes them."""
        source = self.settings.source
        return [(kind, subject, source, *values) for (kind, subject), values in pending.items()]

    def take_flush(self) -> list[tuple]:
        return self.rows(self.take_pending())

    def take_windows(self) -> dict[tuple[str, int], int]:
        """Account messages per clock minute since the last call (O(1), like take_pending)."""
        windows, self._windows = self._windows, {}
        return windows

    @staticmethod
    def window_rows(windows: dict[tuple[str, int], int]) -> list[tuple[int, int, str, int]]:
        """(window start, window seconds, account, messages) rows for the clock minutes and the
        UTC days they fall in: what the store sums over replicas for SUMMED_RULES."""
        days: dict[tuple[str, int], int] = {}
        rows = []
        for (account, minute), messages in windows.items():
            rows.append((minute, MINUTE, account, messages))
            day = (account, minute - minute % DAY)
            days[day] = days.get(day, 0) + messages
        rows.extend((day, DAY, account, messages) for (account, day), messages in days.items())
        return rows

    def summed_alarm(
        self,
        rule: str,
        account: str,
        count: int,
        replicas: int,
        window_start: float,
        now: float,
    ) -> PolicyAlarm | None:
        """The alarm for an account whose messages summed over `replicas` crossed `rule` in the
        clock window starting at `window_start`; None when the rule is off or it is exempt."""
        limit = getattr(self.thresholds, rule)
        if not limit or count <= limit or account in self.exempt_accounts:
            return None
        state = self.accounts.get(account)  # what this replica saw of it, as evidence
        return PolicyAlarm(
            rule=rule,
            subject_kind="account",
            subject=account,
            count=count,
            threshold=limit,
            window_seconds=SUMMED_RULES[rule],
            at=datetime.fromtimestamp(now, UTC),
            client_addresses=tuple(sorted(state.ips))[:20] if state else (),
            sample_recipients=tuple(state.samples) if state else (),
            detail={"replicas": replicas},
            window_start=datetime.fromtimestamp(window_start, UTC),
        )

    # -- accounts ----------------------------------------------------------------------------

    def _account(
        self, request: PolicyRequest, now: float, messages: int, alarms: list[PolicyAlarm]
    ) -> None:
        name = request.sasl_username
        state = self.accounts.get(name)
        if state is None:
            state = self.accounts[name] = _Account(now)
            self._cap(self.accounts)
        else:
            self.accounts.move_to_end(name)
        state.last_seen = now
        if request.recipient and len(state.samples) < SAMPLES:
            if request.recipient not in state.samples:
                state.samples += (request.recipient,)
        if now - state.hour_start >= HOUR:
            state.hour_start = now
            state.ips = ()
            state.flags &= ~(IPS_ALARMED | NETWORKS_ALARMED)
        client = request.client_address
        new_ip = bool(client) and client not in state.ips and len(state.ips) < MAX_IPS
        if new_ip:
            state.ips += (client,)
        if name in self.exempt_accounts:
            return
        t = self.thresholds
        if messages:
            if now - state.minute_start >= MINUTE:
                state.minute_start, state.minute_count = now, 0
                state.flags &= ~MINUTE_ALARMED
            if now - state.day_start >= DAY:
                state.day_start, state.day_count = now, 0
                state.flags &= ~DAY_ALARMED
            state.minute_count += messages
            state.day_count += messages
            minute = (name, int(now) - int(now) % MINUTE)
            self._windows[minute] = self._windows.get(minute, 0) + messages
            limit = t.account_messages_per_minute
            if limit and state.minute_count > limit and not state.flags & MINUTE_ALARMED:
                state.flags |= MINUTE_ALARMED
                alarms.append(
                    self._account_alarm(
                        request,
                        state,
                        "account_messages_per_minute",
                        state.minute_count,
                        limit,
                        MINUTE,
                        now,
                    )
                )
            limit = t.account_messages_per_day
            if limit and state.day_count > limit and not state.flags & DAY_ALARMED:
                state.flags |= DAY_ALARMED
                alarms.append(
                    self._account_alarm(
                        request, state, "account_messages_per_day", state.day_count, limit, DAY, now
                    )
                )
        limit = t.account_client_ips_per_hour
        if limit and not state.flags & IPS_ALARMED and len(state.ips) > limit:
            state.flags |= IPS_ALARMED
            alarms.append(
                self._account_alarm(
                    request, state, "account_client_ips_per_hour", len(state.ips), limit, HOUR, now
                )
            )
        limit = t.account_networks_per_hour
        # networks are worked out from the IPs only when there could be too many: most accounts
        # never use more than one or two addresses, and this keeps their state small
        networks = (
            {network_of(ip) for ip in state.ips}
            if new_ip and limit and not state.flags & NETWORKS_ALARMED and len(state.ips) > limit
            else ()
        )
        if len(networks) > limit:
            state.flags |= NETWORKS_ALARMED
            alarms.append(
                self._account_alarm(
                    request,
                    state,
                    "account_networks_per_hour",
                    len(networks),
                    limit,
                    HOUR,
                    now,
                    detail={"networks": sorted(networks)},
                )
            )

    def _account_alarm(
        self,
        request: PolicyRequest,
        state: _Account,
        rule: str,
        count: int,
        limit: int,
        window: int,
        now: float,
        detail: dict[str, object] | None = None,
    ) -> PolicyAlarm:
        return PolicyAlarm(
            rule=rule,
            subject_kind="account",
            subject=request.sasl_username,
            count=count,
            threshold=limit,
            window_seconds=window,
            at=datetime.fromtimestamp(now, UTC),
            client_addresses=tuple(sorted(state.ips))[:20],
            sample_recipients=tuple(state.samples),
            policy_context=request.policy_context,
            detail=detail or {},
        )

    # -- internal hosts ----------------------------------------------------------------------

    def _outside(self, domain: str) -> bool:
        return bool(domain) and domain not in self.local_domains

    def _host(
        self, request: PolicyRequest, now: float, messages: int, alarms: list[PolicyAlarm]
    ) -> None:
        client = request.client_address
        state = self.hosts.get(client)
        if state is None:
            state = self.hosts[client] = _Host(now)
            self._cap(self.hosts)
        else:
            self.hosts.move_to_end(client)
        state.last_seen = now
        window = state.outbound
        if now - window.start >= HOUR:
            state.domains.clear()
            state.domains_alarmed = False
        window.roll(now, HOUR)
        domain = request.recipient_domain
        outside = self._outside(domain)
        if request.state == "RCPT" and outside:
            state.outside_instance = request.instance or "-"
            if len(state.domains) < MAX_DOMAINS:
                state.domains.add(domain)
            if len(state.samples) < SAMPLES and request.recipient not in state.samples:
                state.samples.append(request.recipient)
        # a message is outbound when one of its recipients was outside: at DATA that is what
        # its RCPTs showed (same instance), in the RCPT fallback the recipient itself
        outbound = messages and (
            outside
            or (request.state == "DATA" and state.outside_instance == (request.instance or "-"))
        )
        if client in self.exempt_hosts:
            return
        t = self.thresholds
        if outbound:
            window.count += 1
            limit = t.host_outbound_per_hour
            if limit and window.count > limit and not window.alarmed:
                window.alarmed = True
                alarms.append(
                    self._host_alarm(
                        request, state, "host_outbound_per_hour", window.count, limit, now
                    )
                )
        limit = t.host_domains_per_hour
        if limit and not state.domains_alarmed and len(state.domains) > limit:
            state.domains_alarmed = True
            alarms.append(
                self._host_alarm(
                    request, state, "host_domains_per_hour", len(state.domains), limit, now
                )
            )

    def _host_alarm(
        self, request: PolicyRequest, state: _Host, rule: str, count: int, limit: int, now: float
    ) -> PolicyAlarm:
        return PolicyAlarm(
            rule=rule,
            subject_kind="host",
            subject=request.client_address,
            count=count,
            threshold=limit,
            window_seconds=HOUR,
            at=datetime.fromtimestamp(now, UTC),
            client_addresses=(request.client_address,),
            sample_recipients=tuple(state.samples),
            policy_context=request.policy_context,
            detail={"outside_domains": sorted(state.domains)[:20]},
        )

    # -- memory ------------------------------------------------------------------------------

    def _cap(self, table: OrderedDict) -> None:
        while len(table) > self.settings.max_subjects:
            table.popitem(last=False)  # least recently seen first

    def expire(self, now: float) -> int:
        """Drops subjects whose every window has ended; how many were dropped."""
        dropped = 0
        for table, horizon in ((self.accounts, DAY), (self.hosts, HOUR)):
            # tables are ordered by last activity, so stop at the first one still live
            while table:
                key, state = next(iter(table.items()))
                if now - state.last_seen < horizon:
                    break
                del table[key]
                dropped += 1
        return dropped
