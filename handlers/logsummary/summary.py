"""The summary accumulator: receives typed mail events and keeps pflogsumm's counts, plus the
per-account / per-client figures the suspects detector needs.

Counting follows Debian pflogsumm 1.1.5 exactly (see README "pflogsumm meaning of each total"). Per
queue-ID state is dropped when the queue manager logs `removed` or a reject ends the message before
it is queued, so memory follows the size of the mail queue, not the size of the log. For parallel
runs a summary can start mid-log ("partial"): events whose queue ID or smtpd process it has not
seen born are kept aside in order and replayed when the summaries are merged, so totals stay exact
across chunk boundaries.
"""

from __future__ import annotations

from typing import Any

from handlers.logsummary.rules import (
    client_address,
    host_domain,
    lower_domain,
    recipient_domain,
    sender_domain,
)
from handlers.numbers import digits_or_zero, is_ascii_digits

# Evidence: how many sample log lines each tally keeps (memory stays bounded per entity).
EVIDENCE_LINES = 6
UNPARSED_SAMPLE = 10
# Memo tables (client → address/domain, address → normalised form) are cleared past this size.
CACHE_LIMIT = 100_000
# Distinct recipient domains remembered per origin; past this they are counted under "*".
DOMAINS_PER_ORIGIN = 2000
# Transports that deliver on this machine: their recipient domains are ours, not "outbound".
LOCAL_TRANSPORTS = frozenset(("local", "virtual", "lmtp"))
# "Relay access denied" is Postfix's wording, "relay not permitted" Exim's.
RELAY_DENIED_REASONS = frozenset(("Relay access denied", "relay not permitted"))
USER_UNKNOWN_MARKERS = ("User unknown", "unknown user", "user unknown", "5.1.1", "No such user")

# Origin stats slots (a list per origin keeps the hot path free of attribute lookups).
O_MESSAGES, O_RCPTS, O_MAX_RCPTS, O_WIDE, O_BYTES = 0, 1, 2, 3, 4
O_SENT, O_BOUNCED, O_DEFERRALS, O_UNKNOWN, O_DOMAINS, O_LINES, O_BAD_LINES = range(5, 12)
# messages received over SMTP from the origin, by hour of day (the chart of a suspect's sending)
O_HOURS = 12


def _new_origin() -> list[Any]:
    return [0, 0, 0, 0, 0, 0, 0, 0, 0, {}, [], [], [0] * 24]


def _bump(table: dict[str, int], key: str, by: int = 1) -> None:
    table[key] = table.get(key, 0) + by


def _bump2(table: dict[str, dict[str, int]], outer: str, inner: str) -> None:
    sub = table.get(outer)
    if sub is None:
        sub = table[outer] = {}
    sub[inner] = sub.get(inner, 0) + 1


def _bump3(table: dict[str, dict[str, dict[str, int]]], a: str, b: str, c: str) -> None:
    sub = table.get(a)
    if sub is None:
        sub = table[a] = {}
    _bump2(sub, b, c)


def _sample(lines: list[str], line: str, limit: int = EVIDENCE_LINES) -> None:
    if len(lines) < limit:
        lines.append(line.rstrip("\n"))


