"""The DNSBL catalog: which lists exist, what their answer codes mean, and how to get delisted.

The lists themselves are data (`handlers/data/dnsbl.toml`); this module loads and validates them,
and applies the user's `disabled_zones` / `extra_zones`.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

KINDS = ("ipv4", "ipv6", "domain")
SEVERITIES = ("major", "minor", "policy")
SEVERITY_RANK = {"major": 0, "minor": 1, "policy": 2}
ACCESS = ("open", "own-resolver", "registered-resolver", "own-resolver-or-key")


# self-service: a form the listed party submits and the list removes at once; request: a form or
# e-mail the operator reviews; expires: removed by itself once the cause stops; none: not a
# listing one asks to be removed from (bogons, Tor exits); unknown: not documented here
REMOVAL_KINDS = ("self-service", "request", "expires", "none", "unknown")


class CatalogError(ValueError):
    """A catalog entry (built in or from the config) that cannot be used; names the zone and key."""


@dataclass(frozen=True)
class CodeMeaning:
    meaning: str
    severity: str
    listing: bool = True  # False: e.g. Mailspike's good-reputation codes, which are not listings


@dataclass(frozen=True)
class DnsblList:
    zone: str
    name: str
    kinds: tuple[str, ...]
    severity: str = "minor"
    status: str = "active"
    access: str = "open"
    dqs_zone: str = ""
    bitmask: bool = False
    lookup_url: str = ""
    delist_url: str = ""
    notes: str = ""
    codes: dict[str, CodeMeaning] = field(default_factory=dict)
    blocked: dict[str, str] = field(default_factory=dict)
    test_listed: str | None = None  # None: the RFC 5782 point for the kind; "": skip
    test_unlisted: str | None = None
    # how a listing goes away (see REMOVAL_KINDS); expires_hours: the list's own expiry once the
    # cause stops (0: not documented); paid_express: the operator sells faster removal
    removal: str = "unknown"
    expires_hours: int = 0
    paid_express: bool = False
    source: str = "catalog"  # "catalog" or "config"

    @property
    def active(self) -> bool:
        return self.status == "active"

    def serves(self, kind: str) -> bool:
        return kind in self.kinds

    def meanings_for(self, codes: list[str]) -> list[CodeMeaning]:
        """What each answer code means; unknown codes are listings of the list's own severity."""
        found: list[CodeMeaning] = []
        for code in codes:
            if self.bitmask:
                found.extend(self._bitmask_meanings(code))
                continue
            known = self.codes.get(code)
            found.append(
                known
                or CodeMeaning(f"listed on {self.name} (code {code})", self.severity, listing=True)
            )
        return found

    def _bitmask_meanings(self, code: str) -> list[CodeMeaning]:
        last = int(code.rsplit(".", 1)[1])
        prefix = code.rsplit(".", 1)[0]
        found = []
        bit = 1
        while bit <= 128:
            if last & bit and f"{prefix}.{bit}" in self.codes:
                found.append(self.codes[f"{prefix}.{bit}"])
            bit <<= 1
        if not found:
            found.append(CodeMeaning(f"listed on {self.name} (code {code})", self.severity))
        return found


def load_catalog(path: str | Path | None = None) -> list[DnsblList]:
    """Every list in the catalog file (default: the one shipped in the package), dead ones too."""
    if path is None:
        raw = resources.files("handlers").joinpath("data/dnsbl.toml").read_bytes()
        where = "handlers/data/dnsbl.toml"
    else:
        raw = Path(path).read_bytes()
        where = str(path)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{where}: not valid TOML ({exc})") from None
    lists = [parse_entry(entry, where) for entry in data.get("list", [])]
    zones = [item.zone for item in lists]
    duplicates = sorted({z for z in zones if zones.count(z) > 1})
    if duplicates:
        raise CatalogError(f"{where}: zone listed twice: {', '.join(duplicates)}")
    return lists