class Summary:
    """Accumulates one pass over a log (or one chunk of it). Every public method is one event."""

    def __init__(self, partial: bool = False, wide_message_rcpts: int = 10) -> None:
        self.partial = partial
        self.wide_message_rcpts = wide_message_rcpts
        # pflogsumm grand totals
        self.received = 0
        self.delivered = 0
        self.forwarded = 0
        self.deferred = 0
        self.deferrals = 0
        self.bounced = 0
        self.rejected = 0
        self.reject_warnings = 0
        self.held = 0
        self.discarded = 0
        self.bytes_received = 0
        self.bytes_delivered = 0
        # per hour of day: received, delivered, deferred, bounced, rejected (pflogsumm's table)
        self.per_hour = [[0, 0, 0, 0, 0] for _ in range(24)]
        # address / domain → [count, bytes]; recipient domains also [.., defers, delay sum, max]
        self.senders: dict[str, list[int]] = {}
        self.sending_domains: dict[str, list[int]] = {}
        self.recipients: dict[str, list[int]] = {}
        self.recipient_domains: dict[str, list[float]] = {}
        # action → stage → reason → key → count (pflogsumm's reject/warning/hold/discard detail)
        self.reject_detail: dict[str, dict[str, dict[str, dict[str, int]]]] = {
            "reject": {},
            "reject_warning": {},
            "hold": {},
            "discard": {},
        }
        self.deferral_reasons: dict[str, dict[str, int]] = {}
        self.bounce_reasons: dict[str, dict[str, int]] = {}
        self.warnings: dict[str, dict[str, int]] = {}
        self.fatals: dict[str, dict[str, int]] = {}
        self.panics: dict[str, dict[str, int]] = {}
        self.master: dict[str, int] = {}
        self.smtp_failures: dict[str, dict[str, int]] = {}
        # smtpd connections (pflogsumm --smtpd-stats): count, seconds, per hour, per host
        self.connections = 0
        self.connect_seconds = 0
        self.connections_per_hour = [[0, 0, 0] for _ in range(24)]
        self.connections_by_host: dict[str, list[int]] = {}
        # SASL: messages submitted per account / client IP, failures per account / client IP,
        # and per-IP AUTH success/failure counts from smtpd's disconnect statistics
        self.sasl_messages_by_user: dict[str, int] = {}
        self.sasl_messages_by_ip: dict[str, int] = {}
        self.sasl_failures_by_user: dict[str, int] = {}
        self.sasl_failures_by_ip: dict[str, int] = {}
        self.auth_by_ip: dict[str, list[int]] = {}
        self.sasl_failure_ips: dict[str, set[str]] = {}  # account → IPs that failed to log in
        # suspects raw material
        self.sasl_ips: dict[str, dict[str, str]] = {}  # account → client IP → first line
        self.origins: dict[str, list[Any]] = {}  # "sasl:x" / "client:ip" / "local:sender"
        self.origin_internal: dict[str, bool] = {}
        self.relay_denied: dict[str, list[Any]] = {}  # client IP → [count, lines]
        self.failure_lines_by_ip: dict[str, list[str]] = {}
        self.failure_lines_by_user: dict[str, list[str]] = {}
        self.local_domains: set[str] = set()
        # input accounting
        self.lines = 0
        # lines from Postfix or Exim inside the window: zero means the run saw no mail at all
        self.mail_lines = 0
        self.lines_by_source: dict[str, int] = {}
        self.unparsed_lines = 0
        self.unparsed_sample: list[str] = []
        self.other_lines = 0
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.expired_queue_ids = 0
        # per queue ID: [size or 0, received-from domain or None, deferred flag, origin key]
        self._queue: dict[str, list[Any]] = {}
        # smtpd pid → connect time (seconds)
        self._sessions: dict[str, int] = {}
        # partial summaries: events that depend on state from before this chunk, in order
        self._pending: list[tuple[Any, ...]] = []
        self._orphans: set[str] = set()
        self._known_pids: set[str] = set()
        self.internal_check: Any = None  # callable(ip) -> bool, set by the driver
        self._clients: dict[str, tuple[str, str]] = {}
        self._addresses: dict[str, tuple[str, str, str | None]] = {}

    # -- receiving -------------------------------------------------------------------------------

    def on_received(
        self, qid: str, hour: int, client: str, sasl_user: str, line: str, origin_hint: str = ""
    ) -> None:
        """smtpd `client=` (or Exim `<=` with H=): one message received over SMTP."""
        if self.partial and qid in self._orphans:
            self._pending.append(("on_received", qid, hour, client, sasl_user, line, origin_hint))
            return
        self.received += 1
        self.per_hour[hour][0] += 1
        known = self._clients.get(client)
        if known is None:
            known = self._client_info(client)
        address, domain = known
        if sasl_user:
            origin = "sasl:" + sasl_user
            _bump(self.sasl_messages_by_user, sasl_user)
            if address:
                _bump(self.sasl_messages_by_ip, address)
                seen = self.sasl_ips.get(sasl_user)
                if seen is None:
                    seen = self.sasl_ips[sasl_user] = {}
                if address not in seen:
                    seen[address] = line.rstrip("\n")
        elif address:
            origin = "client:" + address
        else:
            origin = origin_hint or "client:" + client
        stats = self.origins.get(origin)
        if stats is None:
            stats = self.origins[origin] = _new_origin()
            if self.internal_check is not None and address and not sasl_user:
                self.origin_internal[origin] = bool(self.internal_check(address))
        stats[O_MESSAGES] += 1
        stats[O_HOURS][hour] += 1
        if len(stats[O_LINES]) < 3:
            stats[O_LINES].append(line.rstrip("\n"))
        state = self._queue.get(qid)
        if state is None:
            self._queue[qid] = [0, domain, False, origin]
        else:
            state[1] = domain
            state[3] = origin

    def _client_info(self, client: str) -> tuple[str, str]:
        if len(self._clients) >= CACHE_LIMIT:
            self._clients.clear()
        info = self._clients[client] = (client_address(client), host_domain(client))
        return info

    def _address_info(self, address: str) -> tuple[str, str, str | None]:
        """(pflogsumm-normalised address, recipient domain, sender domain), cached."""
        if len(self._addresses) >= CACHE_LIMIT:
            self._addresses.clear()
        normal = lower_domain(address)
        info = self._addresses[address] = (
            normal,
            recipient_domain(normal),
            sender_domain(normal),
        )
        return info

    def on_created(self, qid: str) -> None:
        """A message created inside Postfix (a bounce or delay notification): it starts here."""
        if qid not in self._queue and qid not in self._orphans:
            self._queue[qid] = [0, None, False, None]

    def on_pickup(self, qid: str, hour: int, line: str) -> None:
        """pickup(8) `sender=`/`uid=`: a message submitted locally (sendmail command)."""
        if self.partial and qid in self._orphans:
            self._pending.append(("on_pickup", qid, hour, line))
            return
        self.received += 1
        self.per_hour[hour][0] += 1
        state = self._queue.get(qid)
        if state is None:
            self._queue[qid] = [0, "pickup", False, None]
        else:
            state[1] = "pickup"
            state[3] = None

    def on_message(self, qid: str, sender: str, size: int, nrcpt: int, line: str) -> None:
        """qmgr `from=<…>, size=N`: sender and size, counted once per queue ID."""
        state = self._queue.get(qid)
        if state is None:
            if self.partial:
                self._orphans.add(qid)
                self._pending.append(("on_message", qid, sender, size, nrcpt, line))
                return
            state = self._queue[qid] = [0, None, False, None]
        elif state[0]:
            return  # pflogsumm: a queue ID's size counts once (qmgr repeats it on every retry)
        state[0] = size
        received_from = state[1]
        if received_from is not None:
            if sender:
                known = self._addresses.get(sender)
                if known is None:
                    known = self._address_info(sender)
                sender, _, domain = known
            else:
                sender, domain = "from=<>", None
            if domain is None:
                domain = sender if received_from == "pickup" else received_from
            entry = self.sending_domains.get(domain)
            if entry is None:
                self.sending_domains[domain] = [1, size]
            else:
                entry[0] += 1
                entry[1] += size
            entry = self.senders.get(sender)
            if entry is None:
                self.senders[sender] = [1, size]
            else:
                entry[0] += 1
                entry[1] += size
            self.bytes_received += size
            state[1] = None
            if received_from == "pickup":
                origin = "local:" + sender
                state[3] = origin
                stats = self.origins.get(origin)
                if stats is None:
                    stats = self.origins[origin] = _new_origin()
                stats[O_MESSAGES] += 1
                _sample(stats[O_LINES], line, 3)
        origin = state[3]
        if origin is not None:
            stats = self.origins[origin]
            stats[O_RCPTS] += nrcpt
            stats[O_BYTES] += size
            if nrcpt > stats[O_MAX_RCPTS]:
                stats[O_MAX_RCPTS] = nrcpt
            if nrcpt >= self.wide_message_rcpts:
                stats[O_WIDE] += 1
                _sample(stats[O_BAD_LINES], line)

    def on_recipients_counted(self, qid: str, count: int, line: str) -> None:
        """Exim: recipients of a message, known once it is `Completed` (Postfix logs nrcpt=)."""
        state = self._queue.get(qid)
        if state is None:
            if self.partial:
                self._orphans.add(qid)
                self._pending.append(("on_recipients_counted", qid, count, line))
            return
        if state[3] is None:
            return
        stats = self.origins[state[3]]
        stats[O_RCPTS] += count
        if count > stats[O_MAX_RCPTS]:
            stats[O_MAX_RCPTS] = count
        if count >= self.wide_message_rcpts:
            stats[O_WIDE] += 1
            _sample(stats[O_BAD_LINES], line)

    # -- delivery --------------------------------------------------------------------------------

    def on_delivery(
        self,
        qid: str,
        hour: int,
        cmd: str,
        status: str,
        recipient: str,
        relay: str,
        delay: float,
        detail: str,
        forwarded: bool,
        line: str,
    ) -> None:
        """A `to=<…>, relay=…, status=…` line: one recipient sent, deferred or bounced."""
        state = self._queue.get(qid)
        if state is None and self.partial:
            self._orphans.add(qid)
            self._pending.append(
                (
                    "on_delivery",
                    qid,
                    hour,
                    cmd,
                    status,
                    recipient,
                    relay,
                    delay,
                    detail,
                    forwarded,
                    line,
                )
            )
            return
        known = self._addresses.get(recipient)
        if known is None:
            known = self._address_info(recipient)
        recipient, domain, _ = known
        origin = state[3] if state is not None else None
        stats = self.origins[origin] if origin is not None else None
        if status == "sent":
            if forwarded:
                self.forwarded += 1
                return
            entry = self.recipient_domains.get(domain)
            if entry is None:
                entry = self.recipient_domains[domain] = [0, 0, 0, 0.0, 0.0]
            entry[0] += 1
            entry[3] += delay
            if not entry[4] or delay > entry[4]:
                entry[4] = delay
            user = self.recipients.get(recipient)
            if user is None:
                user = self.recipients[recipient] = [0, 0]
            user[0] += 1
            self.per_hour[hour][1] += 1
            self.delivered += 1
            size = state[0] if state is not None else 0
            if size:
                entry[1] += size
                user[1] += size
                self.bytes_delivered += size
            if cmd in LOCAL_TRANSPORTS:
                self.local_domains.add(domain)
            if stats is not None:
                stats[O_SENT] += 1
                if cmd not in LOCAL_TRANSPORTS:
                    orig_at = line.find(", orig_to=<")
                    if orig_at > 0:
                        # an alias of ours rewritten to an outside address: the client wrote to
                        # us, so the delivery counts under the domain it addressed
                        orig = line[orig_at + 11 : line.find(">", orig_at)]
                        domain = self._address_info(orig)[1]
                    domains = stats[O_DOMAINS]
                    if domain in domains or len(domains) < DOMAINS_PER_ORIGIN:
                        domains[domain] = domains.get(domain, 0) + 1
                        if domains[domain] <= 2:
                            _sample(stats[O_LINES], line)
                    else:
                        domains["*"] = domains.get("*", 0) + 1
        elif status == "deferred":
            _bump2(self.deferral_reasons, cmd, detail)
            self.per_hour[hour][2] += 1
            self.deferrals += 1
            if state is None:
                state = self._queue[qid] = [0, None, False, None]
            first_deferral = not state[2]
            if first_deferral:
                state[2] = True
                self.deferred += 1
            entry = self.recipient_domains.get(domain)
            if entry is None:
                entry = self.recipient_domains[domain] = [0, 0, 0, 0.0, 0.0]
            entry[2] += 1
            if not entry[4] or delay > entry[4]:
                entry[4] = delay
            if stats is not None and first_deferral:
                stats[O_DEFERRALS] += 1  # deferred messages, not retries
                _sample(stats[O_BAD_LINES], line)
        elif status == "bounced":
            _bump2(self.bounce_reasons, relay, detail)
            self.per_hour[hour][3] += 1
            self.bounced += 1
            if stats is not None:
                stats[O_BOUNCED] += 1
                if any(marker in detail for marker in USER_UNKNOWN_MARKERS):
                    stats[O_UNKNOWN] += 1
                _sample(stats[O_BAD_LINES], line)

    def on_removed(self, qid: str) -> None:
        """The queue ID is done (qmgr or postsuper `removed`, Exim `Completed`, or a reject or
        discard that ended the message in smtpd or cleanup): forget its state."""
        if self._queue.pop(qid, None) is None and self.partial:
            self._orphans.add(qid)
            self._pending.append(("on_removed", qid))

    # -- rejects and problems ----------------------------------------------------------------------

    def on_reject(
        self,
        action: str,
        hour: int,
        stage: str,
        reason: str,
        key: str,
        client: str,
        line: str,
    ) -> None:
        """reject / reject_warning / hold / discard, from smtpd, cleanup or Exim."""
        if action == "reject":
            self.rejected += 1
        elif action == "reject_warning":
            self.reject_warnings += 1
        elif action == "hold":
            self.held += 1
        else:
            self.discarded += 1
        self.per_hour[hour][4] += 1
        _bump3(self.reject_detail[action], stage, reason, key)
        if action == "reject" and reason in RELAY_DENIED_REASONS:
            address = client_address(client) or client
            entry = self.relay_denied.get(address)
            if entry is None:
                entry = self.relay_denied[address] = [0, []]
            entry[0] += 1
            _sample(entry[1], line)

    def on_sasl_failure(self, client: str, method: str, user: str, line: str) -> None:
        """`SASL LOGIN authentication failed`: one failed AUTH from a client, for an account."""
        address = client_address(client) or client
        _bump(self.sasl_failures_by_ip, address)
        lines = self.failure_lines_by_ip.get(address)
        if lines is None:
            lines = self.failure_lines_by_ip[address] = []
        _sample(lines, line)
        if user:
            _bump(self.sasl_failures_by_user, user)
            addresses = self.sasl_failure_ips.get(user)
            if addresses is None:
                addresses = self.sasl_failure_ips[user] = set()
            if len(addresses) < 1000:
                addresses.add(address)
            lines = self.failure_lines_by_user.get(user)
            if lines is None:
                lines = self.failure_lines_by_user[user] = []
            _sample(lines, line)

    def on_warning(self, cmd: str, text: str) -> None:
        _bump2(self.warnings, cmd, text)

    def on_fatal(self, cmd: str, text: str) -> None:
        _bump2(self.fatals, cmd, text)

    def on_panic(self, cmd: str, text: str) -> None:
        _bump2(self.panics, cmd, text)

    def on_master_message(self, text: str) -> None:
        _bump(self.master, text)

    def on_smtp_failure(self, reason: str, host: str) -> None:
        _bump2(self.smtp_failures, reason, host)

    # -- smtpd sessions --------------------------------------------------------------------------

    def on_connect(self, pid: str, seconds: int) -> None:
        self._sessions[pid] = seconds
        if self.partial:
            self._known_pids.add(pid)

    def on_disconnect(self, pid: str, hour: int, seconds: int, client: str, auth: str) -> None:
        """smtpd `disconnect from`: a session ended; counted when its connect was seen."""
        start = self._sessions.pop(pid, None)
        if start is None:
            if self.partial and pid not in self._known_pids:
                self._pending.append(("on_disconnect", pid, hour, seconds, client, auth))
            return
        elapsed = seconds - start
        per_hour = self.connections_per_hour[hour]
        per_hour[0] += 1
        per_hour[1] += elapsed
        if elapsed > per_hour[2]:
            per_hour[2] = elapsed
        # pflogsumm takes the host from the whole "name[ip] ehlo=1 …" text; the first word gives the
        # same answer for IPv4 clients (and the right one for IPv6, where pflogsumm gives "")
        known = self._clients.get(client.split(" ", 1)[0])
        if known is None:
            known = self._client_info(client.split(" ", 1)[0])
        host = known[1]
        entry = self.connections_by_host.get(host)
        if entry is None:
            self.connections_by_host[host] = [1, elapsed, elapsed]
        else:
            entry[0] += 1
            entry[1] += elapsed
            if elapsed > entry[2]:
                entry[2] = elapsed
        self.connections += 1
        self.connect_seconds += elapsed
        if auth:
            ok, _, tried = auth.partition("/")
            succeeded = digits_or_zero(ok)
            attempted = digits_or_zero(tried) if is_ascii_digits(tried) else succeeded
            address = known[0] or client
            entry = self.auth_by_ip.get(address)
            if entry is None:
                entry = self.auth_by_ip[address] = [0, 0]
            entry[0] += succeeded
            entry[1] += attempted - succeeded

    # -- input accounting ------------------------------------------------------------------------

    def unparsed(self, line: str) -> None:
        self.unparsed_lines += 1
        if len(self.unparsed_sample) < UNPARSED_SAMPLE:
            self.unparsed_sample.append(line.rstrip("\n")[:300])

    def seen_time(self, first: float | None, last: float | None) -> None:
        if first is not None and (self.first_time is None or first < self.first_time):
            self.first_time = first
        if last is not None and (self.last_time is None or last > self.last_time):
            self.last_time = last

    def expire_queue(self, keep: int) -> None:
        """Drops the oldest queue-ID state past `keep` entries (messages never logged `removed`)."""
        excess = len(self._queue) - keep
        if excess <= 0:
            return
        for qid in list(self._queue)[:excess]:
            del self._queue[qid]
        self.expired_queue_ids += excess

    @property
    def open_queue_ids(self) -> int:
        return len(self._queue)

    # -- merging ---------------------------------------------------------------------------------

    def merge(self, later: Summary) -> None:
        """Folds in the summary of the chunk that follows this one in the log."""
        for name in (
            "received",
            "delivered",
            "forwarded",
            "deferred",
            "deferrals",
            "bounced",
            "rejected",
            "reject_warnings",
            "held",
            "discarded",
            "bytes_received",
            "bytes_delivered",
            "connections",
            "connect_seconds",
            "lines",
            "mail_lines",
            "unparsed_lines",
            "other_lines",
            "expired_queue_ids",
        ):
            setattr(self, name, getattr(self, name) + getattr(later, name))
        for mine, theirs in zip(self.per_hour, later.per_hour, strict=True):
            for i, value in enumerate(theirs):
                mine[i] += value
        for mine, theirs in zip(self.connections_per_hour, later.connections_per_hour, strict=True):
            mine[0] += theirs[0]
            mine[1] += theirs[1]
            mine[2] = max(mine[2], theirs[2])
        for name in ("senders", "sending_domains", "recipients"):
            _merge_sums(getattr(self, name), getattr(later, name))
        for domain, values in later.recipient_domains.items():
            entry = self.recipient_domains.get(domain)
            if entry is None:
                self.recipient_domains[domain] = list(values)
            else:
                entry[0] += values[0]
                entry[1] += values[1]
                entry[2] += values[2]
                entry[3] += values[3]
                if not entry[4] or values[4] > entry[4]:
                    entry[4] = values[4]
        for host, values in later.connections_by_host.items():
            entry = self.connections_by_host.get(host)
            if entry is None:
                self.connections_by_host[host] = list(values)
            else:
                entry[0] += values[0]
                entry[1] += values[1]
                entry[2] = max(entry[2], values[2])
        for action, stages in later.reject_detail.items():
            _merge_nested(self.reject_detail[action], stages)
        for name in (
            "deferral_reasons",
            "bounce_reasons",
            "warnings",
            "fatals",
            "panics",
            "smtp_failures",
        ):
            _merge_nested(getattr(self, name), getattr(later, name))
        for name in (
            "master",
            "sasl_messages_by_user",
            "sasl_messages_by_ip",
            "sasl_failures_by_user",
            "sasl_failures_by_ip",
        ):
            _merge_nested(getattr(self, name), getattr(later, name))
        _merge_sums(self.auth_by_ip, later.auth_by_ip)
        for user, failed in later.sasl_failure_ips.items():
            self.sasl_failure_ips.setdefault(user, set()).update(failed)
        for user, addresses in later.sasl_ips.items():
            seen = self.sasl_ips.setdefault(user, {})
            for address, line in addresses.items():
                seen.setdefault(address, line)
        for key, stats in later.origins.items():
            mine = self.origins.get(key)
            if mine is None:
                self.origins[key] = stats
                continue
            for slot in (O_MESSAGES, O_RCPTS, O_WIDE, O_BYTES, O_SENT, O_BOUNCED):
                mine[slot] += stats[slot]
            for slot in (O_DEFERRALS, O_UNKNOWN):
                mine[slot] += stats[slot]
            mine[O_MAX_RCPTS] = max(mine[O_MAX_RCPTS], stats[O_MAX_RCPTS])
            mine[O_HOURS] = [a + b for a, b in zip(mine[O_HOURS], stats[O_HOURS], strict=True)]
            for domain, count in stats[O_DOMAINS].items():
                mine[O_DOMAINS][domain] = mine[O_DOMAINS].get(domain, 0) + count
            for slot in (O_LINES, O_BAD_LINES):
                for line in stats[slot]:
                    _sample(mine[slot], line)
        for key, internal in later.origin_internal.items():
            self.origin_internal.setdefault(key, internal)
        for address, (count, lines) in later.relay_denied.items():
            entry = self.relay_denied.setdefault(address, [0, []])
            entry[0] += count
            for line in lines:
                _sample(entry[1], line)
        for name in ("failure_lines_by_ip", "failure_lines_by_user"):
            mine_lines: dict[str, list[str]] = getattr(self, name)
            for key, lines in getattr(later, name).items():
                target = mine_lines.setdefault(key, [])
                for line in lines:
                    _sample(target, line)
        self.local_domains |= later.local_domains
        for source, count in later.lines_by_source.items():
            self.lines_by_source[source] = self.lines_by_source.get(source, 0) + count
        for line in later.unparsed_sample:
            if len(self.unparsed_sample) < UNPARSED_SAMPLE:
                self.unparsed_sample.append(line)
        self.seen_time(later.first_time, later.last_time)
        # The later chunk's events that needed our state, in log order; then its own open state.
        for event in later._pending:
            getattr(self, event[0])(*event[1:])
        for qid, state in later._queue.items():
            if state[3] is not None and state[3] not in self.origins:
                self.origins[state[3]] = later.origins[state[3]]
            self._queue[qid] = state
        self._sessions.update(later._sessions)


def _merge_sums(mine: dict[str, list[Any]], theirs: dict[str, list[Any]]) -> None:
    for key, values in theirs.items():
        entry = mine.get(key)
        if entry is None:
            mine[key] = list(values)
        else:
            for i, value in enumerate(values):
                entry[i] += value


def _merge_nested(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    for key, value in theirs.items():
        if isinstance(value, dict):
            _merge_nested(mine.setdefault(key, {}), value)
        else:
            mine[key] = mine.get(key, 0) + value