def parse_entry(entry: dict[str, Any], where: str, source: str = "catalog") -> DnsblList:
    """One catalog entry (a [[list]] table, or one item of blacklist.extra_zones)."""
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: each list must be a table with at least zone and kind")
    known = {
        "zone",
        "name",
        "kind",
        "severity",
        "status",
        "access",
        "dqs_zone",
        "bitmask",
        "lookup_url",
        "delist_url",
        "notes",
        "codes",
        "blocked",
        "test_listed",
        "test_unlisted",
        "removal",
        "expires_hours",
        "paid_express",
    }
    zone = str(entry.get("zone", "")).strip().lower().rstrip(".")
    label = f"{where}: {zone or '<no zone>'}"
    unknown = sorted(set(entry) - known)
    if unknown:
        raise CatalogError(f"{label}: unknown key {unknown[0]!r}")
    if not zone or not _is_zone(zone):
        raise CatalogError(f"{label}: zone must be a DNS name such as bl.example.org")
    kind = entry.get("kind", "ipv4")
    kinds = tuple(kind) if isinstance(kind, list) else (kind,)
    if not kinds or any(k not in KINDS for k in kinds):
        raise CatalogError(f"{label}: kind must be one or more of {', '.join(KINDS)}")
    severity = entry.get("severity", "minor")
    if severity not in SEVERITIES:
        raise CatalogError(f"{label}: severity must be one of {', '.join(SEVERITIES)}")
    status = entry.get("status", "active")
    if status not in ("active", "dead"):
        raise CatalogError(f"{label}: status must be active or dead")
    access = entry.get("access", "open")
    if access not in ACCESS:
        raise CatalogError(f"{label}: access must be one of {', '.join(ACCESS)}")
    removal = entry.get("removal", "unknown")
    if removal not in REMOVAL_KINDS:
        raise CatalogError(f"{label}: removal must be one of {', '.join(REMOVAL_KINDS)}")
    expires_hours = entry.get("expires_hours", 0)
    if isinstance(expires_hours, bool) or not isinstance(expires_hours, int) or expires_hours < 0:
        raise CatalogError(f"{label}: expires_hours must be a whole number of hours")
    codes: dict[str, CodeMeaning] = {}
    for code, spec in (entry.get("codes") or {}).items():
        _check_code(code, label)
        if isinstance(spec, str):
            spec = {"meaning": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("meaning"), str):
            raise CatalogError(f"{label}: codes.{code} needs a meaning")
        code_severity = spec.get("severity", severity)
        if code_severity not in SEVERITIES:
            raise CatalogError(f"{label}: codes.{code}.severity must be one of {SEVERITIES}")
        codes[code] = CodeMeaning(spec["meaning"], code_severity, bool(spec.get("listing", True)))
    blocked: dict[str, str] = {}
    for code, why in (entry.get("blocked") or {}).items():
        _check_code(code, label)
        blocked[code] = str(why)
    return DnsblList(
        zone=zone,
        name=str(entry.get("name") or zone),
        kinds=kinds,
        severity=severity,
        status=status,
        access=access,
        dqs_zone=str(entry.get("dqs_zone", "")).lower().rstrip("."),
        bitmask=bool(entry.get("bitmask", False)),
        lookup_url=str(entry.get("lookup_url", "")),
        delist_url=str(entry.get("delist_url", "")),
        notes=str(entry.get("notes", "")),
        codes=codes,
        blocked=blocked,
        test_listed=entry.get("test_listed"),
        test_unlisted=entry.get("test_unlisted"),
        removal=removal,
        expires_hours=expires_hours,
        paid_express=bool(entry.get("paid_express", False)),
        source=source,
    )


def select_lists(
    catalog: list[DnsblList],
    disabled_zones: list[str] | tuple[str, ...] = (),
    extra_zones: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
) -> list[DnsblList]:
    """The active lists to query: the catalog minus disabled zones, plus the user's extra lists.

    An extra list with the zone of a catalog list replaces it (e.g. to change its severity).
    """
    disabled = {z.strip().lower().rstrip(".") for z in disabled_zones}
    by_zone = {item.zone: item for item in catalog}
    for i, extra in enumerate(extra_zones):
        item = parse_entry(extra, f"blacklist.extra_zones[{i}]", source="config")
        by_zone[item.zone] = item
    return [item for item in by_zone.values() if item.active and item.zone not in disabled]


def _check_code(code: str, label: str) -> None:
    try:
        ipaddress.IPv4Address(code)
    except ValueError:
        raise CatalogError(
            f"{label}: {code!r} is not an IPv4 answer code such as 127.0.0.2"
        ) from None


def _is_zone(name: str) -> bool:
    labels = name.split(".")
    return (
        len(name) <= 200
        and len(labels) >= 2
        and all(
            0 < len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label)
            for label in labels
        )
    )
